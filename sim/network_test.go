package sim

import (
	"context"
	"errors"
	"testing"

	"github.com/treecast/treecast/tree"
)

// fakeSched sends every transfer down its shortest-path tree at a fixed rate per slot,
// ignoring capacity: a stand-in to test the slot engine's bookkeeping and checks.
type fakeSched struct {
	g     *tree.Graph
	rate  float64
	extra float64 // volume sent beyond what is left, to provoke the engine's checks
	// silent leaves completions unreported, to provoke the engine's checks.
	silent bool
	trees  map[int][]tree.ArcID
	rem    map[int]float64
	order  []int
}

func (f *fakeSched) submit(t Transfer) error {
	tr, err := tree.ShortestPathTree(f.g, t.Src, t.Dsts, tree.Hops)
	if err != nil {
		return err
	}
	if f.trees == nil {
		f.trees, f.rem = map[int][]tree.ArcID{}, map[int]float64{}
	}
	f.trees[t.ID], f.rem[t.ID] = tr.Arcs, t.Volume
	f.order = append(f.order, t.ID)
	return nil
}

func (f *fakeSched) step(slot int) ([]slotSend, []slotDone, error) {
	var out []slotSend
	var dones []slotDone
	for _, id := range f.order {
		if f.rem[id] <= 0 {
			continue
		}
		v := min(f.rate, f.rem[id])
		f.rem[id] -= v
		out = append(out, slotSend{Transfer: id, Arcs: f.trees[id], Volume: v + f.extra})
		if f.rem[id] <= 0 && !f.silent {
			dones = append(dones, slotDone{Transfer: id, Finish: slot + 1})
		}
	}
	return out, dones, nil
}

func (f *fakeSched) idle() bool {
	for _, r := range f.rem {
		if r > 0 {
			return false
		}
	}
	return true
}

func TestSlotEngineBookkeeping(t *testing.T) {
	g, a, b, c := lineGraph(t)
	ts := []Transfer{
		// Volume 2.5 at rate 1 per slot: slots 0, 1 and half of 2; complete at the end of
		// slot 2, so TCT 3 for both receivers. Bandwidth 2.5 x 2 arcs = 5.
		{ID: 0, Arrival: 0, Src: a, Dsts: []tree.NodeID{b, c}, Volume: 2.5},
		// Arrives at slot 10 after an idle stretch the engine skips: slots 10 and 11, TCT 2.
		// Bandwidth 2 x 1 arc = 2.
		{ID: 1, Arrival: 10, Src: c, Dsts: []tree.NodeID{b}, Volume: 2},
	}
	var slots []int
	e := &slotEngine{g: g, capacity: capacities(g), sched: &fakeSched{g: g, rate: 1},
		observe: func(slot int, _ []float64) { slots = append(slots, slot) }}
	var res Result
	if err := e.run(context.Background(), ts, &res); err != nil {
		t.Fatal(err)
	}
	res.summarize()
	if !slicesNear(res.TCT, []float64{3, 2}) || !slicesNear(res.ReceiverTimes[0], []float64{3, 3}) || !near(res.TotalBandwidth, 7) || res.MaxCopies != 1 {
		t.Fatalf("TCT %v receivers %v bandwidth %v copies %v", res.TCT, res.ReceiverTimes, res.TotalBandwidth, res.MaxCopies)
	}
	if len(slots) != 5 || slots[3] != 10 {
		t.Fatalf("engine ran slots %v, want 0 1 2 10 11", slots)
	}
}

func TestSlotEngineChecks(t *testing.T) {
	g, a, b, c := lineGraph(t)
	// Two transfers on a->b at rate 1 each: 2 units on an arc of capacity 1.
	overload := []Transfer{
		{ID: 0, Arrival: 0, Src: a, Dsts: []tree.NodeID{b}, Volume: 2},
		{ID: 1, Arrival: 0, Src: a, Dsts: []tree.NodeID{c}, Volume: 2},
	}
	e := &slotEngine{g: g, capacity: capacities(g), sched: &fakeSched{g: g, rate: 1}}
	var res Result
	if err := e.run(context.Background(), overload, &res); !errors.Is(err, ErrScheduler) {
		t.Errorf("overloaded arc: error %v, want ErrScheduler", err)
	}
	// Sending 0.75 more than is left delivers more than the volume.
	e = &slotEngine{g: g, capacity: []float64{9, 9, 9, 9}, sched: &fakeSched{g: g, rate: 0.5, extra: 0.75}}
	if err := e.run(context.Background(), overload[:1], &res); !errors.Is(err, ErrScheduler) {
		t.Errorf("over-delivery: error %v, want ErrScheduler", err)
	}
	// A completion the scheduler does not report.
	e = &slotEngine{g: g, capacity: capacities(g), sched: &fakeSched{g: g, rate: 1, silent: true}}
	if err := e.run(context.Background(), overload[:1], &res); !errors.Is(err, ErrScheduler) {
		t.Errorf("unreported completion: error %v, want ErrScheduler", err)
	}
}

func TestSlotEngineCancel(t *testing.T) {
	g, a, b, _ := lineGraph(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e := &slotEngine{g: g, capacity: capacities(g), sched: &fakeSched{g: g, rate: 1}}
	var res Result
	if err := e.run(ctx, []Transfer{{ID: 0, Src: a, Dsts: []tree.NodeID{b}, Volume: 1e6}}, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.TCT) != 0 {
		t.Fatalf("cancelled run completed %d transfers", len(res.TCT))
	}
}
