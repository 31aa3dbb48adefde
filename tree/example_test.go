package tree_test

import (
	"fmt"

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
