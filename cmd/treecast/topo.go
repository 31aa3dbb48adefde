package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/treecast/treecast/tree"
)

// topoFlags are the flags shared by the commands that work on a topology: tree, plan, sim.
type topoFlags struct {
	topo   string
	src    string
	dst    string
	seed   uint64
	weight string
}

func (f *topoFlags) register(c *cobra.Command, withTargets bool) {
	c.Flags().StringVar(&f.topo, "topo", "fattree:4",
		"topology: fattree:K, leafspine:S,L,H, twotier:R,H, bcube:N,K, gscale, random:N,E,SEED, ringchords:N,E,SEED, zoo:NAME, or a .graphml / edge-list file")
	c.Flags().Uint64Var(&f.seed, "seed", 1, "seed for random receiver sets and random choices")
	if withTargets {
		c.Flags().StringVar(&f.src, "src", "", "source node (default: the first host, or the first node of a WAN)")
		c.Flags().StringVar(&f.dst, "dst", "hosts", "receivers: node names separated by commas, 'hosts' (every host but the source), or 'random:N'")
	}
}

// load builds the topology and resolves the source and receivers.
func (f *topoFlags) load() (*tree.Graph, tree.NodeID, []tree.NodeID, error) {
	g, err := tree.ParseSpec(f.topo)
	if err != nil {
		return nil, tree.None, nil, usageErr(err)
	}
	src := g.Endpoints()[0]
	if f.src != "" {
		if src, err = g.NodeByName(f.src); err != nil {
			return nil, tree.None, nil, usageErr(err)
		}
	}
	dsts, err := tree.ParseTargets(g, src, f.dst, f.seed)
	if err != nil {
		return nil, tree.None, nil, usageErr(err)
	}
	if len(dsts) == 0 {
		return nil, tree.None, nil, usageErr(fmt.Errorf("no receivers in %q", f.dst))
	}
	return g, src, dsts, nil
}

// weightFor returns the arc weight named by --weight.
func weightFor(g *tree.Graph, name string) (tree.Weight, error) {
	switch name {
	case "hop", "hops":
		return tree.Hops, nil
	case "latency":
		return g.LatencyWeight(), nil
	case "invcap":
		return g.InvCapWeight(), nil
	}
	return nil, usageErr(fmt.Errorf("unknown weight %q (want hop, latency or invcap)", name))
}

// usageErr marks an error in the command's arguments: exit code 2.
func usageErr(err error) error { return &exitError{code: 2, err: err} }

// names returns the names of nodes.
func names(g *tree.Graph, vs []tree.NodeID) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = g.NodeName(v)
	}
	return out
}
