package scheduler

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/treecast/treecast/tree"
)

// labelled returns the topology inferred from r racks of h agents labelled rack=rN, as a
// live cluster's agents would advertise.
func labelled(t testing.TB, r, h int) *tree.Graph {
	t.Helper()
	var agents []AgentInfo
	for i := range r * h {
		agents = append(agents, AgentInfo{Name: fmt.Sprintf("n%03d", i), Labels: map[string]string{"rack": fmt.Sprint("r", i/h)}})
	}
	g, err := InferTopology(agents)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// hierarchyTopologies are the data-center shapes the default plan must serve with about one
// copy per arc: fat-trees, leaf-spine, BCube, the testbed's two-tier racks, and the same
// racks inferred from agents' labels.
func hierarchyTopologies(t testing.TB) map[string]*tree.Graph {
	out := map[string]*tree.Graph{}
	for _, spec := range []string{"fattree:4", "fattree:8", "fattree:16", "leafspine:4,6,8", "leafspine:2,8,16",
		"bcube:4,1", "bcube:4,2", "twotier:4,4", "twotier:8,8"} {
		g, err := tree.ParseSpec(spec)
		if err != nil {
			t.Fatal(err)
		}
		out[spec] = g
	}
	out["labels 4x4"] = labelled(t, 4, 4)
	out["labels 8x8"] = labelled(t, 8, 8)
	return out
}

// checkHierarchical asserts what a plan on a hierarchy promises: every stripe a tree that
// reaches every receiver once, at most maxCopies on every arc (switch-to-switch included),
// (times (stripes+parity)/stripes, the parity trees' own overhead), every receiver interior
// in at most one data stripe, depth within depthCap, and total copies within 10% of the
// chain's (scaled alike).
func checkHierarchical(t *testing.T, name string, p *Plan, maxCopies float64, depthCap int, chainTotal float64) {
	t.Helper()
	if err := p.Validate(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	c := p.Copies()
	// A forest of more trees than a rack has receivers cannot enter that rack once per
	// tree (auto never picks one): only its shape is checked then.
	if p.DataStripes+p.Parity > smallestRack(p.Graph) && !p.Auto {
		return
	}
	maxCopies *= float64(p.DataStripes+p.Parity) / float64(p.DataStripes) // parity's own overhead
	for a, v := range c.PerArc {
		if v > maxCopies+eps {
			arc := p.Graph.Arc(tree.ArcID(a))
			t.Fatalf("%s: %.3f copies on %s->%s, want <= %v", name, v, p.Graph.NodeName(arc.From), p.Graph.NodeName(arc.To), maxCopies)
		}
	}
	interior := map[tree.NodeID]int{}
	for s := range p.DataStripes {
		seen := map[tree.NodeID]bool{}
		for _, e := range p.Stripes[s].Edges {
			if e.From != p.Source && !seen[e.From] {
				seen[e.From] = true
				interior[e.From]++
			}
		}
	}
	for v, n := range interior {
		// A rack whose receivers of some class cannot feed the rest of the rack within the
		// budget (fewer receivers than trees, say) has one of them relay in two trees.
		trees, r := p.DataStripes+p.Parity, smallestRack(p.Graph)-1 // the source's rack has one receiver fewer
		if n > 1 && p.Parity == 0 && r/trees*(trees+max(1, trees/4)) >= r-1 {
			t.Fatalf("%s: %s is interior in %d data stripes", name, p.Graph.NodeName(v), n)
		}
	}
	if d := p.Depth(); d > depthCap {
		t.Fatalf("%s: depth %d above %d", name, d, depthCap)
	}
	scale := float64(p.DataStripes+p.Parity) / float64(p.DataStripes)
	if c.Total > 1.1*chainTotal*scale+eps {
		t.Fatalf("%s: %.1f copies in all, more than 1.1 x the chain's %.1f", name, c.Total, chainTotal*scale)
	}
}

// TestHierarchicalPlans checks the default plan (auto), and forests of 4 and 8 stripes with
// and without parity, to every host of each data-center shape.
func TestHierarchicalPlans(t *testing.T) {
	for spec, g := range hierarchyTopologies(t) {
		src := g.Hosts()[0]
		dsts, _ := tree.ParseTargets(g, src, "hosts", 1)
		chain, err := Build(g, src, dsts, Options{Strategy: StrategyChain})
		if err != nil {
			t.Fatal(err)
		}
		chainTotal := chain.Copies().Total
		for _, tc := range []struct {
			opts      Options
			maxCopies float64
		}{
			{Options{}, 1.25},
			{Options{ObjectSize: 50 << 20}, 1.25},
			{Options{Parity: 1}, 1.25},
			{Options{Strategy: StrategyForest, Stripes: 4}, 1.25},
			{Options{Strategy: StrategyForest, Stripes: 8}, 1.25},
			{Options{Strategy: StrategyForest, Stripes: 2, Parity: 2}, 1.25},
		} {
			name := fmt.Sprintf("%s %+v", spec, tc.opts)
			p, err := Build(g, src, dsts, tc.opts)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if tc.opts.Strategy == "" && (!p.Auto || p.Strategy == StrategyAuto) {
				t.Fatalf("%s: default plan has strategy %q, auto %v", name, p.Strategy, p.Auto)
			}
			if p.Parity != tc.opts.Parity {
				t.Fatalf("%s: %d parity trees, want %d", name, p.Parity, tc.opts.Parity)
			}
			if tc.opts.Strategy == StrategyForest && strings.HasPrefix(spec, "bcube") {
				// A BCube source has a port per level: a forest of fixed shape there can
				// load the source's ports (1.5 to 2.25 copies for 4 stripes); auto picks another.
				if err := p.Validate(); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				continue
			}
			checkHierarchical(t, name, p, tc.maxCopies, DepthCap(len(dsts))+2, chainTotal)
		}
	}
}

// TestFatTreeDefault: the default plan to every host of k=8, 16 and 32 fat-trees puts at
// most 1.25 copies on every arc, is at most 16 deep at k=32, and totals within 10% of the
// chain's copies.
func TestFatTreeDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("k=32 fat-tree in -short")
	}
	for _, k := range []int{8, 16, 32} {
		g, _ := tree.FatTree(k)
		dsts := g.Hosts()[1:]
		p, err := Build(g, 0, dsts, Options{})
		if err != nil {
			t.Fatal(err)
		}
		chain, _ := Build(g, 0, dsts, Options{Strategy: StrategyChain})
		depthCap := DepthCap(len(dsts))
		if k == 32 {
			depthCap = 16
		}
		checkHierarchical(t, g.Name(), p, 1.25, depthCap, chain.Copies().Total)
		t.Logf("%s: %s", g.Name(), p.Summary())
	}
}

