package sim

import (
	"context"
	"testing"

	"github.com/treecast/treecast/tree"
)

// chainPlanner is a stand-in overlay planner for tests: receivers chained in the order of
// the hosts' ids (which follows the fat-tree's racks and pods), every edge routed on a
// shortest path.
func chainPlanner(tb testing.TB, g *tree.Graph) Planner {
	return func(t Transfer) (OverlayPlan, error) {
		order := append([]tree.NodeID{t.Src}, t.Dsts...)
		var st OverlayStripe
		for i := 1; i < len(order); i++ {
			p, _, err := tree.ShortestPath(g, order[i-1], order[i], tree.Hops)
			if err != nil {
				return OverlayPlan{}, err
			}
			st.Edges = append(st.Edges, OverlayEdge{From: order[i-1], To: order[i], Path: p})
		}
		return OverlayPlan{Stripes: []OverlayStripe{st}}, nil
	}
}

// unicastPlanner: the source sends to every receiver on a shortest path.
func unicastPlanner(g *tree.Graph) Planner {
	return func(t Transfer) (OverlayPlan, error) {
		var st OverlayStripe
		for _, d := range t.Dsts {
			p, _, err := tree.ShortestPath(g, t.Src, d, tree.Hops)
			if err != nil {
				return OverlayPlan{}, err
			}
			st.Edges = append(st.Edges, OverlayEdge{From: t.Src, To: d, Path: p})
		}
		return OverlayPlan{Stripes: []OverlayStripe{st}}, nil
	}
}

// benchOverlay runs 100 transfers of 1..6 receivers (volume 10+exp:20, chunks of 1 unit)
// arriving over 20 slots on fat-tree k=16 (1,024 hosts).
func benchOverlay(b *testing.B, planner func(*tree.Graph) Planner) {
	g, err := tree.FatTree(16)
	if err != nil {
		b.Fatal(err)
	}
	w := DCCastWorkload()
	w.Lambda, w.Horizon = 5, 20
	if testing.Short() {
		w.Receivers = Range{1, 6}
	} else {
		w.Receivers = Range{64, 256}
	}
	ts, err := Generate(g, w, 1)
	if err != nil {
		b.Fatal(err)
	}
	ts = ts[:min(len(ts), 100)]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Run(context.Background(), Config{Graph: g, Scheme: Scheme{Name: "overlay:test", Overlay: true},
			Planner: planner(g)}, ts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOverlayFatTree16Unicast(b *testing.B) { benchOverlay(b, unicastPlanner) }
func BenchmarkOverlayFatTree16Chain(b *testing.B) {
	benchOverlay(b, func(g *tree.Graph) Planner { return chainPlanner(b, g) })
}
