package tree

import (
	"fmt"
	"math"
	"slices"
)

// Forest is a set of trees with the same root and receivers.
type Forest struct {
	Trees []*Tree
	// SharedArcs is the number of arcs used by more than one tree.
	SharedArcs int
}

// MultiTree computes k trees rooted at src spanning dsts with as little overlap as it can
// (Datacast). Disjointness is per arc: the two directions of a link are separate arcs, so
// two trees may cross one link in opposite directions without sharing. Each tree's Cost is
// its weight under w; SharedArcs counts the arcs used by more than one tree.
//
// First, greedily, tree i is computed by algo under w plus, on every arc already used by
// earlier trees, a penalty larger than the weight of any tree without that arc, so each new
// tree avoids shared arcs first and weight second; rounds of rip-up and reroute then
// recompute each tree against all the others while that lowers the overlap. If arcs are
// still shared and the graph has at most 8,192 arcs, an exact construction follows: when
// the receivers lie in a node set U whose every node has k arc-disjoint paths from src
// inside U (always so when the whole graph has k arc-disjoint spanning arborescences from
// src, Edmonds' branching theorem), k arc-disjoint trees are built by Lovász's constructive
// proof of that theorem, then each is recomputed by algo with the others' arcs forbidden
// while that makes it lighter. So the trees are arc-disjoint whenever k disjoint spanning
// arborescences exist; when only disjoint Steiner trees exist (some node outside U, say a
// receiver-free appendix, has fewer paths) the greedy result is returned.
//
// Cost: k runs of algo, at most 2k² more in the rerouting rounds, and, when the greedy
// trees overlap on a small graph, O(k · V · (V + E) + k² · E · (V + E)) for the
// construction plus 2k runs of algo. Errors: those of algo (ErrUnknownNode,
// ErrUnreachable, ErrTooManyTerminals); k < 1 is an error.
func MultiTree(g *Graph, algo Algo, src NodeID, dsts []NodeID, k int, w Weight) (*Forest, error) {
	if k < 1 {
		return nil, fmt.Errorf("%w: %d trees requested, want at least 1", ErrBadArgument, k)
	}
	total := 1.0
	for a := range ArcID(g.NumArcs()) {
		if c := w(a); !math.IsInf(c, 1) {
			total += c
		}
	}
	uses := make([]int32, g.NumArcs())
	penalized := func(a ArcID) float64 { return w(a) + total*float64(uses[a]) }
	trees := make([]*Tree, k)
	shared := func() int {
		c := 0
		for _, u := range uses {
			if u > 1 {
				c++
			}
		}
		return c
	}
	for i := range k {
		t, err := Compute(g, algo, src, dsts, penalized)
		if err != nil {
			return nil, err
		}
		trees[i] = t
		for _, a := range t.Arcs {
			uses[a]++
		}
	}
	// Rip up and reroute: recompute each tree against all the others, keeping the change
	// when it shares fewer arcs (or as few, more cheaply); stop when a round changes nothing.
	for round := 0; round < 2*k && shared() > 0; round++ {
		changed := false
		for i, t := range trees {
			before, cost := shared(), t.Weigh(w)
			for _, a := range t.Arcs {
				uses[a]--
			}
			nt, err := Compute(g, algo, src, dsts, penalized)
			if err != nil {
				return nil, err
			}
			for _, a := range nt.Arcs {
				uses[a]++
			}
			if after := shared(); after < before || (after == before && nt.Weigh(w) < cost) {
				trees[i], changed = nt, true
				continue
			}
			for _, a := range nt.Arcs {
				uses[a]--
			}
			for _, a := range t.Arcs {
				uses[a]++
			}
		}
		if !changed {
			break
		}
	}
	if shared() > 0 && g.NumArcs() <= disjointMaxArcs {
		recv, _ := checkNodes(g, src, dsts)
		if arcs := disjointSpanning(g, src, recv, k, w); arcs != nil {
			trees = disjointForest(g, algo, src, dsts, arcs, w, uses)
		}
	}
	for _, t := range trees {
		t.Cost = t.Weigh(w)
	}
	return &Forest{Trees: trees, SharedArcs: shared()}, nil
}

