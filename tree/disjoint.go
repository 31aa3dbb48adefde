package tree

import "math"

// unitFlow answers arc-connectivity questions ("are there k arc-disjoint paths from s to
// t?") by augmenting paths over unit-capacity arcs: the arcs a with present[a] set. Its
// scratch arrays are allocated once and reused by every query.
type unitFlow struct {
	g       *Graph
	present []bool  // arcs that exist in the digraph under study
	flow    []bool  // arcs carrying a unit of flow in the current query
	via     []ArcID // arc x->y by which the search reached y
	cancel  []bool  // y was reached by cancelling the flow on via[y].Reverse()
	seen    []int32 // visit stamps
	stamp   int32
	queue   []NodeID
	used    []ArcID // arcs whose flow was set, to clear them in O(flow) between queries
}

func newUnitFlow(g *Graph, present []bool) *unitFlow {
	n := g.NumNodes()
	return &unitFlow{g: g, present: present, flow: make([]bool, g.NumArcs()),
		via: make([]ArcID, n), cancel: make([]bool, n), seen: make([]int32, n)}
}

// atLeast reports whether k arc-disjoint paths lead from s to t over the present arcs.
// Cost O(k · (V + E)).
func (f *unitFlow) atLeast(s, t NodeID, k int) bool {
	for _, a := range f.used {
		f.flow[a] = false
	}
	f.used = f.used[:0]
	if s == t {
		return true
	}
	for range k {
		if !f.augment(s, t) {
			return false
		}
	}
	return true
}

// augment finds one augmenting path from s to t in the residual digraph (breadth-first)
// and pushes a unit of flow along it.
func (f *unitFlow) augment(s, t NodeID) bool {
	g := f.g
	f.stamp++
	f.seen[s] = f.stamp
	f.queue = append(f.queue[:0], s)
	for qi := 0; qi < len(f.queue) && f.seen[t] != f.stamp; qi++ {
		x := f.queue[qi]
		for _, a := range g.Out(x) {
			y := g.arcs[a].To
			if f.seen[y] == f.stamp {
				continue
			}
			// Residual x->y: cancel flow on y->x first, else use a free arc x->y.
			switch b := a.Reverse(); {
			case f.flow[b]:
				f.cancel[y] = true
			case f.present[a] && !f.flow[a]:
				f.cancel[y] = false
			default:
				continue
			}
			f.via[y] = a
			f.seen[y] = f.stamp
			f.queue = append(f.queue, y)
		}
	}
	if f.seen[t] != f.stamp {
		return false
	}
	for y := t; y != s; {
		a := f.via[y]
		if f.cancel[y] {
			f.flow[a.Reverse()] = false
		} else {
			f.flow[a] = true
			f.used = append(f.used, a)
		}
		y = g.arcs[a].From
	}
	return true
}

// disjointMaxArcs bounds the graphs on which MultiTree runs the exact construction of
// disjointSpanning: its cost grows as k² E² in the worst case.
const disjointMaxArcs = 1 << 13

