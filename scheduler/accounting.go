package scheduler

import (
	"fmt"

	"github.com/treecast/treecast/tree"
)

// Copies is the load a plan puts on the topology, in copies of the object per arc (bytes on
// the arc / object size; a stripe counts 1/DataStripes).
type Copies struct {
	PerArc []float64 // indexed by ArcID
	// Max is the largest load on any arc; MaxSwitch on an arc between two switches (or two
	// WAN sites); MaxHost on an arc with a host at either end.
	Max, MaxSwitch, MaxHost float64
	// Total is the sum over arcs.
	Total float64
}

// Copies returns the plan's load per arc. Cost O(sum of path lengths).
func (p *Plan) Copies() Copies {
	g := p.Graph
	c := Copies{PerArc: make([]float64, g.NumArcs())}
	share := 1 / float64(p.DataStripes)
	for _, s := range p.Stripes {
		for _, e := range s.Edges {
			for _, a := range e.Path {
				c.PerArc[a] += share
			}
		}
	}
	for a, v := range c.PerArc {
		if v == 0 {
			continue
		}
		c.Total += v
		c.Max = max(c.Max, v)
		arc := g.Arc(tree.ArcID(a))
		if g.Node(arc.From).Kind == tree.Host || g.Node(arc.To).Kind == tree.Host {
			c.MaxHost = max(c.MaxHost, v)
		} else {
			c.MaxSwitch = max(c.MaxSwitch, v)
		}
	}
	return c
}

// LowerBound returns the fewest copies any delivery needs in total: the arcs of a minimum
// Steiner tree (the tree package's steiner heuristic, exact on fat-trees) times one copy.
func (p *Plan) LowerBound() (float64, error) {
	t, err := tree.Compute(p.Graph, tree.AlgoSteiner, p.Source, p.Receivers, tree.Hops)
	if err != nil {
		return 0, err
	}
	return float64(len(t.Arcs)), nil
}

// Children returns the nodes v forwards stripe s to.
func (p *Plan) Children(v tree.NodeID, s int) []tree.NodeID {
	var out []tree.NodeID
	for _, e := range p.Stripes[s].Edges {
		if e.From == v {
			out = append(out, e.To)
		}
	}
	return out
}

// Depth returns the largest number of overlay hops from the source to a receiver, over all
// stripes.
// Cost O(edges).
func (p *Plan) Depth() int {
	best := 0
	depth := make([]int32, p.Graph.NumNodes())
	for _, s := range p.Stripes {
		depth[p.Source] = 0
		for _, e := range s.Edges {
			d := depth[e.From] + 1
			depth[e.To] = d
			best = max(best, int(d))
		}
	}
	return best
}

// Validate checks that every stripe is a tree rooted at the source that reaches every
// receiver exactly once, lists each edge after the edge reaching its From, and routes each
// edge on a walk of the topology from From to To.
func (p *Plan) Validate() error {
	if len(p.Stripes) != p.DataStripes+p.Parity || p.DataStripes < 1 {
		return fmt.Errorf("%w: %d trees for %d data stripes and %d parity", ErrBadPlan, len(p.Stripes), p.DataStripes, p.Parity)
	}
	g := p.Graph
	for i, s := range p.Stripes {
		reached := map[tree.NodeID]bool{p.Source: true}
		for _, e := range s.Edges {
			if !reached[e.From] {
				return fmt.Errorf("%w: stripe %d: %s forwards before it is reached", ErrBadPlan, i, g.NodeName(e.From))
			}
			if reached[e.To] {
				return fmt.Errorf("%w: stripe %d: %s reached twice", ErrBadPlan, i, g.NodeName(e.To))
			}
			reached[e.To] = true
			v := e.From
			for _, a := range e.Path {
				if g.Arc(a).From != v {
					return fmt.Errorf("%w: stripe %d: route of %s->%s is not a walk", ErrBadPlan, i, g.NodeName(e.From), g.NodeName(e.To))
				}
				v = g.Arc(a).To
			}
			if v != e.To {
				return fmt.Errorf("%w: stripe %d: route of %s->%s ends at %s", ErrBadPlan, i, g.NodeName(e.From), g.NodeName(e.To), g.NodeName(v))
			}
		}
		for _, r := range p.Receivers {
			if !reached[r] {
				return fmt.Errorf("%w: stripe %d misses receiver %s", ErrBadPlan, i, g.NodeName(r))
			}
		}
		if len(reached) != len(p.Receivers)+1 {
			return fmt.Errorf("%w: stripe %d reaches %d nodes that are not receivers", ErrBadPlan, i, len(reached)-len(p.Receivers)-1)
		}
	}
	return nil
}
