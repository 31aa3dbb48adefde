package tree

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Algo names a tree algorithm.
type Algo string

// The tree algorithms.
const (
	// AlgoSPT is the shortest-path tree: every receiver on a least-weight path from the source.
	AlgoSPT Algo = "spt"
	// AlgoSteiner is the default Steiner heuristic (see Steiner): the cheaper of SteinerKMB
	// and SteinerTM, refined by a local search on graphs of up to 1,024 nodes. It returns
	// the exact minimum on fat-trees under hop weights.
	AlgoSteiner Algo = "steiner"
	// AlgoTM is Takahashi-Matsuyama, which honours directed, load-dependent weights.
	AlgoTM Algo = "tm"
	// AlgoExact is the exact Dreyfus-Wagner solver, for small receiver sets.
	AlgoExact Algo = "exact"
)

// Errors of the algorithms, besides those of the graph; compare with errors.Is.
var (
	// ErrUnknownAlgo is returned by ParseAlgo and Compute for a name that is no Algo.
	ErrUnknownAlgo = errors.New("tree: unknown algorithm")
	// ErrBadArgument is returned for a count below 1 (trees of MultiTree, paths of
	// KShortestPaths).
	ErrBadArgument = errors.New("tree: bad argument")
)

// Algos lists the algorithms in the order the CLI documents them.
var Algos = []Algo{AlgoSPT, AlgoSteiner, AlgoTM, AlgoExact}

// ParseAlgo returns the algorithm named s ("spt", "steiner", "tm" or "exact"), or
// ErrUnknownAlgo naming s and the valid names. Cost O(1).
func ParseAlgo(s string) (Algo, error) {
	for _, a := range Algos {
		if string(a) == s {
			return a, nil
		}
	}
	return "", fmt.Errorf("%w %q (want spt, steiner, tm or exact)", ErrUnknownAlgo, s)
}

// Compute returns a tree rooted at src spanning dsts, computed by algo under arc weight w.
// dsts may contain src and duplicates; both are ignored. Arcs weighing +Inf are never used;
// a receiver that cannot be reached otherwise gives ErrUnreachable, an id outside the graph
// ErrUnknownNode, more receivers than AlgoExact handles ErrTooManyTerminals, an unknown
// algo ErrUnknownAlgo. The returned tree's arcs are oriented away from src in breadth-first
// order, every leaf is a receiver, and Cost is the sum of w over its arcs. It panics if w
// returns a negative or NaN weight. Cost: that of the algorithm (see the package
// documentation).
func Compute(g *Graph, algo Algo, src NodeID, dsts []NodeID, w Weight) (*Tree, error) {
	switch algo {
	case AlgoSPT:
		return ShortestPathTree(g, src, dsts, w)
	case AlgoSteiner:
		return Steiner(g, src, dsts, w)
	case AlgoTM:
		return SteinerTM(g, src, dsts, w)
	case AlgoExact:
		return SteinerExact(g, src, dsts, w)
	}
	return nil, fmt.Errorf("%w %q (want spt, steiner, tm or exact)", ErrUnknownAlgo, algo)
}

// multiStarts bounds the extra roots Steiner grows trees from.
const multiStarts = 6

// localSearchWork bounds the work of all the local searches of one Steiner call, in nodes
// settled and arcs scanned (a few milliseconds): 50-node graphs stay well below it, while
// trees of hundreds of nodes stop early rather than spend a second for a fraction of a
// percent.
const localSearchWork = 500_000

// largeGraphLocalSearchArcs bounds the trees that Steiner refines by a local search on
// graphs of more than localSearchMaxNodes nodes.
const largeGraphLocalSearchArcs = 256

// perturbedRestarts is the number of tie-breaking restarts of Steiner on small graphs.
const perturbedRestarts = 8

// jitter is a deterministic hash of (a, r) into [0, 1).
func jitter(a, r uint64) float64 {
	x := a*0x9e3779b97f4a7c15 ^ (r+1)*0xbf58476d1ce4e5b9
	x ^= x >> 31
	x *= 0x94d049bb133111eb
	x ^= x >> 29
	return float64(x>>11) / (1 << 53)
}

