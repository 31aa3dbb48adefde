package sim

import (
	"fmt"

	"github.com/treecast/treecast/scheduler"
	"github.com/treecast/treecast/tree"
)

// ForestStripes is the number of stripes of overlay:forest plans.
const ForestStripes = 4

// schedulerPlanner returns a Planner that asks the scheduler for the overlay plan of every
// transfer with the given strategy (chain, tree, forest with ForestStripes stripes, or
// unicast) and default fan-out.
func schedulerPlanner(g *tree.Graph, strategy string) (Planner, error) {
	st, err := scheduler.ParseStrategy(strategy)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadScheme, err)
	}
	opts := scheduler.Options{Strategy: st}
	if st == scheduler.StrategyForest {
		opts.Stripes = ForestStripes
	}
	return func(t Transfer) (OverlayPlan, error) {
		p, err := scheduler.Build(g, t.Src, t.Dsts, opts)
		if err != nil {
			return OverlayPlan{}, err
		}
		if p.Parity != 0 || p.DataStripes != len(p.Stripes) {
			return OverlayPlan{}, fmt.Errorf("%w: plan with %d data stripes and %d parity trees: the simulator deals chunks to data stripes only",
				ErrBadScheme, p.DataStripes, p.Parity)
		}
		out := OverlayPlan{Stripes: make([]OverlayStripe, len(p.Stripes))}
		for i, s := range p.Stripes {
			edges := make([]OverlayEdge, len(s.Edges))
			for j, e := range s.Edges {
				edges[j] = OverlayEdge{From: e.From, To: e.To, Path: e.Path}
			}
			out.Stripes[i].Edges = edges
		}
		return out, nil
	}, nil
}
