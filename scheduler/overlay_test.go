package scheduler

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/treecast/treecast/tree"
)

func topologies(t testing.TB) map[string]*tree.Graph {
	t.Helper()
	out := map[string]*tree.Graph{}
	for _, spec := range []string{"fattree:4", "fattree:8", "leafspine:4,6,8", "gscale", "bcube:4,1"} {
		g, err := tree.ParseSpec(spec)
		if err != nil {
			t.Fatal(err)
		}
		out[spec] = g
	}
	return out
}

// receiverSets draws seeded receiver sets of several sizes, up to every endpoint.
func receiverSets(g *tree.Graph, seed uint64) (tree.NodeID, [][]tree.NodeID) {
	rng := rand.New(rand.NewPCG(seed, 5))
	ends := g.Endpoints()
	src := ends[rng.IntN(len(ends))]
	var sets [][]tree.NodeID
	for _, n := range []int{1, 3, len(ends) / 2, len(ends) - 1} {
		var set []tree.NodeID
		for _, i := range rng.Perm(len(ends)) {
			if ends[i] != src && len(set) < n {
				set = append(set, ends[i])
			}
		}
		sets = append(sets, set)
	}
	return src, sets
}

const eps = 1e-9

// sameSet reports whether a and b hold the same nodes, each once.
func sameSet(a, b []tree.NodeID) bool {
	in := map[tree.NodeID]int{}
	for _, v := range a {
		in[v]++
	}
	for _, v := range b {
		if in[v] != 1 {
			return false
		}
		in[v] = 2
	}
	return len(in) == len(b) && len(a) == len(b)
}

// TestOverlayInvariants checks every strategy on fat-trees, leaf-spine, BCube and GScale:
// chain carries at most one copy on every arc; tree at most one on switch-to-switch arcs;
// forest at most 1 + 1/S on host arcs; every receiver reached exactly once per stripe.
func TestOverlayInvariants(t *testing.T) {
	for spec, g := range topologies(t) {
		for seed := range uint64(8) {
			src, sets := receiverSets(g, seed)
			for _, dsts := range sets {
				lb := -1.0 // the Steiner lower bound, computed once per receiver set
				for _, opts := range []Options{
					{Strategy: StrategyChain}, {Strategy: StrategyTree}, {Strategy: StrategyTree, Fanout: 2},
					{Strategy: StrategyForest, Stripes: 2}, {Strategy: StrategyForest, Stripes: 4},
					{Strategy: StrategyForest, Stripes: 3, Parity: 1}, {Strategy: StrategyUnicast},
				} {
					name := fmt.Sprintf("%s seed %d %d receivers %+v", spec, seed, len(dsts), opts)
					p, err := Build(g, src, dsts, opts)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					if err := p.Validate(); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					// Validate checks the stripes against the plan's own receiver list: that
					// list must be exactly the receivers asked for.
					if !sameSet(p.Receivers, dsts) {
						t.Fatalf("%s: plan receivers %v, asked for %v", name, p.Receivers, dsts)
					}
					c := p.Copies()
					switch opts.Strategy {
					case StrategyChain:
						if c.Max > 1+eps {
							t.Fatalf("%s: chain puts %v copies on an arc", name, c.Max)
						}
						if p.Depth() != len(dsts) {
							t.Fatalf("%s: chain depth %d", name, p.Depth())
						}
					case StrategyTree:
						if c.MaxSwitch > 1+eps {
							t.Fatalf("%s: tree puts %v copies on a switch-to-switch arc", name, c.MaxSwitch)
						}
						if p.Depth() > len(dsts) {
							t.Fatalf("%s: tree deeper (%d) than a chain", name, p.Depth())
						}
					case StrategyForest:
						// BCube's servers also route transit traffic, so its host arcs carry
						// routes between other hosts: the bound holds for access links only.
						S := float64(opts.Stripes)
						if !strings.HasPrefix(spec, "bcube") && c.MaxHost > (1+1/S)*float64(opts.Stripes+opts.Parity)/S+eps {
							t.Fatalf("%s: forest puts %v copies on a host arc", name, c.MaxHost)
						}
						// The forest enters every group of the hierarchy once per tree: a hop
						// per level (source rack, pod, core) on top of the logarithm.
						if bound := 6 + int(math.Ceil(math.Log2(float64(len(dsts))/S+1))); p.Depth() > bound {
							t.Fatalf("%s: forest depth %d above %d", name, p.Depth(), bound)
						}
					case StrategyUnicast:
						if kids := p.Children(src, 0); len(kids) != len(dsts) {
							t.Fatalf("%s: unicast source has %d children", name, len(kids))
						}
					}
					if lb < 0 {
						if lb, err = p.LowerBound(); err != nil {
							t.Fatal(err)
						}
					}
					if c.Total < lb*float64(opts.Stripes+opts.Parity)/math.Max(1, float64(opts.Stripes))-eps && opts.Strategy != StrategyForest {
						t.Fatalf("%s: total copies %v below the Steiner lower bound %v", name, c.Total, lb)
					}
				}
			}
		}
	}
}

