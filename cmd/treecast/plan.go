package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/treecast/treecast/scheduler"
	"github.com/treecast/treecast/tree"
)

func init() { commands = append(commands, newPlanCmd) }

type planOutput struct {
	Strategy    string     `json:"strategy"`
	Topology    string     `json:"topology"`
	Src         string     `json:"src"`
	Receivers   int        `json:"receivers"`
	DataStripes int        `json:"data_stripes"`
	Parity      int        `json:"parity"`
	Trees       []planTree `json:"trees"`
	Depth       int        `json:"depth"`
	Copies      planCopies `json:"copies"`
	LowerBound  float64    `json:"lower_bound"`
	WireBytes   int        `json:"wire_bytes"`
	ElapsedMS   float64    `json:"elapsed_ms"`
	// Plan is the plan's summary, as push --json and demo --json carry it.
	Plan scheduler.Summary `json:"plan"`
	plan *scheduler.Plan
}

type planTree struct {
	Stripe int         `json:"stripe"`
	Parity bool        `json:"parity,omitempty"`
	Edges  [][2]string `json:"edges"`
}

type planCopies struct {
	Max       float64 `json:"max"`
	MaxSwitch float64 `json:"max_switch"`
	MaxHost   float64 `json:"max_host"`
	Total     float64 `json:"total"`
}

func newPlanCmd() *cobra.Command {
	var (
		tf     topoFlags
		opts   scheduler.Options
		strat  string
		format string
		size   string
	)
	c := &cobra.Command{
		Use:   "plan",
		Short: "Compute an overlay plan: how the agents forward an object to one another",
		Long: `Compute the overlay plan the agents would run for a push from a source to receivers, and
account for the copies it puts on every arc of the topology: max over all arcs, over
switch-to-switch arcs, over host arcs, and the total, next to the lower bound (the arcs of a
minimum Steiner tree).`,
		Example: `  treecast plan --topo fattree:32 --dst hosts
  treecast plan --topo twotier:8,8 --size 32MiB
  treecast plan --topo fattree:8 --dst hosts --strategy tree
  treecast plan --topo leafspine:4,8,16 --dst random:40 --strategy forest --stripes 4 --format json
  treecast plan --topo gscale --src s0 --dst s5,s9,s11 --strategy chain --format dot
  treecast plan --topo twotier:4,6 --strategy forest --stripes 3 --format svg > plan.svg`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			st, err := scheduler.ParseStrategy(strat)
			if err != nil {
				return usageErr(err)
			}
			opts.Strategy = st
			if size != "" {
				n, err := parseSize(size)
				if err != nil {
					return usageErr(fmt.Errorf("--size: %w", err))
				}
				opts.ObjectSize = n
			}
			if !slices.Contains([]string{"text", "json", "dot", "svg"}, format) {
				return usageErr(fmt.Errorf("unknown format %q (want text, json, dot or svg)", format))
			}
			g, src, dsts, err := tf.load()
			if err != nil {
				return err
			}
			start := time.Now()
			p, err := scheduler.Build(g, src, dsts, opts)
			if err != nil {
				if errors.Is(err, scheduler.ErrBadOptions) {
					return usageErr(err)
				}
				return err
			}
			elapsed := time.Since(start)
			out, err := describePlan(p, elapsed)
			if err != nil {
				return err
			}
			switch format {
			case "json":
				return json.NewEncoder(c.OutOrStdout()).Encode(out)
			case "dot":
				return writePlanDot(c.OutOrStdout(), p)
			case "svg":
				return writePlanSVG(c.OutOrStdout(), p)
			}
			writePlanText(c.OutOrStdout(), out)
			return nil
		},
	}
	tf.register(c, true)
	c.Flags().StringVar(&strat, "strategy", "auto", "auto (the plan predicted fastest), chain, tree, forest or unicast")
	c.Flags().StringVar(&size, "size", "", "object size for auto's choice and the chunk size, e.g. 50MiB (default: 1GiB)")
	c.Flags().IntVar(&opts.Fanout, "fanout", 0, "children per node per tree (0: 4 for tree, the number of trees for forest)")
	c.Flags().IntVar(&opts.Stripes, "stripes", 0, "data stripes of a forest (0: 4)")
	c.Flags().IntVar(&opts.Parity, "parity", 0, "parity trees of a forest (Reed-Solomon)")
	c.Flags().StringVar(&format, "format", "text", "output: text, json, dot, or svg (the plan drawn over its topology)")
	return c
}

