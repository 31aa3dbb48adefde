package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/treecast/treecast/tree"
)

func init() { commands = append(commands, newTreeCmd) }

type treeOutput struct {
	Algo       string       `json:"algo"`
	Topology   string       `json:"topology"`
	Src        string       `json:"src"`
	Terminals  []string     `json:"terminals"`
	Trees      []treeResult `json:"trees"`
	SharedArcs int          `json:"shared_arcs"`
	ElapsedMS  float64      `json:"elapsed_ms"`
}

type treeResult struct {
	Edges [][2]string `json:"edges"`
	Cost  float64     `json:"cost"`
	Arcs  int         `json:"arcs"`
	Depth int         `json:"depth"`
}

func newTreeCmd() *cobra.Command {
	var (
		tf     topoFlags
		algo   string
		trees  int
		format string
	)
	c := &cobra.Command{
		Use:   "tree",
		Short: "Compute multicast trees from a source to receivers on a topology",
		Long: `Compute a multicast tree (or K trees with minimum overlap) rooted at a source and
spanning a set of receivers. Edges are oriented away from the source; elapsed_ms is the
algorithm's own time, topology building excluded.`,
		Example: `  treecast tree --topo fattree:8 --dst random:20
  treecast tree --topo gscale --src s0 --dst s5,s9,s11 --algo exact --format json
  treecast tree --topo zoo:cogentco --dst random:30 --trees 2 --format dot | dot -Tsvg > t.svg`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			a, err := tree.ParseAlgo(algo)
			if err != nil {
				return usageErr(err)
			}
			if trees < 1 {
				return usageErr(fmt.Errorf("--trees must be at least 1, got %d", trees))
			}
			switch format {
			case "text", "json", "dot":
			default:
				return usageErr(fmt.Errorf("unknown format %q (want text, json or dot)", format))
			}
			g, src, dsts, err := tf.load()
			if err != nil {
				return err
			}
			w, err := weightFor(g, tf.weight)
			if err != nil {
				return err
			}
			start := time.Now()
			var forest *tree.Forest
			if trees == 1 {
				t, err := tree.Compute(g, a, src, dsts, w)
				if err != nil {
					return err
				}
				forest = &tree.Forest{Trees: []*tree.Tree{t}}
			} else if forest, err = tree.MultiTree(g, a, src, dsts, trees, w); err != nil {
				return err
			}
			elapsed := time.Since(start)
			out := treeOutput{
				Algo: string(a), Topology: g.Name(), Src: g.NodeName(src), Terminals: names(g, dsts),
				SharedArcs: forest.SharedArcs, ElapsedMS: float64(elapsed.Microseconds()) / 1000,
			}
			for _, t := range forest.Trees {
				r := treeResult{Cost: t.Cost, Arcs: len(t.Arcs), Depth: t.Depth(g), Edges: make([][2]string, len(t.Arcs))}
				for i, a := range t.Arcs {
					arc := g.Arc(a)
					r.Edges[i] = [2]string{g.NodeName(arc.From), g.NodeName(arc.To)}
				}
				out.Trees = append(out.Trees, r)
			}
			switch format {
			case "json":
				enc := json.NewEncoder(c.OutOrStdout())
				return enc.Encode(out)
			case "dot":
				return writeTreeDot(c.OutOrStdout(), g, src, dsts, forest)
			}
			writeTreeText(c.OutOrStdout(), g, &out, forest)
			return nil
		},
	}
	tf.register(c, true)
	c.Flags().StringVar(&algo, "algo", "steiner", "algorithm: spt, steiner, tm or exact")
	c.Flags().IntVar(&trees, "trees", 1, "number of trees with minimum overlap (Datacast)")
	c.Flags().StringVar(&tf.weight, "weight", "hop", "arc weight: hop, latency or invcap")
	c.Flags().StringVar(&format, "format", "text", "output: text, json or dot")
	return c
}

// maxTextArcs bounds the drawn tree in text output; larger trees get a summary only.
const maxTextArcs = 300

func writeTreeText(w io.Writer, g *tree.Graph, out *treeOutput, forest *tree.Forest) {
	fmt.Fprintf(w, "topology %s: %d nodes, %d links\n", out.Topology, g.NumNodes(), g.NumLinks())
	fmt.Fprintf(w, "algorithm %s from %s to %d receivers in %.3f ms\n", out.Algo, out.Src, len(out.Terminals), out.ElapsedMS)
	if len(forest.Trees) > 1 {
		fmt.Fprintf(w, "%d trees, %d arcs shared by more than one tree\n", len(forest.Trees), forest.SharedArcs)
	}
	for i, t := range forest.Trees {
		r := out.Trees[i]
		fmt.Fprintf(w, "\ntree %d: %d arcs, cost %g, depth %d\n", i, r.Arcs, r.Cost, r.Depth)
		if len(t.Arcs) > maxTextArcs {
			fmt.Fprintf(w, "  (%d arcs: use --format json or dot for the edges)\n", len(t.Arcs))
			continue
		}
		children := t.Children(g)
		var draw func(v tree.NodeID, prefix string, last bool, root bool)
		draw = func(v tree.NodeID, prefix string, last bool, root bool) {
			line, next := "", prefix
			if !root {
				if last {
					line, next = prefix+"└─ ", prefix+"   "
				} else {
					line, next = prefix+"├─ ", prefix+"│  "
				}
			}
			fmt.Fprintf(w, "  %s%s (%s)\n", line, g.NodeName(v), g.Node(v).Kind)
			kids := children[v]
			for j, k := range kids {
				draw(k, next, j == len(kids)-1, false)
			}
		}
		draw(t.Root, "", true, true)
	}
}

func writeTreeDot(w io.Writer, g *tree.Graph, src tree.NodeID, dsts []tree.NodeID, forest *tree.Forest) error {
	colors := []string{"black", "red", "blue", "darkgreen", "orange", "purple", "brown", "cyan"}
	var b strings.Builder
	b.WriteString("digraph treecast {\n  rankdir=TB;\n  node [shape=ellipse, fontsize=10];\n")
	fmt.Fprintf(&b, "  %q [shape=doublecircle, style=filled, fillcolor=gold];\n", g.NodeName(src))
	for _, d := range dsts {
		fmt.Fprintf(&b, "  %q [style=filled, fillcolor=lightblue];\n", g.NodeName(d))
	}
	for i, t := range forest.Trees {
		for _, a := range t.Arcs {
			arc := g.Arc(a)
			fmt.Fprintf(&b, "  %q -> %q [color=%s];\n", g.NodeName(arc.From), g.NodeName(arc.To), colors[i%len(colors)])
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}