// TestTreeIsShallowerThanChain: on a fat-tree, racks make the tree strategy much shallower.
func TestTreeIsShallowerThanChain(t *testing.T) {
	g, _ := tree.FatTree(8)
	dsts, _ := tree.ParseTargets(g, 0, "hosts", 1)
	chain, _ := Build(g, 0, dsts, Options{Strategy: StrategyChain})
	tr, _ := Build(g, 0, dsts, Options{Strategy: StrategyTree, Fanout: 4})
	forest, _ := Build(g, 0, dsts, Options{Strategy: StrategyForest, Stripes: 4})
	if chain.Depth() != 127 || tr.Depth() > 32+2 || forest.Depth() > 12 {
		t.Errorf("depths: chain %d (want 127), tree %d (want <= 34: 32 racks), forest %d (want <= 12)", chain.Depth(), tr.Depth(), forest.Depth())
	}
	// The forest follows the hierarchy: about one copy on every arc, switch-to-switch
	// included.
	if c := forest.Copies(); c.MaxSwitch > 1.25+eps || c.MaxHost > 1.25+eps {
		t.Errorf("forest copies: switch %v, host %v (want <= 1.25)", c.MaxSwitch, c.MaxHost)
	}
	// The forest's source uploads one copy; every receiver about one.
	c := forest.Copies()
	up, _ := g.FindArc(0, g.Arc(g.Out(0)[0]).To)
	if got := c.PerArc[up]; math.Abs(got-1) > eps {
		t.Errorf("forest source uplink carries %v copies, want 1", got)
	}
}

func TestBuildErrors(t *testing.T) {
	g, _ := tree.FatTree(4)
	for _, tc := range []struct {
		dsts []tree.NodeID
		opts Options
		want error
	}{
		{[]tree.NodeID{0}, Options{}, ErrNoReceivers},
		{[]tree.NodeID{1}, Options{Strategy: "star"}, ErrBadOptions},
		{[]tree.NodeID{1}, Options{Strategy: StrategyChain, Stripes: 3}, ErrBadOptions},
		{[]tree.NodeID{1}, Options{Strategy: StrategyForest, Stripes: 60, Parity: 10}, ErrBadOptions},
		{[]tree.NodeID{1}, Options{Strategy: StrategyTree, Fanout: -1}, ErrBadOptions},
		{[]tree.NodeID{99}, Options{}, tree.ErrUnknownNode},
	} {
		if _, err := Build(g, 0, tc.dsts, tc.opts); !errors.Is(err, tc.want) {
			t.Errorf("Build(%v, %+v) = %v, want %v", tc.dsts, tc.opts, err, tc.want)
		}
	}
}

