package tree

import (
	"math"
	"math/rand/v2"
	"testing"
)

// bruteArborescence is the reference: every choice of one entering arc per node, kept when
// it forms an arborescence rooted at root (every node reaches root through the choices).
func bruteArborescence(m int, root int32, edges []arbEdge) float64 {
	best := math.Inf(1)
	choice := make([]int, m)
	var rec func(v int)
	rec = func(v int) {
		if v == m {
			cost := 0.0
			for x := range m {
				if int32(x) == root {
					continue
				}
				cost += edges[choice[x]].w
				// Walk up: must reach the root within m steps.
				y, steps := int32(x), 0
				for y != root && steps <= m {
					y = edges[choice[y]].u
					steps++
				}
				if y != root {
					return
				}
			}
			best = min(best, cost)
			return
		}
		if int32(v) == root {
			rec(v + 1)
			return
		}
		for i, e := range edges {
			if e.v == int32(v) && e.u != e.v {
				choice[v] = i
				rec(v + 1)
			}
		}
	}
	rec(0)
	return best
}

func TestEdmondsAgainstBruteForce(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 17))
		m := 2 + rng.IntN(5)
		root := int32(rng.IntN(m))
		var edges []arbEdge
		// A random spanning path from the root keeps every node reachable, then extra arcs.
		perm := rng.Perm(m)
		for i, p := range perm {
			if int32(p) == root {
				perm[0], perm[i] = perm[i], perm[0]
			}
		}
		for i := 1; i < m; i++ {
			edges = append(edges, arbEdge{int32(perm[i-1]), int32(perm[i]), float64(1 + rng.IntN(9))})
		}
		for range rng.IntN(3 * m) {
			edges = append(edges, arbEdge{int32(rng.IntN(m)), int32(rng.IntN(m)), float64(rng.IntN(10))})
		}
		got := edmonds(m, root, edges)
		if len(got) != m-1 {
			t.Fatalf("seed %d: %d edges for %d nodes", seed, len(got), m)
		}
		parent := make([]int32, m)
		for i := range parent {
			parent[i] = -1
		}
		cost := 0.0
		for _, i := range got {
			e := edges[i]
			if parent[e.v] >= 0 || e.v == root {
				t.Fatalf("seed %d: node %d entered twice or root entered", seed, e.v)
			}
			parent[e.v] = e.u
			cost += e.w
		}
		for x := range int32(m) {
			y, steps := x, 0
			for y != root && steps <= m {
				y = parent[y]
				steps++
			}
			if y != root {
				t.Fatalf("seed %d: node %d does not reach the root", seed, x)
			}
		}
		if want := bruteArborescence(m, root, edges); cost != want {
			t.Fatalf("seed %d: cost %v, minimum %v", seed, cost, want)
		}
	}
}
