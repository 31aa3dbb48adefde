package tree

import (
	"math/rand/v2"
	"testing"
	"time"
)

func steinerP(g *Graph, src NodeID, dsts []NodeID, w Weight, ms, pr int, ls bool) *Tree {
	tm, _ := SteinerTM(g, src, dsts, w)
	kmb, _ := SteinerKMB(g, src, dsts, w)
	best := tm
	if kmb.Cost < tm.Cost {
		best = kmb
	}
	recv, _ := checkNodes(g, src, dsts)
	if ls {
		best = localSearch(g, best, recv, w)
	}
	terms := append([]NodeID{src}, recv...)
	for i, r := range recv[:min(len(recv), ms)] {
		others := append(append([]NodeID{}, terms[:i+1]...), terms[i+2:]...)
		t, err := SteinerTM(g, r, others, w)
		if err != nil {
			continue
		}
		t = treeFromLinks(g, src, t.Arcs, recv, w)
		if ls {
			t = localSearch(g, t, recv, w)
		}
		if t.Cost < best.Cost {
			best = t
		}
	}
	for r := range pr {
		wp := func(a ArcID) float64 { return w(a) * (1 + 1e-3*jitter(uint64(a), uint64(r))) }
		t, err := SteinerTM(g, src, recv, wp)
		if err != nil {
			break
		}
		t = treeFromLinks(g, src, t.Arcs, recv, w)
		if ls {
			t = localSearch(g, t, recv, w)
		}
		if t.Cost < best.Cost {
			best = t
		}
	}
	return best
}

func TestExploreQuality(t *testing.T) {
	type inst struct {
		g    *Graph
		w    Weight
		src  NodeID
		dsts []NodeID
		ex   float64
	}
	var insts [2][]inst
	for wi, weights := range []string{"hops", "random"} {
		for seed := range uint64(300) {
			rng := rand.New(rand.NewPCG(seed, 11))
			g, _ := RandomWAN(50, 150, seed)
			w := Hops
			if weights == "random" {
				w = randomWeights(g, rng, true)
			}
			src := NodeID(rng.IntN(50))
			dsts := pick(rng, 50, 2+rng.IntN(9), src)
			ex, _ := SteinerExact(g, src, dsts, w)
			insts[wi] = append(insts[wi], inst{g, w, src, dsts, ex.Cost})
		}
	}
	for _, cfg := range [][3]int{{6, 8, 1}, {0, 0, 1}, {2, 0, 1}, {0, 2, 1}, {2, 2, 1}, {3, 3, 1}, {6, 8, 0}, {4, 4, 1}} {
		for wi := range 2 {
			sum, worst := 0.0, 0.0
			start := time.Now()
			for _, in := range insts[wi] {
				h := steinerP(in.g, in.src, in.dsts, in.w, cfg[0], cfg[1], cfg[2] == 1)
				r := h.Cost/in.ex - 1
				sum += r
				worst = max(worst, r)
			}
			t.Logf("cfg %v w%d: mean %.3f%% worst %.2f%% time/op %v", cfg, wi, 100*sum/300, 100*worst, time.Since(start)/300)
		}
	}
}
