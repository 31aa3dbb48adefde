package sim

import (
	"context"
	"fmt"

	"github.com/treecast/treecast/scheduler"
	"github.com/treecast/treecast/tree"
)

// transferScheduler adapts the scheduler's transfer scheduling (scheduler.Scheduler) to the
// slot engine.
type transferScheduler struct {
	s         *scheduler.Scheduler
	decisions map[int]scheduler.Decision
	promised  map[int]int // FCFS: the slot at whose start each transfer will have completed
}

var _ slotScheduler = (*transferScheduler)(nil)

func newTransferScheduler(g *tree.Graph, cfg Config) (*transferScheduler, error) {
	rate := cfg.Rate
	if cfg.Scheme.Rate != "" {
		rate = cfg.Scheme.Rate
	}
	if rate == "" {
		rate = "fcfs"
	}
	scfg := scheduler.Config{Policy: scheduler.Policy(cfg.Scheme.Policy), Rate: scheduler.Rate(rate), Seed: cfg.Seed}
	if n, ok := multitreeK(cfg.Scheme.Policy); ok {
		scfg.Policy, scfg.Trees = scheduler.PolicyMultiTree, n
	}
	s, err := scheduler.New(g, scfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadScheme, cfg.Scheme.Name, err)
	}
	return &transferScheduler{s: s, decisions: map[int]scheduler.Decision{}, promised: map[int]int{}}, nil
}

// multitreeK parses "multitree-kN".
func multitreeK(policy string) (int, bool) {
	var n int
	if _, err := fmt.Sscanf(policy, "multitree-k%d", &n); err != nil || n < 1 {
		return 0, false
	}
	return n, true
}

func (a *transferScheduler) submit(t Transfer) error {
	d, err := a.s.Submit(scheduler.Transfer{ID: t.ID, Src: t.Src, Dsts: t.Dsts, Volume: t.Volume, Arrival: t.Arrival})
	if err != nil {
		return err
	}
	a.decisions[t.ID] = d
	if d.Completion >= 0 {
		a.promised[t.ID] = d.Completion
	}
	return nil
}

func (a *transferScheduler) step(slot int) ([]slotSend, []slotDone, error) {
	for a.s.Now() < slot { // slots the engine skipped while nothing was active
		a.s.Step()
	}
	if a.s.Now() != slot {
		return nil, nil, fmt.Errorf("%w: scheduler at slot %d, engine at %d", ErrScheduler, a.s.Now(), slot)
	}
	r := a.s.Step()
	sends := make([]slotSend, 0, len(r.Allocations))
	for _, al := range r.Allocations {
		d, ok := a.decisions[al.ID]
		if !ok || al.Share < 0 || al.Share >= len(d.Shares) {
			return nil, nil, fmt.Errorf("%w: allocation for transfer %d share %d, which it never decided", ErrScheduler, al.ID, al.Share)
		}
		sh := d.Shares[al.Share]
		sends = append(sends, slotSend{Transfer: al.ID, Arcs: sh.Tree.Arcs, Dsts: sh.Receivers, Volume: al.Volume})
	}
	var dones []slotDone
	for _, c := range r.Completed {
		if p, ok := a.promised[c.ID]; ok && p != c.Finish {
			return nil, nil, fmt.Errorf("%w: transfer %d promised to complete at slot %d, completed at %d", ErrScheduler, c.ID, p, c.Finish)
		}
		dones = append(dones, slotDone{Transfer: c.ID, Finish: c.Finish})
		delete(a.decisions, c.ID)
		delete(a.promised, c.ID)
	}
	return sends, dones, nil
}

func (a *transferScheduler) idle() bool { return a.s.Active() == 0 }

func runNetwork(ctx context.Context, cfg Config, transfers []Transfer, res *Result) error {
	sch, err := newTransferScheduler(cfg.Graph, cfg)
	if err != nil {
		return err
	}
	e := &slotEngine{g: cfg.Graph, capacity: capacities(cfg.Graph), sched: sch, progress: cfg.Progress}
	return e.run(ctx, transfers, res)
}
