package sim

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/treecast/treecast/tree"
)

func TestParseSchemes(t *testing.T) {
	got, err := ParseSchemes("dccast, p2p-k3,overlay:chain,multitree-k2,quickcast@maxmin")
	if err != nil {
		t.Fatal(err)
	}
	want := []Scheme{{"dccast", false, "dccast", ""}, {"p2p-k3", false, "p2p-k3", ""}, {"overlay:chain", true, "chain", ""}, {"multitree-k2", false, "multitree-k2", ""},
		{"quickcast@maxmin", false, "quickcast", "maxmin"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v", got)
	}
	for _, bad := range []string{"", "dijkstra", "overlay:mesh", "p2p-k0", "dccast,dccast", "p2p-kx", "dccast@lifo", "overlay:chain@fcfs", "nope@fcfs"} {
		if _, err := ParseSchemes(bad); !errors.Is(err, ErrBadScheme) {
			t.Errorf("ParseSchemes(%q) error %v", bad, err)
		}
	}
}

// Every overlay strategy of the scheduler, on a fat-tree under load: no arc above capacity at
// any instant, the arcs carry exactly the volume the plans charge, every transfer completes,
// and chain plans put at most one copy on any arc.
func TestOverlayPlansConservation(t *testing.T) {
	g, err := tree.FatTree(4)
	if err != nil {
		t.Fatal(err)
	}
	w := DCCastWorkload()
	w.Receivers, w.Horizon, w.Lambda = Range{2, 10}, 10, 1.5
	ts, err := Generate(g, w, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, strat := range []string{"chain", "tree", "forest", "unicast"} {
		t.Run(strat, func(t *testing.T) {
			plan, err := schedulerPlanner(g, strat)
			if err != nil {
				t.Fatal(err)
			}
			capacity := capacities(g)
			carried := make([]float64, len(capacity))
			e := &overlayEngine{g: g, capacity: capacity, chunk: 2, plan: plan, observe: capacityObserver(t, capacity, carried)}
			var res Result
			if err := e.run(context.Background(), ts, &res); err != nil {
				t.Fatal(err)
			}
			res.summarize()
			sum := 0.0
			for _, x := range carried {
				sum += x
			}
			if !near(sum, res.TotalBandwidth) {
				t.Fatalf("arcs carried %v, plans charge %v", sum, res.TotalBandwidth)
			}
			if res.Completed != len(ts) {
				t.Fatalf("%d of %d transfers completed", res.Completed, len(ts))
			}
			if strat == "chain" && res.MaxCopies > 1+1e-9 {
				t.Fatalf("chain puts %v copies on an arc", res.MaxCopies)
			}
			if strat == "unicast" && res.MaxCopies < 2 {
				t.Fatalf("unicast to up to 10 receivers puts only %v copies on the source's uplink", res.MaxCopies)
			}
			for i, rt := range res.ReceiverTimes {
				for _, x := range rt {
					if x <= 0 || x > res.TCT[i]+1e-9 {
						t.Fatalf("transfer %d: receiver time %v, TCT %v", i, x, res.TCT[i])
					}
				}
			}
		})
	}
}

func overlayExperiment(t *testing.T) Experiment {
	g, err := tree.FatTree(4)
	if err != nil {
		t.Fatal(err)
	}
	schemes, err := ParseSchemes("overlay:chain,overlay:forest,overlay:unicast")
	if err != nil {
		t.Fatal(err)
	}
	w := DCCastWorkload()
	w.Receivers, w.Horizon = Range{2, 8}, 15
	return Experiment{Graph: g, Schemes: schemes, Workload: w, Seeds: Range{1, 2}}
}

// The same seeds give the same results, byte for byte apart from wall time.
func TestExperimentDeterministic(t *testing.T) {
	x := overlayExperiment(t)
	encode := func() []byte {
		rs, err := x.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 6 {
			t.Fatalf("%d results, want 6", len(rs))
		}
		for i := range rs {
			rs[i].WallMS = 0
		}
		b, err := json.Marshal(rs)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if a, b := encode(), encode(); string(a) != string(b) {
		t.Fatalf("two runs differ:\n%s\n%s", a, b)
	}
}

// The network schemes, the seeded random trees among them, give the same results for the
// same seeds, byte for byte apart from wall time, per-transfer TCTs included; different
// seeds give different workloads.
func TestNetworkExperimentDeterministic(t *testing.T) {
	schemes, err := ParseSchemes("dccast,random,minmax,p2p-k3,quickcast@maxmin,multitree")
	if err != nil {
		t.Fatal(err)
	}
	w := DCCastWorkload()
	w.Horizon = 40
	x := Experiment{Graph: tree.GScale(), Schemes: schemes, Workload: w, Seeds: Range{1, 2}}
	encode := func() ([]byte, [][]float64) {
		rs, err := x.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 2*len(schemes) {
			t.Fatalf("%d results, want %d", len(rs), 2*len(schemes))
		}
		var tcts [][]float64
		for i := range rs {
			if rs[i].Completed != rs[i].Transfers || rs[i].Transfers == 0 {
				t.Fatalf("%s seed %d: %d of %d transfers completed", rs[i].Scheme, rs[i].Seed, rs[i].Completed, rs[i].Transfers)
			}
			rs[i].WallMS = 0
			tcts = append(tcts, rs[i].TCT)
		}
		b, err := json.Marshal(rs)
		if err != nil {
			t.Fatal(err)
		}
		return b, tcts
	}
	a, ta := encode()
	b, tb := encode()
	if string(a) != string(b) || !reflect.DeepEqual(ta, tb) {
		t.Fatalf("two runs differ:\n%s\n%s", a, b)
	}
	var rs []Result
	if err := json.Unmarshal(a, &rs); err != nil {
		t.Fatal(err)
	}
	for i := range schemes {
		s1, s2 := rs[i], rs[len(schemes)+i]
		if s1.Seed == s2.Seed || s1.Scheme != s2.Scheme {
			t.Fatalf("results out of order: %+v %+v", s1, s2)
		}
		if s1.Transfers == s2.Transfers && s1.TotalBandwidth == s2.TotalBandwidth {
			t.Errorf("%s: seeds %d and %d give the same run", s1.Scheme, s1.Seed, s2.Seed)
		}
	}
}

func TestExperimentCancel(t *testing.T) {
	x := overlayExperiment(t)
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	x.Progress = func(p Progress) {
		if calls++; p.Run == 1 && p.Done == 3 {
			cancel()
		}
	}
	rs, err := x.Run(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if len(rs) != 2 || rs[0].Completed != rs[0].Transfers || rs[1].Completed >= rs[1].Transfers {
		t.Fatalf("results so far: %d runs, completed %v", len(rs), rs)
	}
}
