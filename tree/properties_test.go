package tree

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// reachable is the reference for reachability: a plain breadth-first search from src over
// the arcs of finite weight.
func reachable(g *Graph, src NodeID, w Weight) []bool {
	seen := make([]bool, g.NumNodes())
	seen[src] = true
	queue := []NodeID{src}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for a := range ArcID(g.NumArcs()) {
			if arc := g.Arc(a); arc.From == v && !seen[arc.To] && !math.IsInf(w(a), 1) {
				seen[arc.To] = true
				queue = append(queue, arc.To)
			}
		}
	}
	return seen
}

// TestInfiniteArcsNeverUsed: on hundreds of random graphs with asymmetric weights where a
// quarter of the arcs weigh +Inf, every algorithm either returns a valid tree that uses no
// +Inf arc, or, exactly when some receiver cannot be reached over finite arcs,
// ErrUnreachable naming such a receiver.
func TestInfiniteArcsNeverUsed(t *testing.T) {
	algos := map[string]func(*Graph, NodeID, []NodeID, Weight) (*Tree, error){
		"spt": ShortestPathTree, "steiner": Steiner, "tm": SteinerTM, "kmb": SteinerKMB, "exact": SteinerExact,
	}
	outcomes := map[bool]int{}
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 43))
		n := 5 + rng.IntN(40)
		g, err := RandomWAN(n, min(n-1+rng.IntN(2*n), n*(n-1)/2), seed)
		if err != nil {
			t.Fatal(err)
		}
		base := randomWeights(g, rng, false)
		inf := make([]bool, g.NumArcs())
		for a := range inf {
			inf[a] = rng.IntN(4) == 0
		}
		w := func(a ArcID) float64 {
			if inf[a] {
				return math.Inf(1)
			}
			return base(a)
		}
		src := NodeID(rng.IntN(n))
		dsts := pick(rng, n, 1+rng.IntN(min(n-1, 8)), src)
		seen := reachable(g, src, w)
		ok := true
		for _, d := range dsts {
			ok = ok && seen[d]
		}
		outcomes[ok]++
		for name, f := range algos {
			tr, err := f(g, src, dsts, w)
			if !ok {
				if !errors.Is(err, ErrUnreachable) {
					t.Fatalf("seed %d %s: a receiver is unreachable, got %v", seed, name, err)
				}
				named := false
				for _, d := range dsts {
					named = named || (!seen[d] && strings.Contains(err.Error(), g.NodeName(d)+" "))
				}
				if !named {
					t.Fatalf("seed %d %s: %q names no unreachable receiver", seed, name, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("seed %d %s: %v", seed, name, err)
			}
			if err := tr.Validate(g, src, dsts); err != nil {
				t.Fatalf("seed %d %s: %v", seed, name, err)
			}
			for _, a := range tr.Arcs {
				if inf[a] {
					t.Fatalf("seed %d %s: uses arc %s->%s of weight +Inf", seed, name, g.NodeName(g.Arc(a).From), g.NodeName(g.Arc(a).To))
				}
			}
			if c := tr.Weigh(w); c != tr.Cost {
				t.Fatalf("seed %d %s: cost %v, arcs weigh %v", seed, name, tr.Cost, c)
			}
		}
	}
	if outcomes[true] < 50 || outcomes[false] < 50 {
		t.Fatalf("too few cases of one kind: %v", outcomes)
	}
}
