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
// The package is pure: it starts no goroutines and does no I/O other than parsing the
// readers it is given.
package tree
