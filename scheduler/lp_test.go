package scheduler

import (
	"strings"
	"testing"

	"github.com/treecast/treecast/tree"
)

// diamond builds s-a-t and s-b-t: two disjoint 2-hop paths from s to t, and a 1-hop link
// s-a, all of one capacity unit per slot.
func diamond(t *testing.T) (*tree.Graph, func(string) tree.NodeID) {
	t.Helper()
	g, err := tree.ParseEdgeList(strings.NewReader("s a\na t\ns b\nb t\n"), "diamond")
	if err != nil {
		t.Fatal(err)
	}
	return g, func(n string) tree.NodeID { v, _ := g.Lookup(n); return v }
}

// The LP takes the maximum throughput over a receiver's K paths (here the min cut, 2 units
// per slot over both paths), and serves transfers in the rate policy's priority order.
// Worked out by hand on the diamond (drive checks capacity and per-receiver volume):
//   - one transfer s->t of 4 units: 2 per slot over both paths with K=2 (finish 2), 1 per
//     slot with K=1 (finish 4).
//   - t0 of 4 units and t1 of 2 units, both s->t at slot 0: FCFS serves t0 first (finish 2)
//     then t1 (finish 3); SRPT serves t1 first (finish 1) then t0 (finish 3).
func TestLPHandComputed(t *testing.T) {
	g, id := diamond(t)
	one := []Transfer{{ID: 0, Src: id("s"), Dsts: []tree.NodeID{id("t")}, Volume: 4}}
	for _, tc := range []struct {
		pol  Policy
		want int
	}{{"p2p-lp-k2", 2}, {"p2p-lp-k1", 4}, {PolicyP2PLP, 2}} {
		done := drive(t, g, Config{Policy: tc.pol, Rate: RateSRPT}, one)
		if done[0].Finish != tc.want {
			t.Errorf("%s: finish %d, want %d", tc.pol, done[0].Finish, tc.want)
		}
	}
	two := []Transfer{one[0], {ID: 1, Src: id("s"), Dsts: []tree.NodeID{id("t")}, Volume: 2}}
	for _, tc := range []struct {
		rate   Rate
		t0, t1 int
	}{{RateFCFS, 2, 3}, {RateSRPT, 3, 1}} {
		done := drive(t, g, Config{Policy: "p2p-lp-k2", Rate: tc.rate}, two)
		if done[0].Finish != tc.t0 || done[1].Finish != tc.t1 {
			t.Errorf("%s: finishes %d and %d, want %d and %d", tc.rate, done[0].Finish, done[1].Finish, tc.t0, tc.t1)
		}
	}
	// Receivers a and b of one unit each on s-x, x-a, x-b, x-w, w-b, s-y, y-z, z-a: b's two
	// shortest paths (s-x-b, s-x-w-b) start with s-x, a's shortest path is s-x-a and its
	// second s-y-z-a. The maximum throughput (2 units in one slot) sends a's unit through y
	// and b's through x, so the transfer finishes at 1; filling a's shortest path first
	// would leave b for slot 1 (finish 2).
	g2, err := tree.ParseEdgeList(strings.NewReader("s x\nx a\nx b\nx w\nw b\ns y\ny z\nz a\n"), "fork")
	if err != nil {
		t.Fatal(err)
	}
	id2 := func(n string) tree.NodeID { v, _ := g2.Lookup(n); return v }
	done := drive(t, g2, Config{Policy: "p2p-lp-k2", Rate: RateFCFS},
		[]Transfer{{ID: 0, Src: id2("s"), Dsts: []tree.NodeID{id2("a"), id2("b")}, Volume: 1}})
	if done[0].Finish != 1 {
		t.Errorf("two receivers: finish %d, want 1", done[0].Finish)
	}
}

// A transfer submitted ahead of its arrival gets rates when it arrives, with nothing else
// happening then.
func TestLPSubmittedEarly(t *testing.T) {
	g, id := diamond(t)
	s, err := New(g, Config{Policy: "p2p-lp-k2", Rate: RateSRPT})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Submit(Transfer{ID: 0, Src: id("s"), Dsts: []tree.NodeID{id("t")}, Volume: 4, Arrival: 3}); err != nil {
		t.Fatal(err)
	}
	for slot := 0; slot < 10; slot++ {
		r := s.Step()
		if (slot < 3) != (len(r.Allocations) == 0) {
			t.Fatalf("slot %d: allocations %+v", slot, r.Allocations)
		}
		if len(r.Completed) > 0 {
			if r.Completed[0].Finish != 5 {
				t.Fatalf("finish %d, want 5 (arrival 3, 2 slots at 2 units)", r.Completed[0].Finish)
			}
			return
		}
	}
	t.Fatal("never completed")
}

func TestLPConfig(t *testing.T) {
	g, _ := diamond(t)
	for _, cfg := range []Config{{Policy: PolicyP2PLP, Rate: RateMaxMin}, {Policy: "p2p-lp-k0"}, {Policy: "p2p-lp-kx"}} {
		if _, err := New(g, cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}