// Steiner is the default Steiner heuristic (AlgoSteiner). It takes the cheaper of
// SteinerKMB and SteinerTM (TM on a tie). On larger graphs it refines a tree of fewer than
// 256 arcs by one bounded local search (below) and stops. On graphs of at most 1,024 nodes
// it searches further: TM grown from up to 6 receivers taken as roots (oriented away from src
// afterwards) and TM under 8 slightly perturbed weightings (hop weights tie a lot), every
// distinct candidate refined by a local search (remove a non-receiver node, exchange a key
// path, or insert a node next to the tree, whenever re-spanning the node set is cheaper).
//
// Quality: on fat-trees with hop weights the result is a minimum Steiner tree, because TM
// grown from the source reuses the core switch it reached first (KMB alone may join pods
// through different cores; the tests check the closed-form minimum on k=4, 8 and 16 and
// the benchmark on k=48). On 300 random 50-node 150-link graphs with 2 to 10 receivers it
// is 0.02% above the optimum on average and 7.1% at worst under hop weights, 0.10% and
// 7.1% under random symmetric weights (TM alone: 3.6% and 25%). With directed weights the
// local search re-spans with Prim's rule, which is not optimal for arborescences: 0.7% on
// average, 20% at worst.
//
// Cost: KMB plus TM on large graphs, O((V + E) log V) each (about 30 ms for 1,000
// receivers on a 30,000-node fat-tree); on graphs of at most 1,024 nodes up to 15 TM runs
// plus local searches of at most 300 re-spanning evaluations each and a few key-path
// exchanges (O((V + E) log V) each) per pass, all within a work bound of 500,000 nodes
// settled and arcs scanned; the weights are tabulated once (O(E)), the runs share one set
// of O(V) arrays, and a local search stops on a tree an earlier one reached. About 50 µs on
// GScale, 0.8 ms on 50 nodes, under 20 ms for every host of a 1,000-node graph. Use
// SteinerTM (microseconds there) where speed matters more than the last percent.
func Steiner(g *Graph, src NodeID, dsts []NodeID, w Weight) (*Tree, error) {
	recv, err := checkNodes(g, src, dsts)
	if err != nil {
		return nil, err
	}
	ws := newWorkspace(g)
	if g.NumNodes() <= localSearchMaxNodes {
		_, w = tabulate(g, w, nil) // the searches below weigh each arc many times
	}
	tm, err := ws.tm(src, recv, w)
	if err != nil {
		return nil, err
	}
	kmb, err := ws.kmb(src, recv, w)
	if err != nil {
		return nil, err
	}
	best := tm
	if kmb.Cost < tm.Cost {
		best = kmb
	}
	if g.NumNodes() > localSearchMaxNodes {
		// Large graph: one work-bounded local search, for small trees only (a large tree
		// costs O(V) per re-spanning, and on fat-trees TM is already minimal).
		if len(best.Arcs) < largeGraphLocalSearchArcs {
			work := localSearchWork
			best = ws.localSearch(best, recv, w, &work, nil)
		}
		return best, nil
	}
	// Starts that grow the same link set as an earlier one are skipped, and a local search
	// stops when it reaches a tree some earlier search (or start) reached: either would
	// retrace the same moves.
	seen := map[[2]uint64]bool{}
	fresh := func(t *Tree) bool {
		k := linkSetKey(t)
		if seen[k] {
			return false
		}
		seen[k] = true
		return true
	}
	fresh(best)
	work := localSearchWork
	best = ws.localSearch(best, recv, w, &work, fresh)
	// Multi-start: grow TM from other receivers too (as if the tree were undirected), orient
	// the result away from src, and refine each start by the local search.
	terms := append([]NodeID{src}, recv...)
	others := make([]NodeID, 0, len(recv))
	for i, r := range recv[:min(len(recv), multiStarts)] {
		if work <= 0 {
			break
		}
		others = append(append(others[:0], terms[:i+1]...), terms[i+2:]...)
		t, err := ws.tm(r, others, w)
		if err != nil {
			continue // a start may fail under asymmetric weights; src's own tree exists
		}
		if t = ws.treeFromLinks(src, t.Arcs, recv, w); !fresh(t) {
			continue
		}
		if t = ws.localSearch(t, recv, w, &work, fresh); t.Cost < best.Cost {
			best = t
		}
	}
	// Restarts under slightly perturbed weights break ties differently (hop weights tie a
	// lot), reaching trees that single moves cannot; each is refined under the true weights.
	var wbuf []float64
	for r := range perturbedRestarts {
		if work <= 0 {
			break
		}
		var wp Weight
		wbuf, wp = tabulate(g, func(a ArcID) float64 { return w(a) * (1 + 1e-3*jitter(uint64(a), uint64(r))) }, wbuf)
		t, err := ws.tm(src, recv, wp)
		if err != nil {
			break
		}
		if t = ws.treeFromLinks(src, t.Arcs, recv, w); !fresh(t) {
			continue
		}
		if t = ws.localSearch(t, recv, w, &work, fresh); t.Cost < best.Cost {
			best = t
		}
	}
	return best, nil
}

