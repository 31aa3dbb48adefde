// Package sim is treecast's simulator: it measures multicast tree and scheduling schemes on
// fat-tree and WAN topologies at scales no test cluster reaches, by driving the same
// scheduler code the agents run.
//
// # Units
//
// Time is counted in slots and volume in units: an arc of the default capacity
// (tree.DefaultCapacity, 10 Gbit/s) carries one unit per slot, an arc of twice that capacity
// two. This is the model of the DCCast and QuickCast papers, where every arc has capacity 1
// and a transfer of volume 30 needs 30 slots on an idle path. Propagation latency is ignored.
//
// # A run, step by step
//
//  1. A workload: [Generate] draws transfers from a [Workload] (Poisson arrivals at rate
//     Lambda per slot until Horizon, receivers per transfer uniform in a [Range], volumes from
//     a [Volume] such as "10+exp:20" or "pareto:0.7,0.54,max=2000"), seeded so that the same
//     seed gives the same transfers; or [ReadTrace] reads them from a CSV trace.
//  2. A scheme ([ParseScheme]): a tree policy of the scheduler (dccast, random, minmax, spt,
//     p2p, p2p-kN, p2p-lp, p2p-lp-kN, quickcast, multitree), where the network replicates,
//     under the run's rate policy (fcfs, srpt, maxmin) or its own ("quickcast@maxmin"); or an
//     overlay strategy (overlay:chain, overlay:tree, overlay:forest, overlay:unicast), where
//     only the agents do, with the scheduler's overlay plans.
//  3. [Run] simulates one scheme on one workload and returns a [Result]: transfers, total
//     bandwidth (the sum over arcs of the volume they carried), max copies of a transfer on
//     an arc, mean/p50/p99/max transfer completion time (TCT, from arrival to the last
//     receiver), mean/p50/p99 receiver completion time (each receiver's own), and wall time.
//     An [Experiment] runs every scheme on every seed; [Summarize] gives the mean and spread
//     per scheme.
//
// [Presets] name the settings of the DCCast and QuickCast papers (topology, schemes, workload,
// seeds); [Preset.Experiment] builds one, and "treecast sim --preset NAME" runs it.
//
// # Engines
//
// Network schemes run in discrete slots: at the start of every slot the engine submits the
// transfers arriving in it, then advances the scheduler one slot and reads back what every
// arc carried and which transfers completed. The engine checks what the scheduler reports:
// no arc above its capacity in any slot, every receiver gets exactly its transfer's volume,
// the completions the scheduler reports are the ones delivered, and FCFS transfers complete
// at the slot promised at submission. A violation stops the run with ErrScheduler.
//
// Overlay schemes run at chunk granularity in continuous time: every transfer's object is
// cut into chunks of ChunkVolume units dealt round-robin to the stripes of its overlay plan;
// an agent forwards a chunk of a stripe as soon as it holds it (pipelined store-and-forward,
// one chunk at a time per overlay edge, in order), and every arc is shared max-min fairly
// among the overlay edges with a chunk in flight on it (progressive filling, recomputed only
// when that set changes). So the per-arc copies and completion times of a real push are
// predicted.
//
// # Cancellation
//
// Run and Experiment.Run stop when their context is cancelled and return the results so far
// together with the context's error.
//
// The package starts no goroutines and does no I/O but the readers and writers it is given.
package sim
