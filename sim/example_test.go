package sim_test

import (
	"context"
	"fmt"

	"github.com/treecast/treecast/sim"
	"github.com/treecast/treecast/tree"
)

// Draw DCCast's workload on GScale: about 500 transfers of 10+exp:20 units to 1..6 sites.
func ExampleGenerate() {
	g := tree.GScale()
	w := sim.DCCastWorkload()
	ts, err := sim.Generate(g, w, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	first := ts[0]
	fmt.Println(len(ts) > 400, first.Volume >= 10, len(first.Dsts) >= 1 && len(first.Dsts) <= 6)
	// Output: true true true
}

func ExampleParseVolume() {
	v, err := sim.ParseVolume("10+exp:20")
	fmt.Println(v.Mean(), err)
	_, err = sim.ParseVolume("10+gauss:3")
	fmt.Println(err)
	// Output:
	// 30 <nil>
	// sim: bad volume spec: "10+gauss:3": term "gauss:3": unknown distribution "gauss" (want a number, const:X, exp:MEAN, pareto:ALPHA,MIN or uniform:A,B)
}

// Simulate one push of 4 units from h0 to h1 and h2 on a 4-ary fat-tree, chained by the
// agents: h0 -> h1 (same rack) -> h2 (next rack). Chunks of 1 unit pipeline, so h1 holds all
// 4 after 4 slots and h2 one slot later.
func ExampleRun() {
	g, _ := tree.FatTree(4)
	h0, _ := g.Lookup("h0")
	h1, _ := g.Lookup("h1")
	h2, _ := g.Lookup("h2")
	ts := []sim.Transfer{{ID: 0, Src: h0, Dsts: []tree.NodeID{h1, h2}, Volume: 4}}
	sc, _ := sim.ParseScheme("overlay:chain")
	res, err := sim.Run(context.Background(), sim.Config{Graph: g, Scheme: sc}, ts)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("TCT", res.MaxTCT, "receivers", res.ReceiverTimes[0], "bandwidth", res.TotalBandwidth, "max copies", res.MaxCopies)
	// Output: TCT 5 receivers [4 5] bandwidth 24 max copies 1
}