// disjointForest turns arc-disjoint arborescences into trees, then lowers their weight
// while keeping them disjoint: each tree is recomputed by algo with the arcs of the others
// forbidden, and the result kept when it is lighter. uses is rewritten to count the arcs of
// the returned trees. Cost: 2k runs of algo.
func disjointForest(g *Graph, algo Algo, src NodeID, dsts []NodeID, arcs [][]ArcID, w Weight, uses []int32) []*Tree {
	clear(uses)
	trees := make([]*Tree, len(arcs))
	for i, as := range arcs {
		trees[i] = &Tree{Root: src, Arcs: as, Cost: 0}
		trees[i].Cost = trees[i].Weigh(w)
		for _, a := range as {
			uses[a]++
		}
	}
	avoid := func(a ArcID) float64 {
		if uses[a] > 0 {
			return math.Inf(1)
		}
		return w(a)
	}
	for range 2 {
		for i, t := range trees {
			for _, a := range t.Arcs {
				uses[a]--
			}
			if nt, err := Compute(g, algo, src, dsts, avoid); err == nil && nt.Cost < t.Cost {
				trees[i] = nt
			}
			for _, a := range trees[i].Arcs {
				uses[a]++
			}
		}
	}
	return trees
}

// KShortestPaths returns up to k loopless paths from src to dst in order of weight (Yen's
// algorithm), each as arcs in path order. Fewer are returned when fewer exist; none gives
// ErrUnreachable, an id outside the graph ErrUnknownNode, k < 1 ErrBadArgument. src == dst
// gives one empty path. Arcs weighing +Inf are never used. Cost O(k · L · (V + E) log V)
// for paths of L arcs.
func KShortestPaths(g *Graph, src, dst NodeID, k int, w Weight) ([][]ArcID, error) {
	if k < 1 {
		return nil, fmt.Errorf("%w: %d paths requested, want at least 1", ErrBadArgument, k)
	}
	first, _, err := ShortestPath(g, src, dst, w)
	if err != nil {
		return nil, err
	}
	if k == 1 {
		return [][]ArcID{first}, nil
	}
	paths := [][]ArcID{first}
	type candidate struct {
		path []ArcID
		cost float64
	}
	var pool []candidate
	seen := map[string]bool{pathKey(first): true}
	blockedArc := make([]bool, g.NumArcs())
	blockedNode := make([]bool, g.NumNodes())
	blocked := func(a ArcID) float64 {
		if blockedArc[a] || blockedNode[g.arcs[a].To] {
			return math.Inf(1)
		}
		return w(a)
	}
	for len(paths) < k {
		prev := paths[len(paths)-1]
		for i := range prev {
			spur := g.arcs[prev[i]].From
			root := prev[:i]
			for _, p := range paths {
				if len(p) > i && slices.Equal(p[:i], root) {
					blockedArc[p[i]] = true
				}
			}
			for _, a := range root {
				blockedNode[g.arcs[a].From] = true
			}
			blockedNode[spur] = false
			if tail, _, err := ShortestPath(g, spur, dst, blocked); err == nil {
				p := append(append([]ArcID{}, root...), tail...)
				if key := pathKey(p); !seen[key] {
					seen[key] = true
					c := 0.0
					for _, a := range p {
						c += w(a)
					}
					pool = append(pool, candidate{p, c})
				}
			}
			clear(blockedArc)
			clear(blockedNode)
		}
		if len(pool) == 0 {
			break
		}
		best := 0
		for i, c := range pool {
			if c.cost < pool[best].cost || (c.cost == pool[best].cost && len(c.path) < len(pool[best].path)) {
				best = i
			}
		}
		paths = append(paths, pool[best].path)
		pool = append(pool[:best], pool[best+1:]...)
	}
	return paths, nil
}

func pathKey(p []ArcID) string {
	b := make([]byte, 0, 4*len(p))
	for _, a := range p {
		b = append(b, byte(a), byte(a>>8), byte(a>>16), byte(a>>24))
	}
	return string(b)
}
