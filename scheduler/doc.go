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
//   - auto (the default): builds the candidates below on one Steiner tree (forests of 2,
//     4, 8 and 16 stripes with budgets T, T+1 and T + T/4, a chain for few receivers) and
//     keeps the one [Plan.Predict] says finishes first, preferring plans within [DepthCap]
//     whose receivers relay in one data stripe; the plan records the strategy it chose.
//   - chain: receivers in the depth-first order of a physical Steiner tree; every arc
//     carries at most one copy each way (an Euler tour crosses each tree link once each
//     way); depth is the number of receivers.
//   - tree: receivers grouped by rack; rack heads chained in depth-first order (one copy per
//     switch-to-switch arc) and bounded fan-out inside each rack (a relay's uplink carries its
//     fan-out); depth is the number of racks plus a logarithm of the rack size.
//   - forest: SplitStream at every level of the hierarchy the Steiner tree shows (racks,
//     pods, data centers; on a WAN, the sites behind each link). Each stripe's tree enters
//     every group once; each receiver relays in the tree of its class only, with at most
//     Fanout children (default T + T/4), and each group sends at most as many edges out, so
//     every arc, host or switch, carries about one copy (at most 1.25 with 4 or more trees)
//     and depth grows with the logarithm of the group sizes at each level. With parity M,
//     M more trees carry Reed-Solomon parity chunks, one chunk of every group per tree. On a
//     WAN (one agent per site) the groups are the subtrees of the Steiner tree over the
//     sites, so each WAN link carries about one copy each way; a site that is both a
//     receiver and a router relays in its class's tree like any receiver. A forest with more
//     trees than a rack has receivers cannot enter that rack once per tree: a receiver then
//     relays in two trees, or the rack is entered more than once (auto avoids such shapes).
//   - unicast: the source sends to everyone: the baseline.
//
// Every plan carries a chunk size ([ChunkSizeFor]: at least 32 chunks a stripe, so stripes
// carry equal shares, and frames ([FrameSizeFor]) small enough that the pipeline fill,
// depth × stripes × frame, is a thirty-second of the transfer) and a [Summary], the one
// line and the JSON object (with max_arc_copies) that push and demo report.
//
// [Plan.Copies] accounts for the copies on every arc, [Plan.Validate] checks the plan's
// invariants, [Plan.Wire] gives the compact form the agents exchange in stream headers, and
// [Replan] re-attaches the subtrees orphaned by failed relays without touching healthy ones.
package scheduler
