// Package tree holds treecast's topology model and its multicast tree algorithms.
//
// A topology is a [Graph] of named nodes (hosts, switches and WAN sites) joined by
// full-duplex links. Each direction of a link is an arc with its own capacity (bits/s) and
// latency; load and copies are counted per arc. Graphs are built with a [Builder], by the
// topology builders ([FatTree], [LeafSpine], [BCube], [GScale], [RandomWAN]) or by the
// parsers (GraphML as the Internet Topology Zoo writes it, and a plain edge list), and are
// immutable afterwards, so one graph may be shared by any number of goroutines.
//
// The algorithms compute trees rooted at a source that span a set of receivers: shortest-path
// trees, Steiner tree heuristics (Mehlhorn's variant of Kou-Markowsky-Berman, and
// Takahashi-Matsuyama, which accepts directed, load-dependent arc weights), an exact
// Dreyfus-Wagner solver for small terminal sets, and several trees at once with minimum
// overlap (Datacast). Arc weights are a [Weight] function, so callers such as the scheduler
// can pass load-dependent weights.
//
// # Choosing an algorithm
//
// [Compute] dispatches on an [Algo]; every algorithm returns a [Tree] whose arcs are oriented
// away from the source in breadth-first (hence topological) order, whose leaves are all
// receivers, and whose Cost is the sum of the weight over its arcs. Receiver lists may hold
// the source and duplicates; arcs weighing +Inf are never used; a receiver that cannot be
// reached gives [ErrUnreachable] naming it, an id outside the graph [ErrUnknownNode].
//
//   - "spt" ([ShortestPathTree]): every receiver on a least-weight path. One Dijkstra,
//     O((V + E) log V); honours directed weights. Lowest depth, most arcs.
//   - "tm" ([SteinerTM]): Takahashi-Matsuyama grown from the source, one incremental
//     multi-source Dijkstra. Honours directed, load-dependent weights; about 5 µs on a WAN
//     such as GScale, 30 µs on a 50-node graph, 7 ms for 1,000 receivers on a k=48
//     fat-tree (30,528 nodes). This is what a DCCast scheduler calls once per transfer.
//   - "steiner" ([Steiner]): the default. The cheaper of TM and [SteinerKMB] (Mehlhorn's
//     single-Dijkstra Kou-Markowsky-Berman), then, on graphs of at most 1,024 nodes, more
//     starts and a local search. It is TM rather than KMB that guarantees the exact minimum
//     on fat-trees (TM grown from the source reuses the core switch it reached first, while
//     KMB's paths may cross different cores for different pods), and the local search that
//     brings random WAN graphs within a fraction of a percent of the optimum on average.
//     About 0.05 to 0.2 ms on GScale, about 1 ms on a 50-node graph, 10 to 30 ms for
//     1,000 receivers on a k=48 fat-tree and under 0.1 s for all its 27,647 other hosts.
//   - "exact" ([SteinerExact]): Dreyfus-Wagner, a minimum Steiner arborescence, for at most
//     [MaxExactTerminals] receivers (exponential in their number); the reference of the
//     tests.
//
// [MultiTree] computes several trees with as few shared arcs as it can (Datacast), and
// builds arc-disjoint ones whenever disjoint spanning arborescences exist (Edmonds'
// theorem). [ShortestPath] and [KShortestPaths] (Yen) serve unicast schemes.
//
// Weights are a function of the arc, so one link may cost differently in its two
// directions: [Hops], [Graph.LatencyWeight], [Graph.InvCapWeight], or the caller's own
// (the scheduler passes load + volume). A weight must be >= 0 or +Inf; the algorithms panic
// on a negative or NaN weight, which is a programming error.
//
// The package is pure: it starts no goroutines and does no I/O other than parsing the
// readers it is given.
package tree