// TestForestRandomReceivers: on receiver subsets (racks partly targeted), the forest still
// reaches everyone once per stripe, and its host uplinks stay within the budget.
func TestForestRandomReceivers(t *testing.T) {
	for spec, g := range hierarchyTopologies(t) {
		for seed := range uint64(6) {
			src, sets := receiverSets(g, seed)
			for _, dsts := range sets {
				for _, opts := range []Options{{}, {Strategy: StrategyForest, Stripes: 4}, {Strategy: StrategyForest, Stripes: 3, Parity: 1}} {
					name := fmt.Sprintf("%s seed %d %d receivers %+v", spec, seed, len(dsts), opts)
					p, err := Build(g, src, dsts, opts)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					if err := p.Validate(); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					budget := float64(p.DataStripes+p.Parity) + math.Max(1, float64((p.DataStripes+p.Parity)/4))
					for _, r := range p.Receivers {
						up := 0
						for s := range p.Stripes {
							up += len(p.Children(r, s))
						}
						if p.Strategy == StrategyForest && float64(up) > budget {
							t.Fatalf("%s: %s feeds %d children, budget %v", name, g.NodeName(r), up, budget)
						}
					}
				}
			}
		}
	}
}

// smallestRack returns the fewest hosts attached to a switch that has hosts.
func smallestRack(g *tree.Graph) int {
	best := math.MaxInt
	for v := range tree.NodeID(g.NumNodes()) {
		if g.Node(v).Kind != tree.Switch {
			continue
		}
		n := 0
		for _, a := range g.Out(v) {
			if g.Node(g.Arc(a).To).Kind == tree.Host {
				n++
			}
		}
		if n > 0 {
			best = min(best, n)
		}
	}
	return best
}

func TestChunkSizeFor(t *testing.T) {
	for _, tc := range []struct {
		size         int64
		depth, trees int
		want         int
	}{
		{50 << 20, 5, 8, 128 << 10},        // 50 MiB / (8 stripes x 32 chunks) = 200 KiB
		{50 << 20, 6, 2, 512 << 10},        // 50 MiB / (2 x 32) = 800 KiB
		{1 << 30, 16, 8, 4 << 20},          // fill 16 x 8 x 256 KiB frames = 1 GiB / 32
		{1 << 30, 32, 8, 2 << 20},          // 4 MiB would fill 64 MiB: 2 MiB chunks, 128 KiB frames
		{0, 16, 8, 4 << 20},                // unknown: DefaultObjectSize
		{64 << 30, 1, 1, MaxAutoChunkSize}, // capped
		{1 << 40, 4, 4, 16 << 20},          // 1 TiB in at most 65,536 chunks
		{3 << 20, 2, 3, MinChunkSize},      // small objects: the floor
	} {
		if got := ChunkSizeFor(tc.size, tc.depth, tc.trees); got != tc.want {
			t.Errorf("ChunkSizeFor(%d, %d, %d) = %d, want %d", tc.size, tc.depth, tc.trees, got, tc.want)
		}
	}
}