func describePlan(p *scheduler.Plan, elapsed time.Duration) (*planOutput, error) {
	g := p.Graph
	wire, err := p.Wire().MarshalBinary()
	if err != nil {
		return nil, err
	}
	lb, err := p.LowerBound()
	if err != nil {
		return nil, err
	}
	c := p.Copies()
	out := &planOutput{
		Strategy: string(p.Strategy), Topology: g.Name(), Src: g.NodeName(p.Source), Receivers: len(p.Receivers),
		DataStripes: p.DataStripes, Parity: p.Parity, Depth: p.Depth(), LowerBound: lb, WireBytes: len(wire),
		Copies:    planCopies{Max: c.Max, MaxSwitch: c.MaxSwitch, MaxHost: c.MaxHost, Total: c.Total},
		ElapsedMS: float64(elapsed.Microseconds()) / 1000, Plan: p.Summary(), plan: p,
	}
	for s, st := range p.Stripes {
		pt := planTree{Stripe: s, Parity: s >= p.DataStripes, Edges: make([][2]string, len(st.Edges))}
		for i, e := range st.Edges {
			pt.Edges[i] = [2]string{g.NodeName(e.From), g.NodeName(e.To)}
		}
		out.Trees = append(out.Trees, pt)
	}
	return out, nil
}

func writePlanText(w io.Writer, out *planOutput) {
	p := out.plan
	g := p.Graph
	fmt.Fprintf(w, "%s plan on %s from %s to %d receivers (%.3f ms)\n", out.Strategy, out.Topology, out.Src, out.Receivers, out.ElapsedMS)
	fmt.Fprintf(w, "plan: %s\n", out.Plan)
	if out.Parity > 0 {
		fmt.Fprintf(w, "%d data trees + %d parity trees (bandwidth x%.2f)\n", out.DataStripes, out.Parity, float64(out.DataStripes+out.Parity)/float64(out.DataStripes))
	} else if len(p.Stripes) > 1 {
		fmt.Fprintf(w, "%d stripes\n", len(p.Stripes))
	}
	fmt.Fprintf(w, "depth %d, plan header %d bytes\n", out.Depth, out.WireBytes)
	fmt.Fprintf(w, "copies per arc: max %.2f, switch-to-switch %.2f, host %.2f; total %.2f (lower bound %.0f, ratio %.2f)\n",
		out.Copies.Max, out.Copies.MaxSwitch, out.Copies.MaxHost, out.Copies.Total, out.LowerBound, out.Copies.Total/out.LowerBound)
	for s := range p.Stripes {
		kind := "stripe"
		if s >= p.DataStripes {
			kind = "parity tree"
		}
		fmt.Fprintf(w, "\n%s %d:\n", kind, s)
		if len(p.Stripes[s].Edges) > maxTextArcs {
			fmt.Fprintf(w, "  (%d edges: use --format json or dot)\n", len(p.Stripes[s].Edges))
			continue
		}
		var draw func(v tree.NodeID, indent string)
		draw = func(v tree.NodeID, indent string) {
			fmt.Fprintf(w, "  %s%s\n", indent, g.NodeName(v))
			for _, k := range p.Children(v, s) {
				draw(k, indent+"  ")
			}
		}
		draw(p.Source, "")
	}
}

func writePlanDot(w io.Writer, p *scheduler.Plan) error {
	g := p.Graph
	colors := []string{"black", "red", "blue", "darkgreen", "orange", "purple", "brown", "cyan"}
	var b strings.Builder
	b.WriteString("digraph plan {\n  node [shape=box, fontsize=10];\n")
	fmt.Fprintf(&b, "  %q [style=filled, fillcolor=gold];\n", g.NodeName(p.Source))
	for s, st := range p.Stripes {
		for _, e := range st.Edges {
			fmt.Fprintf(&b, "  %q -> %q [color=%s, label=\"%d\"];\n", g.NodeName(e.From), g.NodeName(e.To), colors[s%len(colors)], s)
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}
