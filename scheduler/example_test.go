package scheduler_test

import (
	"fmt"

	"github.com/treecast/treecast/scheduler"
	"github.com/treecast/treecast/tree"
)

// Plan a push from one host to its rack-mates and two other racks on a fat-tree.
func ExampleBuild() {
	g, _ := tree.FatTree(4)
	src, _ := g.Lookup("h0")
	dsts, _ := tree.ParseTargets(g, src, "h1,h2,h3,h5", 0)
	p, err := scheduler.Build(g, src, dsts, scheduler.Options{Strategy: scheduler.StrategyTree})
	if err != nil {
		panic(err)
	}
	c := p.Copies()
	fmt.Printf("depth %d, max copies on a switch-to-switch arc %.0f\n", p.Depth(), c.MaxSwitch)
	for _, e := range p.Stripes[0].Edges {
		fmt.Println(g.NodeName(e.From), "->", g.NodeName(e.To))
	}
	// Output:
	// depth 2, max copies on a switch-to-switch arc 1
	// h0 -> h1
	// h0 -> h2
	// h2 -> h3
	// h2 -> h5
}

// DCCast: submit transfers, then run slots; under FCFS the completion slot is known at once.
func ExampleScheduler() {
	g := tree.GScale()
	id := func(n string) tree.NodeID { v, _ := g.Lookup(n); return v }
	s, _ := scheduler.New(g, scheduler.Config{Policy: scheduler.PolicyDCCast, Rate: scheduler.RateFCFS})
	d, _ := s.Submit(scheduler.Transfer{ID: 1, Src: id("s0"), Dsts: []tree.NodeID{id("s7"), id("s11")}, Volume: 3})
	fmt.Println("promised completion: slot", d.Completion)
	for s.Active() > 0 {
		for _, c := range s.Step().Completed {
			fmt.Println("transfer", c.ID, "completed at slot", c.Finish)
		}
	}
	// Output:
	// promised completion: slot 3
	// transfer 1 completed at slot 3
}
