package scheduler

import (
	"testing"

	"github.com/treecast/treecast/tree"
)

// BenchmarkDCCastSubmit measures one DCCast submission (tree choice and FCFS allocation)
// over the DCCast paper's experiment: Poisson arrivals at lambda 1 until slot 500, volume
// 10 + Exp(20), 1 to 6 receivers, every arc one volume unit per slot; time moves between
// submissions (untimed) and the experiment restarts when it runs out. Target: under 0.2 ms.
func BenchmarkDCCastSubmit(b *testing.B) {
	rnd, _ := tree.RandomWAN(50, 150, 1)
	for _, tc := range []struct {
		name string
		g    *tree.Graph
	}{{"gscale", tree.GScale()}, {"random50", rnd}} {
		b.Run(tc.name, func(b *testing.B) {
			trs := workload(tc.g, 1, 1, 500, 6)
			s, _ := New(tc.g, Config{Policy: PolicyDCCast})
			i := 0
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if i == len(trs) {
					b.StopTimer()
					s, _ = New(tc.g, Config{Policy: PolicyDCCast})
					i = 0
					b.StartTimer()
				}
				tr := trs[i]
				i++
				b.StopTimer()
				for s.Now() < tr.Arrival {
					s.Step()
				}
				b.StartTimer()
				if _, err := s.Submit(tr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkForestPlan builds a 4-stripe forest plan to every host of a k=32 fat-tree (8,191
// receivers; the k=32 fat-tree has 8,192 hosts) and to 10,000 hosts of a k=36 fat-tree.
// Target: under 100 ms for 10,000 receivers.
func BenchmarkForestPlan(b *testing.B) {
	for _, tc := range []struct {
		k, n int
	}{{32, 8191}, {36, 10000}} {
		g, _ := tree.FatTree(tc.k)
		dsts := g.Hosts()[1 : tc.n+1]
		b.Run(g.Name(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Build(g, 0, dsts, Options{Strategy: StrategyForest, Stripes: 4}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAutoPlan builds the default plan (auto: Steiner tree, three candidate forests,
// their predictions) to every host of a k=32 fat-tree (8,191 receivers). Target: under
// 50 ms.
func BenchmarkAutoPlan(b *testing.B) {
	g, _ := tree.FatTree(32)
	dsts := g.Hosts()[1:]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(g, 0, dsts, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
