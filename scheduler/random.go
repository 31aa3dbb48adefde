package scheduler

import (
	"math/rand/v2"

	"github.com/treecast/treecast/tree"
)

// randomTree returns a uniformly random spanning tree of g's links (every spanning tree
// equally likely, by Wilson's algorithm: loop-erased random walks), oriented away from src
// and pruned to the branches that lead to dsts. It ignores arc load, length and capacity.
// Cost: the expected cover time of loop-erased walks, O(mean hitting time x nodes) steps at
// worst, plus O(nodes) for the pruning. It fails like the tree package's algorithms on an
// unknown or unreachable receiver.
func randomTree(g *tree.Graph, src tree.NodeID, dsts []tree.NodeID, rng *rand.Rand) (*tree.Tree, error) {
	// Every node must be reachable, or the walk from it never ends: check the receivers the
	// way the other policies do, and span only src's component.
	if _, err := tree.ShortestPathTree(g, src, dsts, tree.Hops); err != nil {
		return nil, err
	}
	n := g.NumNodes()
	comp := make([]bool, n)
	comp[src] = true
	stack := []tree.NodeID{src}
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, a := range g.Out(v) {
			if w := g.Arc(a).To; !comp[w] {
				comp[w] = true
				stack = append(stack, w)
			}
		}
	}
	parent := wilson(g, src, comp, rng)
	// Prune: the arcs on the paths from the receivers up to src, listed root first.
	keep := make([]bool, n)
	keep[src] = true
	var arcs []tree.ArcID
	var path []tree.ArcID
	for _, d := range dsts {
		path = path[:0]
		for v := d; !keep[v]; v = g.Arc(parent[v]).From {
			keep[v] = true
			path = append(path, parent[v])
		}
		for i := len(path) - 1; i >= 0; i-- {
			arcs = append(arcs, path[i])
		}
	}
	return &tree.Tree{Root: src, Arcs: arcs, Cost: float64(len(arcs))}, nil
}

// wilson draws a uniformly random spanning tree of the nodes marked in comp (a connected
// component containing root) and returns, for every such node but the root, the arc from its
// parent to it (-1 elsewhere).
func wilson(g *tree.Graph, root tree.NodeID, comp []bool, rng *rand.Rand) []tree.ArcID {
	n := g.NumNodes()
	inTree := make([]bool, n)
	next := make([]tree.ArcID, n) // the arc the latest walk left each node by
	parent := make([]tree.ArcID, n)
	for i := range parent {
		parent[i] = -1
	}
	inTree[root] = true
	for start := range n {
		if !comp[start] {
			continue
		}
		// Random walk from start until it hits the tree; remembering only the last exit of
		// each node erases the loops.
		for u := tree.NodeID(start); !inTree[u]; {
			out := g.Out(u)
			next[u] = out[rng.IntN(len(out))]
			u = g.Arc(next[u]).To
		}
		for u := tree.NodeID(start); !inTree[u]; u = g.Arc(next[u]).To {
			inTree[u] = true
			parent[u] = next[u].Reverse() // the tree is oriented from the root down
		}
	}
	return parent
}
