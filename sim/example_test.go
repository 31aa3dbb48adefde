package sim_test

import (
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
