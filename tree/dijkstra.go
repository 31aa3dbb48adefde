package tree

import (
	"fmt"
	"math"
	"slices"
)

// search holds the state of a (multi-source, possibly incremental) Dijkstra search.
// dist[v] is the best known distance to v from the sources, pred[v] the arc that reaches v
// on that path (-1 for sources and unreached nodes). Arcs weighing +Inf are never used.
type search struct {
	g    *Graph
	w    Weight
	dist []float64
	pred []ArcID
	heap *nodeHeap
	// reverse makes the search follow arcs backwards: dist[v] is then the distance from v to
	// the sources, and pred[v] the arc leaving v on that path.
	reverse bool
	// skip, if not nil, marks nodes the search never enters (see deadEnds).
	skip []bool
}

// deadEnds marks the nodes of degree 1 other than src and the receivers: no path between
// two other nodes crosses them, so searches for trees need not enter them. On a fat-tree
// these are the hosts that receive nothing, most of the graph. Cost O(V).
func deadEnds(g *Graph, src NodeID, recv []NodeID) []bool {
	skip := make([]bool, g.NumNodes())
	for v := range skip {
		skip[v] = g.outStart[v+1]-g.outStart[v] == 1
	}
	skip[src] = false
	for _, r := range recv {
		skip[r] = false
	}
	return skip
}

func newSearch(g *Graph, w Weight) *search {
	n := g.NumNodes()
	s := &search{g: g, w: w, dist: make([]float64, n), pred: make([]ArcID, n), heap: newNodeHeap(n)}
	for i := range s.dist {
		s.dist[i] = math.Inf(1)
		s.pred[i] = -1
	}
	return s
}

// reset readies s for a new search under w: every distance +Inf, no predecessor, the heap
// empty, forward, no node skipped. Cost O(V).
func (s *search) reset(w Weight) {
	s.w = w
	s.heap.reset()
	for i := range s.dist {
		s.dist[i] = math.Inf(1)
		s.pred[i] = -1
	}
	s.reverse = false
	s.skip = nil
}

// seed makes v a source at distance d (if that improves it).
func (s *search) seed(v NodeID, d float64) {
	if d < s.dist[v] {
		s.dist[v] = d
		s.pred[v] = -1
		s.heap.push(v, d)
	}
}

// run settles nodes until the heap is empty, calling visit (if not nil) on each settled
// node; visit returning false stops the search early. Cost O((V + E) log V).
func (s *search) run(visit func(v NodeID) bool) {
	g, w, h := s.g, s.w, s.heap
	arcs, dist, pred := g.arcs, s.dist, s.pred
	for h.Len() > 0 {
		v, d := h.pop()
		if d > dist[v] {
			continue
		}
		if visit != nil && !visit(v) {
			return
		}
		for _, a := range g.Out(v) {
			u := arcs[a].To
			if s.skip != nil && s.skip[u] {
				continue
			}
			if s.reverse {
				a = a.Reverse() // the arc u->v, explored from v back to u
			}
			c := w(a)
			if !(c >= 0) || c > math.MaxFloat64 { // negative, NaN or +Inf
				if math.IsInf(c, 1) {
					continue
				}
				panic(fmt.Sprintf("tree: arc weight %v of %s->%s is negative or NaN", c, g.NodeName(arcs[a].From), g.NodeName(arcs[a].To)))
			}
			if nd := d + c; nd < dist[u] {
				dist[u] = nd
				pred[u] = a
				h.push(u, nd)
			}
		}
	}
}