// disjointSpanning returns k arc-disjoint arborescences rooted at r, each spanning every
// receiver, over the arcs with finite weight, or nil when the construction does not apply.
//
// It looks for the largest node set U (containing r) such that, in the digraph induced by
// U, every node of U is joined to r by k arc-disjoint paths (a fixpoint of removing nodes
// that are not). If the receivers lie in U, Edmonds' branching theorem guarantees k
// arc-disjoint arborescences spanning U, and they are built by Lovász's constructive proof:
// each arborescence is grown from r one arc u->v at a time, taking an arc only if v keeps
// k-i-1 arc-disjoint paths from r once the arcs of the arborescences so far (and this arc)
// are removed. A rejected arc stays rejected while the arborescence grows (connectivity
// only falls), so each arc is tested at most once per arborescence. Candidate arcs are
// tried in order of distance from r (Dijkstra's order under w), which keeps the trees
// shallow. Each arborescence is finally pruned to the receivers.
//
// Cost O(k · R · (V + E)) to rule out R receivers cut from r by fewer than k arcs (then no k
// disjoint trees exist at all), O(k · V · (V + E)) per round of the node-set fixpoint, then
// O(k² · E · (V + E)) for the construction.
func disjointSpanning(g *Graph, r NodeID, recv []NodeID, k int, w Weight) [][]ArcID {
	n, m := g.NumNodes(), g.NumArcs()
	inU := make([]bool, n)
	for v := range inU {
		inU[v] = true
	}
	finite := make([]bool, m)
	for a := range finite {
		finite[a] = !math.IsInf(w(ArcID(a)), 1)
	}
	present := make([]bool, m)
	f := newUnitFlow(g, present)
	for a := range present {
		present[a] = finite[a]
	}
	for _, t := range recv {
		if !f.atLeast(r, t, k) {
			return nil // a cut of fewer than k arcs separates t from r: no k disjoint trees
		}
	}
	for changed := true; changed; {
		changed = false
		for a := range present {
			arc := g.arcs[a]
			present[a] = finite[a] && inU[arc.From] && inU[arc.To]
		}
		for v := range n {
			if inU[v] && NodeID(v) != r && !f.atLeast(r, NodeID(v), k) {
				inU[v], changed = false, true
			}
		}
	}
	for _, t := range recv {
		if !inU[t] {
			return nil // some receiver has fewer than k disjoint paths within U
		}
	}
	size := 0
	for _, in := range inU {
		if in {
			size++
		}
	}
	type cand struct {
		key float64
		arc ArcID
	}
	var trees [][]ArcID
	inF := make([]bool, n)
	dist := make([]float64, n)
	for i := range k {
		need := k - i - 1 // arc-connectivity the arborescences after this one need
		clear(inF)
		inF[r] = true
		dist[r] = 0
		var arcs []ArcID
		// A small binary heap of candidate arcs keyed by the distance of their head.
		var heap []cand
		less := func(x, y cand) bool { return x.key < y.key || (x.key == y.key && x.arc < y.arc) }
		push := func(c cand) {
			heap = append(heap, c)
			for j := len(heap) - 1; j > 0; {
				p := (j - 1) / 2
				if !less(heap[j], heap[p]) {
					break
				}
				heap[j], heap[p] = heap[p], heap[j]
				j = p
			}
		}
		pop := func() cand {
			top := heap[0]
			last := len(heap) - 1
			heap[0] = heap[last]
			heap = heap[:last]
			for j := 0; ; {
				l, s := 2*j+1, j
				if l < last && less(heap[l], heap[s]) {
					s = l
				}
				if l+1 < last && less(heap[l+1], heap[s]) {
					s = l + 1
				}
				if s == j {
					break
				}
				heap[j], heap[s] = heap[s], heap[j]
				j = s
			}
			return top
		}
		grow := func(u NodeID) {
			for _, a := range g.Out(u) {
				if present[a] && !inF[g.arcs[a].To] {
					push(cand{dist[u] + w(a), a})
				}
			}
		}
		grow(r)
		for reached := 1; reached < size; {
			if len(heap) == 0 {
				return nil // cannot happen when Edmonds' condition holds
			}
			c := pop()
			v := g.arcs[c.arc].To
			if inF[v] || !present[c.arc] {
				continue
			}
			present[c.arc] = false
			if need > 0 && !f.atLeast(r, v, need) {
				present[c.arc] = true // rejected for this arborescence, still usable by later ones
				continue
			}
			inF[v] = true
			dist[v] = c.key
			arcs = append(arcs, c.arc)
			reached++
			grow(v)
		}
		trees = append(trees, arcs)
	}
	for i, arcs := range trees {
		set := newArcSet(g)
		for _, a := range arcs {
			set.addArc(a)
		}
		trees[i] = set.tree(r, recv, w).Arcs
	}
	return trees
}