// linkSetKey is an order-independent 128-bit hash of the set of links of t. Cost O(T).
func linkSetKey(t *Tree) [2]uint64 {
	var k [2]uint64
	for _, a := range t.Arcs {
		l := uint64(a.Link())
		k[0] += mix64(l)
		k[1] += mix64(l ^ 0x5851f42d4c957f2d)
	}
	return k
}

// mix64 is the finalizer of splitmix64, a bijective scrambling of x.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// tabulate returns w's weights of every arc in a table (buf if it is large enough) and a
// Weight that reads them. Cost O(E) calls of w.
func tabulate(g *Graph, w Weight, buf []float64) ([]float64, Weight) {
	if cap(buf) < g.NumArcs() {
		buf = make([]float64, g.NumArcs())
	}
	buf = buf[:g.NumArcs()]
	for a := range buf {
		buf[a] = w(ArcID(a))
	}
	return buf, func(a ArcID) float64 { return buf[a] }
}

// SteinerTM computes a Steiner tree with the Takahashi-Matsuyama heuristic: starting from
// src, repeatedly join the receiver nearest to the tree by a least-weight path from the
// tree. Because it grows from the root it honours directed, load-dependent weights; it is a
// 2-approximation for symmetric weights. The improvement pass follows: the tree's nodes are
// re-spanned (a minimum spanning tree for symmetric weights; for directed weights a minimum
// arborescence by Chu-Liu/Edmonds on trees of at most 128 nodes, Prim's rule beyond),
// pruned of non-receiver leaves, and the result kept if lighter.
//
// Cost: distances to the growing tree are kept by one incremental multi-source Dijkstra
// (they only shrink), so O((V + E) log V) times the number of times a node's distance
// shrinks, in practice a small multiple of one Dijkstra; the search never enters dead ends
// (degree-1 nodes that receive nothing, such as idle hosts). Microseconds on GScale, a few
// milliseconds for 1,000 receivers on a 30,000-node fat-tree. Errors: ErrUnknownNode,
// ErrUnreachable naming the receiver.
func SteinerTM(g *Graph, src NodeID, dsts []NodeID, w Weight) (*Tree, error) {
	recv, err := checkNodes(g, src, dsts)
	if err != nil {
		return nil, err
	}
	return newWorkspace(g).tm(src, recv, w)
}

// tm is SteinerTM for distinct receivers other than src, on the workspace's arrays.
func (ws *workspace) tm(src NodeID, recv []NodeID, w Weight) (*Tree, error) {
	set := ws.arcSet(&ws.set)
	inTree := ws.bools(&ws.inTree, ws.g.NumNodes())
	clear(inTree)
	inTree[src] = true
	if err := ws.growTM(src, recv, w, set, inTree); err != nil {
		return nil, err
	}
	return ws.improve(set.tree(src, recv, w), recv, w), nil
}

// growTM extends a partial tree (the arcs in set, oriented away from src, spanning the
// nodes with inTree set) by Takahashi-Matsuyama's rule until it spans every receiver: the
// receiver nearest to the tree joins by a least-weight path from the tree, and the
// distances to the tree, kept by one incremental multi-source Dijkstra, shrink. It returns
// ErrUnreachable naming a receiver no path of finite weight reaches.
func (ws *workspace) growTM(src NodeID, recv []NodeID, w Weight, set *arcSet, inTree []bool) error {
	g := ws.g
	remaining := 0
	for _, d := range recv {
		if !inTree[d] {
			remaining++
		}
	}
	if remaining == 0 {
		return nil
	}
	isTerm := ws.bools(&ws.isTerm, g.NumNodes())
	clear(isTerm)
	for _, d := range recv {
		isTerm[d] = true
	}
	s := ws.freshSearch(w)
	s.skip = ws.deadEnds(src, recv)
	waiting := ws.heapOf(&ws.waiting) // receivers not yet joined, keyed by distance to the tree
	visit := func(v NodeID) bool {
		if isTerm[v] && !inTree[v] {
			waiting.push(v, s.dist[v])
		}
		return true
	}
	for v, in := range inTree {
		if in {
			s.seed(NodeID(v), 0)
		}
	}
	s.run(visit)
	var added []NodeID
	for remaining > 0 {
		if waiting.Len() == 0 {
			for _, d := range recv {
				if !inTree[d] {
					return unreachable(g, src, d)
				}
			}
		}
		t, _ := waiting.pop()
		if inTree[t] {
			continue
		}
		added = added[:0]
		for v := t; !inTree[v]; v = g.arcs[s.pred[v]].From {
			set.addArc(s.pred[v])
			inTree[v] = true
			added = append(added, v)
			if isTerm[v] {
				remaining--
			}
		}
		for _, v := range added {
			s.seed(v, 0)
		}
		s.run(visit)
	}
	return nil
}