func TestWireRoundTrip(t *testing.T) {
	for spec, g := range topologies(t) {
		src, sets := receiverSets(g, 3)
		for _, st := range Strategies {
			opts := Options{Strategy: st}
			if st == StrategyForest {
				opts.Stripes, opts.Parity = 3, 2
			}
			p, err := Build(g, src, sets[2], opts)
			if err != nil {
				t.Fatal(err)
			}
			w := p.Wire()
			b, err := w.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var back Wire
			if err := back.UnmarshalBinary(b); err != nil {
				t.Fatalf("%s %s: %v", spec, st, err)
			}
			w.children, back.children = nil, nil
			if !reflect.DeepEqual(*w, back) {
				t.Fatalf("%s %s: round trip changed the plan", spec, st)
			}
			for s := range p.Stripes {
				for _, v := range append([]tree.NodeID{src}, p.Receivers...) {
					want := names(g, p.Children(v, s))
					if got := back.Children(g.NodeName(v), s); !reflect.DeepEqual(got, want) {
						t.Fatalf("%s %s: children of %s in stripe %d: %v, want %v", spec, st, g.NodeName(v), s, got, want)
					}
				}
			}
			if n := len(b); n > 16+len(p.Receivers)*(8+4*len(p.Stripes)) {
				t.Errorf("%s %s: %d bytes for %d receivers is not compact", spec, st, n, len(p.Receivers))
			}
		}
	}
}

func names(g *tree.Graph, vs []tree.NodeID) []string {
	var out []string
	for _, v := range vs {
		out = append(out, g.NodeName(v))
	}
	return out
}

func TestWireRejects(t *testing.T) {
	g, _ := tree.FatTree(4)
	p, _ := Build(g, 0, []tree.NodeID{1, 5, 9}, Options{Strategy: StrategyChain})
	good, _ := p.Wire().MarshalBinary()
	for name, b := range map[string][]byte{
		"empty":     {},
		"magic":     append([]byte{'X'}, good[1:]...),
		"version":   append([]byte{good[0], 9}, good[2:]...),
		"truncated": good[:len(good)-1],
		"trailing":  append(append([]byte{}, good...), 0),
		"strategy":  append([]byte{good[0], good[1], 77}, good[3:]...),
	} {
		var w Wire
		if err := w.UnmarshalBinary(b); !errors.Is(err, ErrBadPlan) {
			t.Errorf("%s: %v, want ErrBadPlan", name, err)
		}
	}
	// A cycle: an edge into the source.
	bad := &Wire{Strategy: StrategyChain, Source: "a", DataStripes: 1, Trees: [][][2]string{{{"a", "b"}, {"b", "a"}}}}
	b, _ := bad.MarshalBinary()
	var w Wire
	if err := w.UnmarshalBinary(b); !errors.Is(err, ErrBadPlan) {
		t.Errorf("cycle accepted: %v", err)
	}
}

func FuzzWire(f *testing.F) {
	g, _ := tree.FatTree(4)
	for _, st := range Strategies {
		p, _ := Build(g, 0, []tree.NodeID{1, 5, 9, 13}, Options{Strategy: st})
		b, _ := p.Wire().MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var w Wire
		if err := w.UnmarshalBinary(data); err != nil {
			return
		}
		// Whatever decodes re-encodes to the same bytes and is a forest rooted at the source.
		b, err := w.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var again Wire
		if err := again.UnmarshalBinary(b); err != nil {
			t.Fatalf("re-encoded plan rejected: %v", err)
		}
	})
}

