package tree

import (
	"fmt"
	"math"
)

// Tree is a tree of a Graph rooted at Root. Arcs are oriented away from the root and listed
// in topological order: the From of every arc is the root or the To of an earlier arc.
type Tree struct {
	Root NodeID
	Arcs []ArcID
	// Cost is the sum of the arcs' weights under the weight the tree was computed with.
	Cost float64
}

// Nodes returns the root followed by the To of every arc, in the order of Arcs.
func (t *Tree) Nodes(g *Graph) []NodeID {
	out := make([]NodeID, 0, len(t.Arcs)+1)
	out = append(out, t.Root)
	for _, a := range t.Arcs {
		out = append(out, g.arcs[a].To)
	}
	return out
}

// Parents returns, for every node of the tree but the root, the arc that enters it.
func (t *Tree) Parents(g *Graph) map[NodeID]ArcID {
	p := make(map[NodeID]ArcID, len(t.Arcs))
	for _, a := range t.Arcs {
		p[g.arcs[a].To] = a
	}
	return p
}

// Children returns, for every node of the tree, the nodes it forwards to.
func (t *Tree) Children(g *Graph) map[NodeID][]NodeID {
	c := make(map[NodeID][]NodeID, len(t.Arcs)+1)
	for _, a := range t.Arcs {
		arc := g.arcs[a]
		c[arc.From] = append(c[arc.From], arc.To)
	}
	return c
}

// Depth returns the number of arcs on the longest root-to-node path.
func (t *Tree) Depth(g *Graph) int {
	depth := map[NodeID]int{t.Root: 0}
	best := 0
	for _, a := range t.Arcs {
		arc := g.arcs[a]
		d := depth[arc.From] + 1
		depth[arc.To] = d
		best = max(best, d)
	}
	return best
}

// Weigh returns the sum of w over the tree's arcs.
func (t *Tree) Weigh(w Weight) float64 {
	s := 0.0
	for _, a := range t.Arcs {
		s += w(a)
	}
	return s
}

// Validate checks that t is a tree of g rooted at root, oriented away from it in topological
// order, that spans every terminal, and whose leaves are all terminals (no useless
// branches). It returns a descriptive error for the first violation found.
func (t *Tree) Validate(g *Graph, root NodeID, terminals []NodeID) error {
	if t.Root != root {
		return fmt.Errorf("tree: root is %s, want %s", g.NodeName(t.Root), g.NodeName(root))
	}
	in := map[NodeID]bool{root: true}
	outDeg := map[NodeID]int{}
	for i, a := range t.Arcs {
		if a < 0 || int(a) >= len(g.arcs) {
			return fmt.Errorf("tree: arc %d (#%d) does not exist", a, i)
		}
		arc := g.arcs[a]
		if !in[arc.From] {
			return fmt.Errorf("tree: arc #%d %s->%s leaves a node not yet in the tree", i, g.NodeName(arc.From), g.NodeName(arc.To))
		}
		if in[arc.To] {
			return fmt.Errorf("tree: arc #%d %s->%s enters a node already in the tree (cycle or second parent)", i, g.NodeName(arc.From), g.NodeName(arc.To))
		}
		in[arc.To] = true
		outDeg[arc.From]++
	}
	isTerm := make(map[NodeID]bool, len(terminals))
	for _, v := range terminals {
		isTerm[v] = true
		if !in[v] {
			return fmt.Errorf("tree: terminal %s not spanned", g.NodeName(v))
		}
	}
	for v := range in {
		if v != root && outDeg[v] == 0 && !isTerm[v] {
			return fmt.Errorf("tree: leaf %s is not a terminal", g.NodeName(v))
		}
	}
	if math.IsNaN(t.Cost) {
		return fmt.Errorf("tree: cost is NaN")
	}
	return nil
}
