package tree

import (
	"errors"
	"testing"
)

func TestFatTreeCounts(t *testing.T) {
	for _, k := range []int{2, 4, 8, 16} {
		g, err := FatTree(k)
		if err != nil {
			t.Fatal(err)
		}
		hosts, switches := k*k*k/4, 5*k*k/4
		if got := len(g.Hosts()); got != hosts {
			t.Errorf("k=%d: %d hosts, want %d", k, got, hosts)
		}
		if got := g.NumNodes() - hosts; got != switches {
			t.Errorf("k=%d: %d switches, want %d", k, got, switches)
		}
		if got, want := g.NumLinks(), 3*hosts; got != want {
			t.Errorf("k=%d: %d links, want %d", k, got, want)
		}
		for v := range NodeID(g.NumNodes()) {
			want := k
			if g.Node(v).Kind == Host {
				want = 1
			}
			if g.Degree(v) != want {
				t.Fatalf("k=%d: %s has degree %d, want %d", k, g.NodeName(v), g.Degree(v), want)
			}
		}
		if v, ok := g.Lookup("h0"); !ok || v != 0 {
			t.Errorf("k=%d: h0 is %d, %v", k, v, ok)
		}
	}
	if _, err := FatTree(3); !errors.Is(err, ErrBadSpec) {
		t.Errorf("FatTree(3) error %v, want ErrBadSpec", err)
	}
}

func TestArcPairs(t *testing.T) {
	g := GScale()
	if g.NumNodes() != 12 || g.NumLinks() != 19 {
		t.Fatalf("gscale: %d nodes %d links", g.NumNodes(), g.NumLinks())
	}
	for a := range ArcID(g.NumArcs()) {
		x, y := g.Arc(a), g.Arc(a.Reverse())
		if x.From != y.To || x.To != y.From {
			t.Fatalf("arc %d and its reverse do not pair", a)
		}
		if b, ok := g.FindArc(x.From, x.To); !ok || b != a {
			t.Fatalf("FindArc(%d,%d) = %d,%v want %d", x.From, x.To, b, ok, a)
		}
	}
}

func TestBuilderMergesAndRejects(t *testing.T) {
	b := NewBuilder("t")
	u, _ := b.AddNode("u", Site, nil)
	v, _ := b.AddNode("v", Site, nil)
	if _, err := b.AddNode("u", Site, nil); !errors.Is(err, ErrDuplicateNode) {
		t.Errorf("duplicate name: %v", err)
	}
	if err := b.AddLink(u, u, 0, 0); !errors.Is(err, ErrSelfLoop) {
		t.Errorf("self-loop: %v", err)
	}
	if err := b.AddLink(u, v, 1e9, 5); err != nil {
		t.Fatal(err)
	}
	if err := b.AddLink(v, u, 2e9, 3); err != nil {
		t.Fatal(err)
	}
	g, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if g.NumLinks() != 1 || g.Arc(0).Capacity != 3e9 || g.Arc(1).Latency != 3 {
		t.Errorf("parallel links not merged: %d links, arc %+v", g.NumLinks(), g.Arc(0))
	}
}

func TestRandomWANConnectedAndSeeded(t *testing.T) {
	for seed := range uint64(50) {
		g, err := RandomWAN(50, 150, seed)
		if err != nil {
			t.Fatal(err)
		}
		if g.NumLinks() != 150 {
			t.Fatalf("seed %d: %d links", seed, g.NumLinks())
		}
		seen := map[NodeID]bool{0: true}
		stack := []NodeID{0}
		for len(stack) > 0 {
			v := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, a := range g.Out(v) {
				if w := g.Arc(a).To; !seen[w] {
					seen[w] = true
					stack = append(stack, w)
				}
			}
		}
		if len(seen) != 50 {
			t.Fatalf("seed %d: only %d nodes reachable", seed, len(seen))
		}
		h, _ := RandomWAN(50, 150, seed)
		for a := range ArcID(g.NumArcs()) {
			if g.Arc(a) != h.Arc(a) {
				t.Fatalf("seed %d: not reproducible at arc %d", seed, a)
			}
		}
	}
}

func TestTwoTier(t *testing.T) {
	g, err := TwoTier(8, 8)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Hosts()) != 64 || g.NumNodes() != 64+8+1 || g.NumLinks() != 64+8 {
		t.Fatalf("%d hosts, %d nodes, %d links", len(g.Hosts()), g.NumNodes(), g.NumLinks())
	}
	core, _ := g.Lookup("core")
	if g.Degree(core) != 8 {
		t.Errorf("core degree %d, want 8", g.Degree(core))
	}
	// Host 13 is the sixth host of rack 1: its only neighbour is r1, and it is labelled so.
	h, _ := g.Lookup("h13")
	r1, _ := g.Lookup("r1")
	if g.Degree(h) != 1 || g.Arc(g.Out(h)[0]).To != r1 || g.Node(h).Labels["rack"] != "r1" {
		t.Errorf("h13: degree %d, rack label %q", g.Degree(h), g.Node(h).Labels["rack"])
	}
}

// RingChords: e links, every site of degree >= 2, connected, the same graph for the same
// seed and another for another seed; bad sizes are errors.
func TestRingChords(t *testing.T) {
	for _, tc := range []struct{ n, e int }{{50, 150}, {3, 3}, {10, 45}, {20, 27}} {
		g, err := RingChords(tc.n, tc.e, 4)
		if err != nil {
			t.Fatal(err)
		}
		if g.NumNodes() != tc.n || g.NumLinks() != tc.e {
			t.Fatalf("ringchords:%d,%d: %d nodes, %d links", tc.n, tc.e, g.NumNodes(), g.NumLinks())
		}
		for v := range tc.n {
			if g.Degree(NodeID(v)) < 2 {
				t.Fatalf("ringchords:%d,%d: %s has degree %d", tc.n, tc.e, g.NodeName(NodeID(v)), g.Degree(NodeID(v)))
			}
		}
		if _, err := ShortestPathTree(g, 0, g.Endpoints()[1:], Hops); err != nil {
			t.Fatalf("not connected: %v", err)
		}
	}
	a, _ := ParseSpec("ringchords:50,150,1")
	b, _ := RingChords(50, 150, 1)
	c, _ := RingChords(50, 150, 2)
	same := func(x, y *Graph) bool {
		for i := range x.NumArcs() {
			if x.Arc(ArcID(i)) != y.Arc(ArcID(i)) {
				return false
			}
		}
		return true
	}
	if a.Name() != "ringchords:50,150,1" || !same(a, b) || same(b, c) {
		t.Errorf("seeds: same seed differs or different seeds agree")
	}
	for _, spec := range []string{"ringchords:2,2,1", "ringchords:10,9,1", "ringchords:5,11,1", "ringchords:5,6,-1", "ringchords:5,6"} {
		if _, err := ParseSpec(spec); !errors.Is(err, ErrBadSpec) {
			t.Errorf("%s: error %v", spec, err)
		}
	}
}
