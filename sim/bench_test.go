package sim

import (
	"context"
	"os"
	"testing"

	"github.com/treecast/treecast/tree"
)

// benchOverlay runs 100 transfers of 1..6 receivers (volume 10+exp:20, chunks of 1 unit)
// arriving over 20 slots on fat-tree k=16 (1,024 hosts). BENCH_RECEIVERS=A-B changes the
// receivers per transfer.
func benchOverlay(b *testing.B, planner func(*tree.Graph) Planner) {
	g, err := tree.FatTree(16)
	if err != nil {
		b.Fatal(err)
	}
	w := DCCastWorkload()
	w.Lambda, w.Horizon = 5, 20
	if r := os.Getenv("BENCH_RECEIVERS"); r != "" {
		if w.Receivers, err = ParseRange(r, 1); err != nil {
			b.Fatal(err)
		}
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

func benchStrategy(strategy string) func(*tree.Graph) Planner {
	return func(g *tree.Graph) Planner {
		p, err := schedulerPlanner(g, strategy)
		if err != nil {
			panic(err)
		}
		return p
	}
}

func BenchmarkOverlayFatTree16(b *testing.B) {
	for _, s := range []string{"chain", "tree", "forest", "unicast"} {
		b.Run(s, func(b *testing.B) { benchOverlay(b, benchStrategy(s)) })
	}
}

// benchDCCast runs the DCCast experiment: the dccast scheme under DCCast's workload (lambda
// 1, 1..6 receivers, 10+exp:20, horizon 500) for seeds 1..5, on the topology spec.
func benchDCCast(b *testing.B, spec string) {
	g, err := tree.ParseSpec(spec)
	if err != nil {
		b.Fatal(err)
	}
	x := Experiment{Graph: g, Schemes: []Scheme{{Name: "dccast", Policy: "dccast"}}, Workload: DCCastWorkload(), Seeds: Range{1, 5}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := x.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDCCastGScale5Seeds(b *testing.B)   { benchDCCast(b, "gscale") }
func BenchmarkDCCastCogentco5Seeds(b *testing.B) { benchDCCast(b, "zoo:cogentco") }

// BenchmarkPreset runs every scheme of every paper preset on its 5 seeds, one scheme per
// sub-benchmark (go test ./sim -run XXX -bench Preset -benchtime 1x -benchmem).
func BenchmarkPreset(b *testing.B) {
	for _, p := range Presets() {
		x, err := p.Experiment()
		if err != nil {
			b.Fatal(err)
		}
		for _, sc := range x.Schemes {
			b.Run(p.Name+"/"+sc.Name, func(b *testing.B) {
				one := x
				one.Schemes = []Scheme{sc}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := one.Run(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
