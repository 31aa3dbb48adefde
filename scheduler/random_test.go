package scheduler

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/treecast/treecast/tree"
)

// Wilson's algorithm returns a spanning tree: every node but the root has a parent arc
// entering it, and following parents from any node reaches the root without a cycle; the
// pruned tree is a valid tree (every leaf a receiver) spanning the receivers.
func TestRandomTreeSpans(t *testing.T) {
	ft, _ := tree.FatTree(4)
	rw, _ := tree.RingChords(30, 90, 2)
	for _, g := range []*tree.Graph{tree.GScale(), ft, rw} {
		rng := rand.New(rand.NewPCG(1, 2))
		comp := make([]bool, g.NumNodes())
		for i := range comp {
			comp[i] = true
		}
		for trial := range 20 {
			root := tree.NodeID(rng.IntN(g.NumNodes()))
			parent := wilson(g, root, comp, rng)
			for v := range parent {
				u, steps := tree.NodeID(v), 0
				for u != root {
					if parent[u] < 0 || g.Arc(parent[u]).To != u {
						t.Fatalf("%s trial %d: node %s has no parent arc into it", g.Name(), trial, g.NodeName(u))
					}
					u = g.Arc(parent[u]).From
					if steps++; steps > g.NumNodes() {
						t.Fatalf("%s trial %d: cycle above %s", g.Name(), trial, g.NodeName(tree.NodeID(v)))
					}
				}
			}
			if parent[root] != -1 {
				t.Fatalf("root has a parent")
			}
			ends := g.Endpoints()
			src := ends[rng.IntN(len(ends))]
			var dsts []tree.NodeID
			for _, i := range rng.Perm(len(ends))[:4] {
				if ends[i] != src {
					dsts = append(dsts, ends[i])
				}
			}
			tr, err := randomTree(g, src, dsts, rng)
			if err != nil {
				t.Fatal(err)
			}
			if err := tr.Validate(g, src, dsts); err != nil {
				t.Fatalf("%s trial %d: %v", g.Name(), trial, err)
			}
		}
	}
}

// Every spanning tree is equally likely: K4 has 4^2 = 16 spanning trees (Cayley); 16,000
// draws give each about 1,000 (a standard deviation of about 31).
func TestRandomTreeUniform(t *testing.T) {
	b := tree.NewBuilder("k4")
	for i := range 4 {
		b.AddNode(fmt.Sprint("v", i), tree.Site, nil)
	}
	for i := range 4 {
		for j := i + 1; j < 4; j++ {
			b.AddLink(tree.NodeID(i), tree.NodeID(j), 0, 0)
		}
	}
	g, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	comp := []bool{true, true, true, true}
	rng := rand.New(rand.NewPCG(7, 7))
	count := map[string]int{}
	for range 16000 {
		parent := wilson(g, 0, comp, rng)
		links := make([]int, 0, 3)
		for _, a := range parent[1:] {
			links = append(links, a.Link())
		}
		slices.Sort(links)
		count[fmt.Sprint(links)]++
	}
	if len(count) != 16 {
		t.Fatalf("%d distinct spanning trees, want 16", len(count))
	}
	for k, c := range count {
		if c < 850 || c > 1150 {
			t.Errorf("tree %s drawn %d times of 16,000, want about 1,000", k, c)
		}
	}
}

// RANDOM ignores length: on a ring-and-chords graph its trees are larger on average than
// DCCast's (which are near-minimal under an empty network).
func TestRandomTreeLarger(t *testing.T) {
	g, _ := tree.RingChords(50, 150, 1)
	rng := rand.New(rand.NewPCG(3, 3))
	sr, sd := 0, 0
	for range 50 {
		src := tree.NodeID(rng.IntN(50))
		dsts := []tree.NodeID{tree.NodeID((int(src) + 1 + rng.IntN(49)) % 50), tree.NodeID((int(src) + 1 + rng.IntN(49)) % 50)}
		r, err := randomTree(g, src, dsts, rng)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := tree.SteinerTM(g, src, dsts, tree.Hops)
		sr += len(r.Arcs)
		sd += len(d.Arcs)
	}
	if sr <= sd*3/2 {
		t.Errorf("random trees have %d arcs in all, Steiner trees %d: want random clearly larger", sr, sd)
	}
}
