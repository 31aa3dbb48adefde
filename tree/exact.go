package tree

import (
	"fmt"
	"math"
)

// MaxExactTerminals is the largest receiver count SteinerExact accepts.
const MaxExactTerminals = 14

// maxExactCells bounds the dynamic program's table (2^receivers × nodes entries).
const maxExactCells = 1 << 24

// SteinerExact returns a minimum-weight tree rooted at src spanning dsts (a minimum Steiner
// arborescence, so directed weights are honoured), by the Dreyfus-Wagner dynamic program
// over receiver subsets, with each subset's table closed by a Dijkstra pass (the
// Erickson-Monma-Veinott form). Cost O(3^t V + 2^t (V + E) log V) time and O(2^t V) memory
// for t receivers; it returns ErrTooManyTerminals beyond MaxExactTerminals receivers or when
// the table would exceed 2^24 entries. It is the reference the heuristics are tested
// against.
func SteinerExact(g *Graph, src NodeID, dsts []NodeID, w Weight) (*Tree, error) {
	recv, err := checkNodes(g, src, dsts)
	if err != nil {
		return nil, err
	}
	t := len(recv)
	n := g.NumNodes()
	if t > MaxExactTerminals || (1<<t)*n > maxExactCells {
		return nil, fmt.Errorf("%w: %d receivers on %d nodes (at most %d receivers and 2^receivers × nodes <= %d)",
			ErrTooManyTerminals, t, n, MaxExactTerminals, maxExactCells)
	}
	if t == 0 {
		return &Tree{Root: src}, nil
	}
	full := 1<<t - 1
	// dp[S*n+v]: least weight of an arborescence rooted at v spanning receivers in S.
	// how[S*n+v]: > 0 split into subsets how and S^how at v; < 0 arc -(how+1) from v; 0 leaf.
	dp := make([]float64, (full+1)*n)
	how := make([]int32, (full+1)*n)
	s := newSearch(g, w)
	s.reverse = true
	for S := 1; S <= full; S++ {
		row := dp[S*n : (S+1)*n]
		hrow := how[S*n : (S+1)*n]
		for v := range row {
			row[v] = math.Inf(1)
		}
		if S&(S-1) == 0 { // a single receiver
			for i := range t {
				if S == 1<<i {
					row[recv[i]] = 0
				}
			}
		} else {
			low := S & -S
			// Splits S1 ∪ S2 = S with S1 holding S's lowest receiver, so each split is seen once.
			for S1 := (S - 1) & S; S1 > 0; S1 = (S1 - 1) & S {
				if S1&low == 0 {
					continue
				}
				r1, r2 := dp[S1*n:(S1+1)*n], dp[(S^S1)*n:((S^S1)+1)*n]
				for v := range row {
					if c := r1[v] + r2[v]; c < row[v] {
						row[v] = c
						hrow[v] = int32(S1)
					}
				}
			}
		}
		// Close under "reach the root of the subtree through an arc": a reverse Dijkstra
		// seeded with every finite entry.
		for v := range s.dist {
			s.dist[v] = math.Inf(1)
			s.pred[v] = -1
		}
		for v, c := range row {
			if !math.IsInf(c, 1) {
				s.seed(NodeID(v), c)
			}
		}
		s.run(nil)
		for v := range row {
			if a := s.pred[v]; a >= 0 {
				row[v] = s.dist[v]
				hrow[v] = -int32(a) - 1
			}
		}
	}
	if math.IsInf(dp[full*n+int(src)], 1) {
		for i, d := range recv {
			if math.IsInf(dp[(1<<i)*n+int(src)], 1) {
				return nil, unreachable(g, src, d)
			}
		}
	}
	var arcs []ArcID
	var build func(S int, v NodeID)
	build = func(S int, v NodeID) {
		switch h := how[S*n+int(v)]; {
		case h < 0:
			a := ArcID(-h - 1)
			arcs = append(arcs, a)
			build(S, g.arcs[a].To)
		case h > 0:
			build(int(h), v)
			build(S^int(h), v)
		}
	}
	build(full, src)
	return treeFromArcs(g, src, arcs, recv, w), nil
}

// treeFromArcs returns the tree that a breadth-first search from root over the given
// directed arcs finds, pruned to the terminals.
func treeFromArcs(g *Graph, root NodeID, arcs []ArcID, terminals []NodeID, w Weight) *Tree {
	out := map[NodeID][]ArcID{}
	for _, a := range arcs {
		from := g.arcs[a].From
		out[from] = append(out[from], a)
	}
	set := newArcSet(g)
	seen := map[NodeID]bool{root: true}
	frontier := []NodeID{root}
	for len(frontier) > 0 {
		v := frontier[0]
		frontier = frontier[1:]
		for _, a := range out[v] {
			if u := g.arcs[a].To; !seen[u] {
				seen[u] = true
				set.addArc(a)
				frontier = append(frontier, u)
			}
		}
	}
	return set.tree(root, terminals, w)
}
