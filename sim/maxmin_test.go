package sim

import (
	"math"
	"math/rand/v2"
	"testing"
)

// checkMaxMin verifies the characterization of max-min fairness: the allocation is feasible
// and every flow has a bottleneck, an arc that is full and on which no flow gets more.
func checkMaxMin(t *testing.T, capacity []float64, paths [][]int32, rates []float64) {
	t.Helper()
	load := make([]float64, len(capacity))
	for i, p := range paths {
		for _, a := range p {
			load[a] += rates[i]
		}
	}
	for a, l := range load {
		if l > capacity[a]*(1+1e-9) {
			t.Fatalf("arc %d: load %v over capacity %v", a, l, capacity[a])
		}
	}
	for i, p := range paths {
		if !(rates[i] > 0) {
			t.Fatalf("flow %d: rate %v", i, rates[i])
		}
		bottleneck := false
		for _, a := range p {
			if load[a] < capacity[a]*(1-1e-9) {
				continue
			}
			highest := true
			for j, q := range paths {
				for _, b := range q {
					if b == a && rates[j] > rates[i]*(1+1e-9) {
						highest = false
					}
				}
			}
			if highest {
				bottleneck = true
				break
			}
		}
		if !bottleneck {
			t.Fatalf("flow %d (rate %v, path %v) has no bottleneck", i, rates[i], p)
		}
	}
}

func TestMaxMinByHand(t *testing.T) {
	// Arc 0 has capacity 1 and carries flows 0 and 1; arc 1 has capacity 3 and carries flows
	// 1 and 2. Arc 0 fills first at 1/2 each; flow 2 then takes the rest of arc 1: 3 - 1/2.
	m := newMaxMin([]float64{1, 3})
	paths := [][]int32{{0}, {0, 1}, {1}, {}}
	rates := make([]float64, 4)
	m.rates(paths, rates)
	want := []float64{0.5, 0.5, 2.5, math.Inf(1)}
	for i := range want {
		if math.Abs(rates[i]-want[i]) > 1e-12 && rates[i] != want[i] {
			t.Fatalf("rates %v, want %v", rates, want)
		}
	}
}

func TestMaxMinProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for iter := range 500 {
		nArcs := 1 + rng.IntN(12)
		capacity := make([]float64, nArcs)
		for a := range capacity {
			capacity[a] = []float64{1, 2, 0.5, 1 + rng.Float64()}[rng.IntN(4)]
		}
		m := newMaxMin(capacity)
		// Two rounds on the same engine check that buffers are reset between calls.
		for range 2 {
			paths := make([][]int32, 1+rng.IntN(15))
			for i := range paths {
				perm := rng.Perm(nArcs)
				for _, a := range perm[:1+rng.IntN(min(nArcs, 4))] {
					paths[i] = append(paths[i], int32(a))
				}
			}
			rates := make([]float64, len(paths))
			m.rates(paths, rates)
			t.Run("", func(t *testing.T) {
				_ = iter
				checkMaxMin(t, capacity, paths, rates)
			})
		}
	}
}
