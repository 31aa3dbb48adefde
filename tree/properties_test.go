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

// TestEdgeCases: no receivers, the source as its only receiver, bad counts and names.
func TestEdgeCases(t *testing.T) {
	g := GScale()
	for _, algo := range Algos {
		for _, dsts := range [][]NodeID{nil, {}, {3, 3}, {3}} {
			tr, err := Compute(g, algo, 3, dsts, Hops)
			if err != nil {
				t.Fatalf("%s %v: %v", algo, dsts, err)
			}
			if tr.Root != 3 || len(tr.Arcs) != 0 || tr.Cost != 0 {
				t.Errorf("%s %v: want the bare root, got %+v", algo, dsts, tr)
			}
			if err := tr.Validate(g, 3, dsts); err != nil {
				t.Error(err)
			}
		}
		if _, err := Compute(g, algo, -1, []NodeID{1}, Hops); !errors.Is(err, ErrUnknownNode) {
			t.Errorf("%s: source -1 gave %v", algo, err)
		}
		f, err := MultiTree(g, algo, 0, nil, 3, Hops)
		if err != nil || len(f.Trees) != 3 || f.SharedArcs != 0 {
			t.Errorf("%s: three empty trees: %+v %v", algo, f, err)
		}
	}
	for _, k := range []int{0, -1} {
		if _, err := MultiTree(g, AlgoTM, 0, []NodeID{1}, k, Hops); !errors.Is(err, ErrBadArgument) {
			t.Errorf("MultiTree k=%d gave %v", k, err)
		}
		if _, err := KShortestPaths(g, 0, 1, k, Hops); !errors.Is(err, ErrBadArgument) {
			t.Errorf("KShortestPaths k=%d gave %v", k, err)
		}
	}
	if _, err := ParseAlgo("magic"); !errors.Is(err, ErrUnknownAlgo) || !strings.Contains(err.Error(), `"magic"`) {
		t.Errorf("ParseAlgo(magic) gave %v", err)
	}
	if _, err := Compute(g, "magic", 0, nil, Hops); !errors.Is(err, ErrUnknownAlgo) {
		t.Errorf("Compute(magic) gave %v", err)
	}
	for _, name := range []string{"spt", "steiner", "tm", "exact"} {
		if a, err := ParseAlgo(name); err != nil || string(a) != name {
			t.Errorf("ParseAlgo(%s) = %q, %v", name, a, err)
		}
	}
	if p, err := KShortestPaths(g, 4, 4, 3, Hops); err != nil || len(p) != 1 || len(p[0]) != 0 {
		t.Errorf("KShortestPaths to the source itself: %v %v", p, err)
	}
	if _, err := KShortestPaths(g, 0, 99, 2, Hops); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("KShortestPaths to node 99: %v", err)
	}
	if p, c, err := ShortestPath(g, 4, 4, Hops); err != nil || len(p) != 0 || c != 0 {
		t.Errorf("ShortestPath to the source itself: %v %v %v", p, c, err)
	}
}

// TestLargeGraphQuality: on graphs of more than 1,024 nodes the default Steiner algorithm
// refines small trees by one bounded local search. It never does worse than TM or KMB and
// never beats the optimum; its mean excess over the optimum is logged.
func TestLargeGraphQuality(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	const graphs = 10
	sum, sumTM := 0.0, 0.0
	for seed := range uint64(graphs) {
		rng := rand.New(rand.NewPCG(seed, 99))
		g, err := RandomWAN(2000, 6000, seed)
		if err != nil {
			t.Fatal(err)
		}
		w := randomWeights(g, rng, true)
		src := NodeID(rng.IntN(2000))
		dsts := pick(rng, 2000, 2+rng.IntN(7), src)
		ex, err := SteinerExact(g, src, dsts, w)
		if err != nil {
			t.Fatal(err)
		}
		st, err := Steiner(g, src, dsts, w)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Validate(g, src, dsts); err != nil {
			t.Fatal(err)
		}
		tm, _ := SteinerTM(g, src, dsts, w)
		kmb, _ := SteinerKMB(g, src, dsts, w)
		if st.Cost > tm.Cost || st.Cost > kmb.Cost || st.Cost < ex.Cost-1e-9 {
			t.Fatalf("seed %d: steiner %v, tm %v, kmb %v, optimum %v", seed, st.Cost, tm.Cost, kmb.Cost, ex.Cost)
		}
		sum += st.Cost/ex.Cost - 1
		sumTM += tm.Cost/ex.Cost - 1
	}
	t.Logf("2,000-node graphs: steiner mean excess %.2f%%, tm %.2f%%", 100*sum/graphs, 100*sumTM/graphs)
}
