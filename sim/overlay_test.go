package sim

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/treecast/treecast/tree"
)

// lineGraph builds a - b - c with links of the default capacity: one unit per slot per arc.
func lineGraph(t testing.TB) (*tree.Graph, tree.NodeID, tree.NodeID, tree.NodeID) {
	t.Helper()
	b := tree.NewBuilder("line")
	a, _ := b.AddNode("a", tree.Site, nil)
	bb, _ := b.AddNode("b", tree.Site, nil)
	c, _ := b.AddNode("c", tree.Site, nil)
	if err := b.AddLink(a, bb, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.AddLink(bb, c, 0, 0); err != nil {
		t.Fatal(err)
	}
	g, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return g, a, bb, c
}

func arc(t testing.TB, g *tree.Graph, u, v tree.NodeID) tree.ArcID {
	t.Helper()
	x, ok := g.FindArc(u, v)
	if !ok {
		t.Fatalf("no arc %s->%s", g.NodeName(u), g.NodeName(v))
	}
	return x
}

// fixedPlanner returns the same plan for every transfer.
func fixedPlanner(p OverlayPlan) Planner {
	return func(Transfer) (OverlayPlan, error) { return p, nil }
}

// capacityObserver fails the test if any arc carries more than its capacity in any interval,
// and sums the volume every arc carries.
func capacityObserver(t *testing.T, capacity []float64, carried []float64) func(now, dt float64, paths [][]int32, rates []float64) {
	return func(now, dt float64, paths [][]int32, rates []float64) {
		load := make([]float64, len(capacity))
		for i, p := range paths {
			for _, a := range p {
				load[a] += rates[i]
				carried[a] += rates[i] * dt
			}
		}
		for a, l := range load {
			if l > capacity[a]*(1+1e-9) {
				t.Fatalf("at %v arc %d carries %v > capacity %v", now, a, l, capacity[a])
			}
		}
	}
}

func TestOverlayByHand(t *testing.T) {
	g, a, b, c := lineGraph(t)
	ab, bc, cb := arc(t, g, a, b), arc(t, g, b, c), arc(t, g, c, b)
	tr := []Transfer{{ID: 0, Arrival: 0, Src: a, Dsts: []tree.NodeID{b, c}, Volume: 4}}
	tests := []struct {
		name    string
		plan    OverlayPlan
		tct     float64
		recv    []float64
		bw      float64
		maxCopy float64
	}{
		{
			// a->b and a->c both cross a->b: 1/2 unit per slot each, so each of the 4 chunks
			// takes 2 slots on each edge: both receivers finish at 4 x 2 = 8. Bandwidth:
			// 4 units on a->b to b, 4 units on a->b and b->c to c: 4 + 8 = 12.
			name: "unicast",
			plan: OverlayPlan{Stripes: []OverlayStripe{{Edges: []OverlayEdge{
				{a, b, []tree.ArcID{ab}}, {a, c, []tree.ArcID{ab, bc}}}}}},
			tct: 8, recv: []float64{8, 8}, bw: 12, maxCopy: 2,
		},
		{
			// Chain a->b->c: chunk k reaches b at k (1 slot each on a->b); b forwards it over
			// b->c, an arc of its own, so it reaches c at k+1: b at 4, c at 5. Bandwidth 4+4.
			name: "chain",
			plan: OverlayPlan{Stripes: []OverlayStripe{{Edges: []OverlayEdge{
				{a, b, []tree.ArcID{ab}}, {b, c, []tree.ArcID{bc}}}}}},
			tct: 5, recv: []float64{4, 5}, bw: 8, maxCopy: 1,
		},
		{
			// Two stripes, chunks 0,2 down a->b->c and chunks 1,3 down a->c->b.
			// [0,2): a->b (chunk 0) and a->c (chunk 1) share a->b at 1/2: both done at 2.
			// [2,3): a->b (chunk 2) and a->c (chunk 3) share a->b at 1/2; b->c (chunk 0)
			//   shares b->c with a->c at 1/2; c->b (chunk 1) is alone on c->b at 1: done at 3.
			// [3,4): the same minus c->b, which waits for chunk 3: a->b, a->c, b->c done at 4.
			// [4,5): b->c (chunk 2) and c->b (chunk 3) alone at rate 1: both done at 5.
			// b holds chunks 0,2 at 4 and 1,3 at 5; c holds 1,3 at 4 and 0,2 at 5.
			// Bandwidth: stripe 0 carries 2 units over 2 arcs, stripe 1 over 3: 4 + 6 = 10.
			name: "forest",
			plan: OverlayPlan{Stripes: []OverlayStripe{
				{Edges: []OverlayEdge{{a, b, []tree.ArcID{ab}}, {b, c, []tree.ArcID{bc}}}},
				{Edges: []OverlayEdge{{a, c, []tree.ArcID{ab, bc}}, {c, b, []tree.ArcID{cb}}}},
			}},
			tct: 5, recv: []float64{5, 5}, bw: 10, maxCopy: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			capacity := capacities(g)
			carried := make([]float64, len(capacity))
			e := &overlayEngine{g: g, capacity: capacity, chunk: 1, plan: fixedPlanner(tt.plan),
				observe: capacityObserver(t, capacity, carried)}
			var res Result
			if err := e.run(context.Background(), tr, &res); err != nil {
				t.Fatal(err)
			}
			res.summarize()
			if !near(res.MaxTCT, tt.tct) || !slicesNear(res.ReceiverTimes[0], tt.recv) {
				t.Fatalf("TCT %v receivers %v, want %v %v", res.MaxTCT, res.ReceiverTimes[0], tt.tct, tt.recv)
			}
			if !near(res.TotalBandwidth, tt.bw) || !near(res.MaxCopies, tt.maxCopy) {
				t.Fatalf("bandwidth %v max copies %v, want %v %v", res.TotalBandwidth, res.MaxCopies, tt.bw, tt.maxCopy)
			}
			// Conservation: what the arcs carried is what the plan charges.
			sum := 0.0
			for _, x := range carried {
				sum += x
			}
			if !near(sum, tt.bw) {
				t.Fatalf("arcs carried %v units, plan charges %v", sum, tt.bw)
			}
		})
	}
}

