package sim

import (
	"context"
	"testing"

	"github.com/treecast/treecast/tree"
)

// Small scenarios on the line a - b - c (one unit per slot per arc), driven through the
// scheduler, whose completion times are worked out by hand.
func TestNetworkByHand(t *testing.T) {
	g, a, b, c := lineGraph(t)
	ts := []Transfer{
		{ID: 0, Arrival: 0, Src: a, Dsts: []tree.NodeID{b, c}, Volume: 2},
		{ID: 1, Arrival: 0, Src: b, Dsts: []tree.NodeID{c}, Volume: 1},
		{ID: 2, Arrival: 1, Src: c, Dsts: []tree.NodeID{a}, Volume: 1.5},
	}
	tests := []struct {
		scheme, rate string
		tct          []float64
		recv0        []float64 // receivers b, c of transfer 0
		bw           float64
	}{
		// T0 takes a->b->c at 1 per slot in slots 0 and 1: done at the start of slot 2, TCT 2.
		// T1 finds b->c promised to T0 in slots 0 and 1, so it gets slot 2: TCT 3.
		// T2 has c->b->a to itself from slot 1: 1 unit in slot 1, 0.5 in slot 2: TCT 3-1 = 2.
		// Bandwidth 2x2 + 1x1 + 1.5x2 = 8.
		{"dccast", "fcfs", []float64{2, 3, 2}, []float64{2, 2}, 8},
		// Max-min: in slots 0 and 1 T0 and T1 share b->c at 1/2 each. T1 has its unit after
		// slot 1 (TCT 2); T0 has 1 of 2 units, and slot 2 alone gives the rest (TCT 3).
		// T2 as under FCFS (TCT 2).
		{"dccast", "maxmin", []float64{3, 2, 2}, []float64{3, 3}, 8},
		// SRPT: in slot 0 T1 (1 left) goes before T0 (2 left) on b->c: T1 done, TCT 1; T0 waits
		// (its tree's bottleneck is full) and sends in slots 1 and 2: TCT 3. T2: TCT 2.
		{"dccast", "srpt", []float64{3, 1, 2}, []float64{3, 3}, 8},
		// P2P under FCFS: T0 sends 2 units to b on a->b (slots 0, 1) and 2 more to c on
		// a->b->c, which finds a->b full until slot 2: slots 2 and 3, c done at 4. T1 finds
		// b->c free in slot 0 (T0's promise there is slots 2-3): TCT 1. T2: TCT 2.
		// Bandwidth 2x1 + 2x2 + 1 + 1.5x2 = 10.
		{"p2p", "fcfs", []float64{4, 1, 2}, []float64{2, 4}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.scheme+"@"+tt.rate, func(t *testing.T) {
			sch, err := newTransferScheduler(g, Config{Scheme: Scheme{Name: tt.scheme, Policy: tt.scheme}, Rate: tt.rate})
			if err != nil {
				t.Fatal(err)
			}
			capacity := capacities(g)
			e := &slotEngine{g: g, capacity: capacity, sched: sch}
			var res Result
			if err := e.run(context.Background(), ts, &res); err != nil {
				t.Fatal(err)
			}
			if !slicesNear(res.TCT, tt.tct) || !slicesNear(res.ReceiverTimes[0], tt.recv0) || !near(res.TotalBandwidth, tt.bw) {
				t.Fatalf("TCT %v receivers of 0 %v bandwidth %v; want %v %v %v", res.TCT, res.ReceiverTimes[0], res.TotalBandwidth, tt.tct, tt.recv0, tt.bw)
			}
		})
	}
}

// Every network scheme on GScale under DCCast's workload (shortened): the engine's checks
// hold (no arc above capacity in any slot, every receiver gets exactly the volume, the
// scheduler's completions and FCFS promises match what was delivered), every transfer
// completes, and the arcs carried in total what the result reports.
func TestNetworkSchemesConservation(t *testing.T) {
	g := tree.GScale()
	w := DCCastWorkload()
	w.Horizon = 60
	ts, err := Generate(g, w, 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"dccast", "random", "minmax", "spt", "p2p", "p2p-k3", "quickcast", "multitree", "dccast@maxmin", "quickcast@srpt", "p2p-lp@srpt", "p2p-lp-k2@fcfs"} {
		t.Run(name, func(t *testing.T) {
			sc, err := ParseScheme(name)
			if err != nil {
				t.Fatal(err)
			}
			sch, err := newTransferScheduler(g, Config{Scheme: sc, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			carried := 0.0
			e := &slotEngine{g: g, capacity: capacities(g), sched: sch, observe: func(_ int, load []float64) {
				for _, l := range load {
					carried += l
				}
			}}
			var res Result
			if err := e.run(context.Background(), ts, &res); err != nil {
				t.Fatal(err)
			}
			res.summarize()
			if res.Completed != len(ts) || !near(carried, res.TotalBandwidth) {
				t.Fatalf("%d of %d complete; arcs carried %v, result says %v", res.Completed, len(ts), carried, res.TotalBandwidth)
			}
			// Every volume crosses at least one arc.
			lower := 0.0
			for _, tr := range ts {
				lower += tr.Volume
			}
			if res.TotalBandwidth < lower {
				t.Fatalf("bandwidth %v below the volume sent %v", res.TotalBandwidth, lower)
			}
		})
	}
}
