// Package scheduler is treecast's decision core: it decides which trees carry a transfer
// and, for the agents, how they forward an object to one another. It is pure: no goroutines,
// no I/O, no clock. The simulator and the agents drive the same code, so what the simulator
// measures is what the agents execute.
//
// Transfer scheduling (the network replicates: SDN multicast, the simulator's network
// schemes). A [Scheduler] takes point-to-multipoint transfers ([Scheduler.Submit]) and is
// advanced slot by slot ([Scheduler.Step]); its [Policy] picks the trees (DCCast's
// load-weighted Steiner tree, QuickCast's receiver cohorts, a uniformly random spanning tree,
// MINMAX, shortest paths, several trees) or, for the P2P baselines, unicast paths, and its
// [Rate] shares arc capacity (FCFS promises, SRPT, max-min fair). PolicyP2PLP picks rates
// with a linear program (gonum's simplex) instead.
//
// Overlay plans (only hosts replicate: the agents' model). [Build] takes a topology (built,
// parsed, or inferred from agents' labels by [InferTopology]), a source agent and receiver
// agents, and returns a [Plan]: one tree per stripe over the agents, each overlay edge routed
// on the topology. The strategies trade depth for copies per arc:
//
//   - chain: receivers in the depth-first order of a physical Steiner tree; every arc
//     carries at most one copy each way (an Euler tour crosses each tree link once each
//     way); depth is the number of receivers.
//   - tree: receivers grouped by rack; rack heads chained in depth-first order (one copy per
//     switch-to-switch arc) and bounded fan-out inside each rack (a relay's uplink carries its
//     fan-out); depth is the number of racks plus a logarithm of the rack size.
//   - forest: S stripes over S trees, each receiver interior in one tree only, so every
//     node uploads about one copy (at most 1 + 1/S on a host link) and depth is logarithmic.
//     With parity M, M more trees carry Reed-Solomon parity chunks, one chunk of every group
//     per tree.
//   - unicast: the source sends to everyone: the baseline.
//
// [Plan.Copies] accounts for the copies on every arc, [Plan.Validate] checks the plan's
// invariants, [Plan.Wire] gives the compact form the agents exchange in stream headers, and
// [Replan] re-attaches the subtrees orphaned by failed relays without touching healthy ones.
package scheduler