// Two chain transfers on the same path, the second arriving at slot 1, share the arcs.
func TestOverlayArrivals(t *testing.T) {
	g, a, b, c := lineGraph(t)
	ab, bc := arc(t, g, a, b), arc(t, g, b, c)
	plan := OverlayPlan{Stripes: []OverlayStripe{{Edges: []OverlayEdge{{a, b, []tree.ArcID{ab}}, {b, c, []tree.ArcID{bc}}}}}}
	tr := []Transfer{
		{ID: 0, Arrival: 0, Src: a, Dsts: []tree.NodeID{b, c}, Volume: 2},
		{ID: 1, Arrival: 1, Src: a, Dsts: []tree.NodeID{b, c}, Volume: 1},
	}
	// [0,1): transfer 0 chunk 0 on a->b alone: done at 1.
	// [1,2): t0 chunk 1 and t1 chunk 0 share a->b at 1/2; t0 chunk 0 alone on b->c: done at 2.
	// [2,3): both still on a->b at 1/2 with 1/2 left each: done at 3; b->c idle.
	// [3,5): t0 chunk 1 and t1 chunk 0 share b->c at 1/2, 1 unit each: done at 5.
	// Transfer 0: b at 3, c at 5 (TCT 5); transfer 1 (arrived at 1): b at 2, c at 4.
	capacity := capacities(g)
	e := &overlayEngine{g: g, capacity: capacity, chunk: 1, plan: fixedPlanner(plan),
		observe: capacityObserver(t, capacity, make([]float64, len(capacity)))}
	var res Result
	if err := e.run(context.Background(), tr, &res); err != nil {
		t.Fatal(err)
	}
	if !slicesNear(res.TCT, []float64{5, 4}) || !slicesNear(res.ReceiverTimes[0], []float64{3, 5}) || !slicesNear(res.ReceiverTimes[1], []float64{2, 4}) {
		t.Fatalf("TCT %v receivers %v", res.TCT, res.ReceiverTimes)
	}
}

func TestOverlayBadPlans(t *testing.T) {
	g, a, b, c := lineGraph(t)
	ab, bc := arc(t, g, a, b), arc(t, g, b, c)
	tr := []Transfer{{ID: 0, Arrival: 0, Src: a, Dsts: []tree.NodeID{b, c}, Volume: 2}}
	for name, plan := range map[string]OverlayPlan{
		"no stripes":      {},
		"misses c":        {Stripes: []OverlayStripe{{Edges: []OverlayEdge{{a, b, []tree.ArcID{ab}}}}}},
		"orphan relay":    {Stripes: []OverlayStripe{{Edges: []OverlayEdge{{b, c, []tree.ArcID{bc}}, {a, b, []tree.ArcID{ab}}}}}},
		"reaches b twice": {Stripes: []OverlayStripe{{Edges: []OverlayEdge{{a, b, []tree.ArcID{ab}}, {a, b, []tree.ArcID{ab}}, {b, c, []tree.ArcID{bc}}}}}},
	} {
		e := &overlayEngine{g: g, capacity: capacities(g), chunk: 1, plan: fixedPlanner(plan)}
		var res Result
		if err := e.run(context.Background(), tr, &res); !errors.Is(err, ErrBadScheme) {
			t.Errorf("%s: error %v, want ErrBadScheme", name, err)
		}
	}
}

func near(x, y float64) bool { return math.Abs(x-y) <= 1e-9*max(1, math.Abs(y)) }

func slicesNear(x, y []float64) bool {
	return slices.EqualFunc(x, y, near)
}