// TestReplan kills random nodes from plans and checks that every live receiver is still
// reached exactly once per stripe, that failed nodes are gone, and that every edge between
// live nodes survives unchanged.
func TestReplan(t *testing.T) {
	for spec, g := range topologies(t) {
		for seed := range uint64(10) {
			rng := rand.New(rand.NewPCG(seed, 77))
			src, sets := receiverSets(g, seed)
			dsts := sets[2]
			for _, st := range Strategies {
				opts := Options{Strategy: st}
				if st == StrategyForest {
					opts.Stripes, opts.Parity = 2, 1
				}
				p, err := Build(g, src, dsts, opts)
				if err != nil {
					t.Fatal(err)
				}
				var failed []tree.NodeID
				dead := map[tree.NodeID]bool{}
				for _, r := range dsts {
					if rng.IntN(4) == 0 {
						failed = append(failed, r)
						dead[r] = true
					}
				}
				holds := map[tree.NodeID][]bool{}
				for _, r := range dsts {
					holds[r] = []bool{rng.IntN(2) == 0, rng.IntN(2) == 0, rng.IntN(2) == 0}
				}
				np, err := Replan(p, failed, holds)
				if err != nil {
					t.Fatal(err)
				}
				name := fmt.Sprintf("%s seed %d %s", spec, seed, st)
				var live []tree.NodeID
				for _, r := range dsts {
					if !dead[r] {
						live = append(live, r)
					}
				}
				if !sameSet(np.Receivers, live) {
					t.Fatalf("%s: receivers after replan %v, want the live ones %v", name, np.Receivers, live)
				}
				if err := np.Validate(); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				for s, stripe := range p.Stripes {
					kept := map[[2]tree.NodeID]bool{}
					for _, e := range np.Stripes[s].Edges {
						kept[[2]tree.NodeID{e.From, e.To}] = true
						if dead[e.From] || dead[e.To] {
							t.Fatalf("%s: edge touches a failed node", name)
						}
						if crossesDead(g, e.Path, dead) {
							t.Fatalf("%s: edge %s->%s is routed through a failed host", name, g.NodeName(e.From), g.NodeName(e.To))
						}
					}
					for _, e := range stripe.Edges {
						if !dead[e.From] && !dead[e.To] && !kept[[2]tree.NodeID{e.From, e.To}] {
							t.Fatalf("%s: healthy edge %s->%s dropped", name, g.NodeName(e.From), g.NodeName(e.To))
						}
					}
				}
			}
		}
	}
	g, _ := tree.FatTree(4)
	p, _ := Build(g, 0, []tree.NodeID{1, 2}, Options{Strategy: StrategyChain})
	if _, err := Replan(p, []tree.NodeID{0}, nil); !errors.Is(err, ErrSourceFailed) {
		t.Errorf("failed source: %v", err)
	}
}

func TestInferTopology(t *testing.T) {
	var agents []AgentInfo
	for i := range 12 {
		agents = append(agents, AgentInfo{Name: fmt.Sprintf("n%02d", i), Labels: map[string]string{
			"dc": []string{"east", "west"}[i/6], "pod": fmt.Sprint("p", i/3), "rack": fmt.Sprint("r", i/2)}})
	}
	agents = append(agents, AgentInfo{Name: "loner"})
	g, err := InferTopology(agents)
	if err != nil {
		t.Fatal(err)
	}
	// 13 hosts, 8 racks (distinct dc/pod/rack triples), 4 pods, 3 data centers (east, west
	// and the default one of the unlabelled agent), a wan switch.
	if len(g.Hosts()) != 13 || g.NumNodes() != 13+8+4+3+1 || g.NumLinks() != g.NumNodes()-1 {
		t.Fatalf("inferred %d hosts, %d nodes, %d links", len(g.Hosts()), g.NumNodes(), g.NumLinks())
	}
	src, _ := g.Lookup("n00")
	dsts, _ := tree.ParseTargets(g, src, "hosts", 1)
	p, err := Build(g, src, dsts, Options{Strategy: StrategyTree})
	if err != nil {
		t.Fatal(err)
	}
	if c := p.Copies(); c.MaxSwitch > 1+eps {
		t.Errorf("tree plan on the inferred topology: %v copies on a switch arc", c.MaxSwitch)
	}
	// The same agents in another order infer the same graph.
	rev := append([]AgentInfo{}, agents...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	h, _ := InferTopology(rev)
	for v := range tree.NodeID(g.NumNodes()) {
		if g.NodeName(v) != h.NodeName(v) {
			t.Fatalf("inference depends on order: node %d is %s and %s", v, g.NodeName(v), h.NodeName(v))
		}
	}
	if _, err := InferTopology([]AgentInfo{{Name: "a"}, {Name: "a"}}); err == nil {
		t.Error("duplicate agent names accepted")
	}
	for _, bad := range [][]AgentInfo{
		{{Name: "dc:x"}, {Name: "b", Labels: map[string]string{"dc": "x"}}},
		{{Name: "wan"}},
		{{Name: "a", Labels: map[string]string{"pod": "p/q", "rack": "r"}}, {Name: "b", Labels: map[string]string{"pod": "p", "rack": "q/r"}}},
	} {
		if _, err := InferTopology(bad); !errors.Is(err, ErrBadTopology) {
			t.Errorf("InferTopology(%v) = %v, want ErrBadTopology", bad, err)
		}
	}
}
