package scheduler

import (
	"fmt"
	"math"
	"slices"

	"github.com/treecast/treecast/tree"
)

// Replan returns the plan that finishes p after the nodes in failed have died. holds, which
// may be nil, says which stripes each node already holds completely (holds[v][s]).
//
// Failed receivers leave the plan. In every stripe, a live node whose parent failed (an
// orphan) is re-attached, with its whole subtree unchanged, to one of its live ancestors:
// the nearest one that holds the stripe completely, else the nearest live one (the source
// at worst). Every other edge is kept as it was, so healthy subtrees are untouched and
// receivers keep the chunks they verified (the agents' header exchange skips those). New
// edges are routed on shortest paths that avoid failed hosts. A failed source gives
// ErrSourceFailed. Cost O(edges × depth + new edges × shortest path).
func Replan(p *Plan, failed []tree.NodeID, holds map[tree.NodeID][]bool) (*Plan, error) {
	dead := make(map[tree.NodeID]bool, len(failed))
	for _, f := range failed {
		dead[f] = true
	}
	if dead[p.Source] {
		return nil, fmt.Errorf("%w: %s", ErrSourceFailed, p.Graph.NodeName(p.Source))
	}
	g := p.Graph
	// A failed host forwards nothing; a failed agent at a WAN site leaves the site's routers
	// working, so routes may still cross it.
	avoid := func(a tree.ArcID) float64 {
		if to := g.Arc(a).To; dead[to] && g.Node(to).Kind == tree.Host {
			return math.Inf(1)
		}
		return 1
	}
	np := &Plan{Graph: g, Source: p.Source, Strategy: p.Strategy, DataStripes: p.DataStripes, Parity: p.Parity}
	for _, r := range p.Receivers {
		if !dead[r] {
			np.Receivers = append(np.Receivers, r)
		}
	}
	for s, st := range p.Stripes {
		parent := make(map[tree.NodeID]tree.NodeID, len(st.Edges))
		for _, e := range st.Edges {
			parent[e.To] = e.From
		}
		var out Stripe
		for _, e := range st.Edges {
			if dead[e.To] {
				continue
			}
			if !dead[e.From] {
				if crossesDead(g, e.Path, dead) { // a server-centric topology routed it through a dead host
					path, _, err := tree.ShortestPath(g, e.From, e.To, avoid)
					if err != nil {
						return nil, fmt.Errorf("scheduler: rerouting %s->%s: %w", g.NodeName(e.From), g.NodeName(e.To), err)
					}
					e = Edge{From: e.From, To: e.To, Path: path}
				}
				out.Edges = append(out.Edges, e)
				continue
			}
			// An orphan: pick among its live ancestors.
			var live []tree.NodeID
			for a := parent[e.To]; ; a = parent[a] {
				if !dead[a] {
					live = append(live, a)
				}
				if a == p.Source {
					break
				}
			}
			to := live[0]
			if i := slices.IndexFunc(live, func(v tree.NodeID) bool { return s < len(holds[v]) && holds[v][s] }); i >= 0 {
				to = live[i]
			}
			path, _, err := tree.ShortestPath(g, to, e.To, avoid)
			if err != nil {
				return nil, fmt.Errorf("scheduler: re-attaching %s: %w", g.NodeName(e.To), err)
			}
			out.Edges = append(out.Edges, Edge{From: to, To: e.To, Path: path})
		}
		np.Stripes = append(np.Stripes, out)
	}
	return np, nil
}

// crossesDead reports whether a route passes through a failed host between its ends.
func crossesDead(g *tree.Graph, path []tree.ArcID, dead map[tree.NodeID]bool) bool {
	for _, a := range path[:max(0, len(path)-1)] {
		if to := g.Arc(a).To; dead[to] && g.Node(to).Kind == tree.Host {
			return true
		}
	}
	return false
}
