package tree_test

import (
	"fmt"
	"strings"

	"github.com/treecast/treecast/tree"
)

// A minimum multicast tree on a fat-tree: from host h0 to one host in each other pod.
func ExampleCompute() {
	g, err := tree.ParseSpec("fattree:4")
	if err != nil {
		panic(err)
	}
	src, _ := g.Lookup("h0")
	dsts, _ := tree.ParseTargets(g, src, "h4,h8,h12", 0)
	t, err := tree.Compute(g, tree.AlgoSteiner, src, dsts, tree.Hops)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d arcs, depth %d\n", len(t.Arcs), t.Depth(g))
	// Output: 12 arcs, depth 6
}

// Two trees from one source that share as few arcs as the topology allows.
func ExampleMultiTree() {
	g := tree.GScale()
	src, _ := g.Lookup("s0")
	dsts, _ := tree.ParseTargets(g, src, "s7,s11", 0)
	f, err := tree.MultiTree(g, tree.AlgoSteiner, src, dsts, 2, tree.Hops)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(f.Trees), "trees,", f.SharedArcs, "shared arcs")
	// Output: 2 trees, 0 shared arcs
}

// Parse a topology spec: a builder, an embedded Zoo network or a file.
func ExampleParseSpec() {
	for _, spec := range []string{"fattree:8", "gscale", "zoo:cogentco"} {
		g, err := tree.ParseSpec(spec)
		if err != nil {
			panic(err)
		}
		fmt.Println(g.Name(), g.NumNodes(), "nodes", g.NumLinks(), "links")
	}
	// Output:
	// fattree:8 208 nodes 384 links
	// gscale 12 nodes 19 links
	// zoo:cogentco 197 nodes 243 links
}

// A DCCast-style submission: the tree grows from the source under a load-dependent weight
// (the load already on each arc plus the new transfer's volume), and the volume is then
// charged to the tree's arcs, so the next transfer avoids them where it can: here the
// second tree takes one arc more and shares none with the first.
func ExampleSteinerTM() {
	g := tree.GScale()
	load := make([]float64, g.NumArcs())
	const volume = 10
	w := func(a tree.ArcID) float64 { return load[a] + volume }
	src, _ := g.Lookup("s0")
	dsts, _ := tree.ParseTargets(g, src, "s6,s7,s11", 0)
	for i := range 2 {
		t, err := tree.SteinerTM(g, src, dsts, w)
		if err != nil {
			panic(err)
		}
		for _, a := range t.Arcs {
			load[a] += volume
		}
		fmt.Printf("transfer %d: %d arcs, weight %v\n", i, len(t.Arcs), t.Cost)
	}
	// Output:
	// transfer 0: 6 arcs, weight 60
	// transfer 1: 7 arcs, weight 70
}

// Unicast alternatives: the three lightest loopless paths between two sites.
func ExampleKShortestPaths() {
	g := tree.GScale()
	src, _ := g.Lookup("s0")
	dst, _ := g.Lookup("s7")
	paths, err := tree.KShortestPaths(g, src, dst, 3, tree.Hops)
	if err != nil {
		panic(err)
	}
	for _, p := range paths {
		names := []string{g.NodeName(src)}
		for _, a := range p {
			names = append(names, g.NodeName(g.Arc(a).To))
		}
		fmt.Println(len(p), "hops:", strings.Join(names, " "))
	}
	// Output:
	// 3 hops: s0 s4 s3 s7
	// 3 hops: s0 s4 s5 s7
	// 4 hops: s0 s1 s2 s3 s7
}