// settleSources makes every node of srcs a source at distance 0 and settles it at once:
// its arcs are relaxed here, so the sources never pass through the heap (visit is not
// called on them). Use on a fresh search; cost O(arcs at srcs · log V).
func (s *search) settleSources(srcs []NodeID) {
	for _, v := range srcs {
		s.dist[v] = 0
		s.pred[v] = -1
	}
	g, w, arcs := s.g, s.w, s.g.arcs
	for _, v := range srcs {
		for _, a := range g.Out(v) {
			u := arcs[a].To
			if s.dist[u] == 0 || (s.skip != nil && s.skip[u]) {
				continue
			}
			if s.reverse {
				a = a.Reverse()
			}
			c := w(a)
			if !(c >= 0) || c > math.MaxFloat64 {
				if math.IsInf(c, 1) {
					continue
				}
				panic(fmt.Sprintf("tree: arc weight %v of %s->%s is negative or NaN", c, g.NodeName(arcs[a].From), g.NodeName(arcs[a].To)))
			}
			if c < s.dist[u] {
				s.dist[u] = c
				s.pred[u] = a
				s.heap.push(u, c)
			}
		}
	}
}

// pathFrom returns the arcs from v to the sources in path order (reverse search only).
func (s *search) pathFrom(v NodeID) []ArcID {
	var p []ArcID
	for s.pred[v] >= 0 {
		a := s.pred[v]
		p = append(p, a)
		v = s.g.arcs[a].To
	}
	return p
}

// pathTo returns the arcs from the sources to v in path order (forward search only).
func (s *search) pathTo(v NodeID) []ArcID {
	var p []ArcID
	for s.pred[v] >= 0 {
		a := s.pred[v]
		p = append(p, a)
		v = s.g.arcs[a].From
	}
	slices.Reverse(p)
	return p
}

// checkNodes validates src and dsts and returns the distinct receivers other than src.
func checkNodes(g *Graph, src NodeID, dsts []NodeID) ([]NodeID, error) {
	n := NodeID(g.NumNodes())
	if src < 0 || src >= n {
		return nil, fmt.Errorf("%w: source id %d (graph %s has %d nodes)", ErrUnknownNode, src, g.name, n)
	}
	seen := make(map[NodeID]bool, len(dsts))
	out := make([]NodeID, 0, len(dsts))
	for _, d := range dsts {
		if d < 0 || d >= n {
			return nil, fmt.Errorf("%w: receiver id %d (graph %s has %d nodes)", ErrUnknownNode, d, g.name, n)
		}
		if d != src && !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out, nil
}

func unreachable(g *Graph, src, dst NodeID) error {
	return fmt.Errorf("%w: %s from %s", ErrUnreachable, g.NodeName(dst), g.NodeName(src))
}

// ShortestPath returns a least-weight path from src to dst as arcs in path order, and its
// weight. It returns ErrUnreachable when no path avoids +Inf arcs. Cost O((V + E) log V),
// less when dst is near.
func ShortestPath(g *Graph, src, dst NodeID, w Weight) ([]ArcID, float64, error) {
	if _, err := checkNodes(g, src, []NodeID{dst}); err != nil {
		return nil, 0, err
	}
	s := newSearch(g, w)
	s.seed(src, 0)
	s.run(func(v NodeID) bool { return v != dst })
	if math.IsInf(s.dist[dst], 1) {
		return nil, 0, unreachable(g, src, dst)
	}
	return s.pathTo(dst), s.dist[dst], nil
}

// ShortestPathTree returns the union of least-weight paths from src to every receiver, as a
// tree pruned to the receivers. Ties are broken deterministically. Weights may be
// asymmetric; every receiver sits at its least distance from src. Cost O((V + E) log V),
// one Dijkstra that never enters dead ends (degree-1 nodes that receive nothing). Errors:
// ErrUnknownNode, ErrUnreachable naming the receiver.
func ShortestPathTree(g *Graph, src NodeID, dsts []NodeID, w Weight) (*Tree, error) {
	recv, err := checkNodes(g, src, dsts)
	if err != nil {
		return nil, err
	}
	s := newSearch(g, w)
	s.skip = deadEnds(g, src, recv)
	s.seed(src, 0)
	s.run(nil)
	in := newArcSet(g)
	for _, d := range recv {
		if math.IsInf(s.dist[d], 1) {
			return nil, unreachable(g, src, d)
		}
		for v := d; s.pred[v] >= 0 && !in.hasNode(v); v = g.arcs[s.pred[v]].From {
			in.addArc(s.pred[v])
		}
	}
	return in.tree(src, recv, w), nil
}