// SteinerKMB computes a Steiner tree with Mehlhorn's variant of the Kou-Markowsky-Berman
// 2-approximation: one multi-source Dijkstra from all terminals (src and the receivers)
// partitions the graph into Voronoi regions; every link joining two regions gives a
// candidate terminal-to-terminal path; a minimum spanning tree of the candidates is expanded
// into its paths, and the improvement pass follows. Cost O((V + E) log V).
//
// KMB assumes symmetric weights. With asymmetric weights each region is grown outward from
// its terminal, so paths are weighed in that direction although the tree may cross them
// the other way; the returned tree's Cost is always its true weight oriented away from src.
// If an arc of the oriented tree weighs +Inf (its link is usable only the other way), the
// part of the tree that src reaches over usable arcs is kept and the receivers it cuts off
// are joined by Takahashi-Matsuyama's rule, so no +Inf arc is ever used. Prefer SteinerTM
// (or Steiner) for directed weights.
func SteinerKMB(g *Graph, src NodeID, dsts []NodeID, w Weight) (*Tree, error) {
	recv, err := checkNodes(g, src, dsts)
	if err != nil {
		return nil, err
	}
	if len(recv) == 0 {
		return &Tree{Root: src}, nil
	}
	return newWorkspace(g).kmb(src, recv, w)
}

// kmb is SteinerKMB for distinct receivers other than src, on the workspace's arrays.
func (ws *workspace) kmb(src NodeID, recv []NodeID, w Weight) (*Tree, error) {
	g := ws.g
	if len(recv) == 0 {
		return &Tree{Root: src}, nil
	}
	terms := append([]NodeID{src}, recv...)
	n := g.NumNodes()
	base := make([]int32, n) // index in terms of the region's terminal
	for i := range base {
		base[i] = -1
	}
	s := ws.freshSearch(w)
	s.skip = ws.deadEnds(src, recv)
	for i, t := range terms {
		s.seed(t, 0)
		base[t] = int32(i)
	}
	order := make([]NodeID, 0, n)
	s.run(func(v NodeID) bool { order = append(order, v); return true })
	for _, v := range order {
		if a := s.pred[v]; a >= 0 {
			base[v] = base[g.arcs[a].From]
		}
	}
	type cand struct {
		cost float64
		arc  ArcID
	}
	var cands []cand
	for l := range g.NumLinks() {
		a := ArcID(2 * l)
		arc := g.arcs[a]
		bu, bv := base[arc.From], base[arc.To]
		if bu < 0 || bv < 0 || bu == bv {
			continue
		}
		c := w(a)
		if rc := w(a.Reverse()); rc < c {
			c, a = rc, a.Reverse()
		}
		if math.IsInf(c, 1) {
			continue
		}
		cands = append(cands, cand{s.dist[arc.From] + c + s.dist[arc.To], a})
	}
	slices.SortFunc(cands, func(x, y cand) int {
		if x.cost != y.cost {
			if x.cost < y.cost {
				return -1
			}
			return 1
		}
		return int(x.arc - y.arc)
	})
	uf := newUnionFind(len(terms))
	var links []ArcID
	onLink := make([]bool, g.NumLinks())
	addPath := func(v NodeID) {
		for a := s.pred[v]; a >= 0 && !onLink[a.Link()]; a = s.pred[v] {
			onLink[a.Link()] = true
			links = append(links, a)
			v = g.arcs[a].From
		}
	}
	joined := 1
	for _, c := range cands {
		arc := g.arcs[c.arc]
		if !uf.union(int(base[arc.From]), int(base[arc.To])) {
			continue
		}
		joined++
		if !onLink[c.arc.Link()] {
			onLink[c.arc.Link()] = true
			links = append(links, c.arc)
		}
		addPath(arc.From)
		addPath(arc.To)
		if joined == len(terms) {
			break
		}
	}
	for i, t := range terms {
		if uf.find(i) != uf.find(0) {
			return nil, unreachable(g, src, t)
		}
	}
	t := ws.treeFromLinks(src, links, recv, w)
	if math.IsInf(t.Cost, 1) {
		// Asymmetric weights: some path is crossed against an unusable direction. Keep
		// the part of the tree that src reaches over usable arcs, and join the receivers it
		// cuts off by Takahashi-Matsuyama's rule.
		set := ws.arcSet(&ws.set)
		inTree := ws.bools(&ws.inTree, n)
		clear(inTree)
		inTree[src] = true
		for _, a := range t.Arcs { // breadth-first: a's tail is decided before a
			if arc := g.arcs[a]; inTree[arc.From] && !math.IsInf(w(a), 1) {
				set.addArc(a)
				inTree[arc.To] = true
			}
		}
		if err := ws.growTM(src, recv, w, set, inTree); err != nil {
			return nil, err
		}
		t = set.tree(src, recv, w)
	}
	return ws.improve(t, recv, w), nil
}

