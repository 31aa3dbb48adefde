package node

import (
	"fmt"

	"github.com/treecast/treecast/node/transfer"
	"github.com/treecast/treecast/scheduler"
	"github.com/treecast/treecast/tree"
)

// buildPlan plans a push from src to dsts: the topology is inferred from the members' labels
// (dc, pod, rack) and the scheduler arranges the agents by opts.Strategy. It returns the plan
// and its wire encoding (sent in every Push header). Cost: one Steiner tree on the inferred
// topology, O(members log members) to infer it.
func buildPlan(members []Member, src string, dsts []string, opts PushOptions) (transfer.Plan, []byte, error) {
	_, w, raw, err := buildFullPlan(members, src, dsts, opts, 0, opts.ChunkSize)
	if err != nil {
		return nil, nil, err
	}
	return w, raw, nil
}

// buildFullPlan is buildPlan that also returns the scheduler's plan (with the inferred
// topology and routes, for copy accounting). size is the object's size (0: unknown) and
// chunk its chunk size (0: the plan chooses one, in Plan.ChunkSize).
func buildFullPlan(members []Member, src string, dsts []string, opts PushOptions, size int64, chunk int) (*scheduler.Plan, *scheduler.Wire, []byte, error) {
	strat, err := scheduler.ParseStrategy(orDefault(opts.Strategy, string(scheduler.StrategyAuto)))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrPlan, err)
	}
	labels := map[string]map[string]string{}
	for _, m := range members {
		labels[m.Name] = m.Labels
	}
	agents := []scheduler.AgentInfo{{Name: src, Labels: labels[src]}}
	for _, d := range dsts {
		agents = append(agents, scheduler.AgentInfo{Name: d, Labels: labels[d]})
	}
	g, err := scheduler.InferTopology(agents)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrPlan, err)
	}
	srcID, ok := g.Lookup(src)
	if !ok {
		return nil, nil, nil, fmt.Errorf("%w: source %s not in the inferred topology", ErrPlan, src)
	}
	var ids []tree.NodeID
	for _, d := range dsts {
		id, ok := g.Lookup(d)
		if !ok {
			return nil, nil, nil, fmt.Errorf("%w: receiver %s not in the inferred topology", ErrPlan, d)
		}
		ids = append(ids, id)
	}
	stripes := opts.Stripes
	if strat != scheduler.StrategyForest {
		stripes = 0
	}
	p, err := scheduler.Build(g, srcID, ids, scheduler.Options{Strategy: strat, Fanout: opts.Fanout, Stripes: stripes, Parity: opts.Parity,
		ObjectSize: size, ChunkSize: chunk})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrPlan, err)
	}
	w := p.Wire()
	raw, err := w.MarshalBinary()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrPlan, err)
	}
	w.Children(src, 0) // index the plan now: Children is then safe for concurrent use
	return p, w, raw, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