// improve is the improvement pass of the heuristics: a spanning arborescence of the
// subgraph induced by the tree's nodes, then pruned of non-receiver leaves. For symmetric
// weights it is grown from the root with Prim's rule (the minimum spanning tree); for
// directed weights on at most arborescenceMaxNodes nodes it is a minimum arborescence
// (Chu-Liu/Edmonds, O(S · arcs)), and Prim's rule again on larger trees. The result is
// kept only if it is cheaper, so the pass never makes a tree worse. Cost O(T log T + arcs at
// the tree's nodes).
func (ws *workspace) improve(t *Tree, recv []NodeID, w Weight) *Tree {
	if len(t.Arcs) < 2 {
		return t
	}
	g := ws.g
	n := g.NumNodes()
	member := ws.bools(&ws.member, n)
	clear(member)
	nodes := t.Nodes(g)
	for _, v := range nodes {
		member[v] = true
	}
	if len(nodes) <= arborescenceMaxNodes && !symmetric(g, nodes, w) {
		if ws.ab == nil {
			ws.ab = newArborescence(g, w)
		}
		ws.ab.w = w
		_, enter := ws.ab.span(t.Root, member)
		set := ws.arcSet(&ws.impSet)
		for _, a := range enter[1:] {
			set.addArc(a)
		}
		if better := set.tree(t.Root, recv, w); better.Cost < t.Cost && len(set.nodes) == len(t.Arcs) {
			return better
		}
		return t
	}
	done := ws.bools(&ws.done, n)
	clear(done)
	if len(ws.via) < n {
		ws.via = make([]ArcID, n)
	}
	via := ws.via
	h := ws.heapOf(&ws.heap)
	set := ws.arcSet(&ws.impSet)
	h.push(t.Root, 0)
	via[t.Root] = -1
	for h.Len() > 0 {
		v, _ := h.pop()
		done[v] = true
		if via[v] >= 0 {
			set.addArc(via[v])
		}
		for _, a := range g.Out(v) {
			u := g.arcs[a].To
			if !member[u] || done[u] {
				continue
			}
			c := w(a)
			if math.IsInf(c, 1) {
				continue
			}
			if h.pos[u] < 0 || c < h.keys[u] {
				via[u] = a
				h.push(u, c)
			}
		}
	}
	if better := set.tree(t.Root, recv, w); better.Cost < t.Cost && len(set.nodes) == len(t.Arcs) {
		return better
	}
	return t
}

type unionFind struct{ parent []int32 }

func newUnionFind(n int) *unionFind {
	p := make([]int32, n)
	for i := range p {
		p[i] = int32(i)
	}
	return &unionFind{p}
}

func (u *unionFind) find(x int) int {
	for int(u.parent[x]) != x {
		u.parent[x] = u.parent[u.parent[x]]
		x = int(u.parent[x])
	}
	return x
}

// union joins the sets of x and y and reports whether they were apart.
func (u *unionFind) union(x, y int) bool {
	x, y = u.find(x), u.find(y)
	if x == y {
		return false
	}
	u.parent[y] = int32(x)
	return true
}
