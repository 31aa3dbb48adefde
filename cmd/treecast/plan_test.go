package main

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestPlanJSON(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		trees     int
		maxSwitch float64
		maxHost   float64
	}{
		{[]string{"--strategy", "chain"}, 1, 1, 1},
		{[]string{"--strategy", "tree"}, 1, 1, 99},
		{[]string{"--strategy", "forest", "--stripes", "4"}, 4, 99, 1.25},
		{[]string{"--strategy", "forest", "--stripes", "2", "--parity", "1"}, 3, 99, 99},
		{[]string{"--strategy", "unicast"}, 1, 99, 99},
	} {
		out, _, err := run(t, append([]string{"plan", "--topo", "fattree:4", "--dst", "hosts", "--format", "json"}, tc.args...)...)
		if err != nil {
			t.Fatal(err)
		}
		var res planOutput
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("bad JSON: %v\n%s", err, out)
		}
		if len(res.Trees) != tc.trees || res.Receivers != 15 || res.Src != "h0" {
			t.Fatalf("%v: %d trees, %d receivers, src %s", tc.args, len(res.Trees), res.Receivers, res.Src)
		}
		for _, tr := range res.Trees {
			if len(tr.Edges) != 15 {
				t.Fatalf("%v: stripe %d has %d edges, want one per receiver", tc.args, tr.Stripe, len(tr.Edges))
			}
		}
		if res.Copies.MaxSwitch > tc.maxSwitch || res.Copies.MaxHost > tc.maxHost || res.Copies.Total < res.LowerBound {
			t.Errorf("%v: copies %+v, lower bound %v", tc.args, res.Copies, res.LowerBound)
		}
	}
}

func TestPlanTextDotAndErrors(t *testing.T) {
	out, _, err := run(t, "plan", "--topo", "gscale", "--src", "s0", "--dst", "s5,s9,s11", "--strategy", "chain")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "chain plan on gscale from s0 to 3 receivers") || !strings.Contains(out, "copies per arc: max 1.00") {
		t.Errorf("text output:\n%s", out)
	}
	out, _, err = run(t, "plan", "--topo", "fattree:4", "--dst", "random:5", "--strategy", "forest", "--format", "dot")
	if err != nil || !strings.HasPrefix(out, "digraph plan {") {
		t.Errorf("dot output %v:\n%s", err, out)
	}
	for _, args := range [][]string{
		{"--strategy", "star"}, {"--dst", "nosuch"}, {"--topo", "fattree:5"},
		{"--strategy", "chain", "--stripes", "3"}, {"--format", "yaml"},
	} {
		_, _, err := run(t, append([]string{"plan"}, args...)...)
		if exitCode(err) != 2 {
			t.Errorf("%v: exit %d (%v), want 2", args, exitCode(err), err)
		}
	}
}

// TestPlanDefault: the default strategy is auto; the plan's one-line summary and its JSON
// (max_arc_copies) match the copies accounted per arc.
func TestPlanDefault(t *testing.T) {
	for _, topo := range []string{"fattree:8", "twotier:4,4", "leafspine:4,6,8"} {
		out, _, err := run(t, "plan", "--topo", topo, "--dst", "hosts", "--size", "50MiB", "--format", "json")
		if err != nil {
			t.Fatal(err)
		}
		var res planOutput
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("bad JSON: %v\n%s", err, out)
		}
		if !res.Plan.Auto || res.Plan.Strategy != "forest" || res.Strategy != "forest" {
			t.Errorf("%s: default plan %+v", topo, res.Plan)
		}
		if res.Plan.MaxArcCopies > 1.25 || res.Copies.Max > 1.25 || math.Abs(res.Plan.MaxArcCopies-res.Copies.Max) > 1e-3 {
			t.Errorf("%s: max_arc_copies %v, copies %+v", topo, res.Plan.MaxArcCopies, res.Copies)
		}
		if res.Plan.Depth != res.Depth || res.Plan.Stripes != res.DataStripes || res.Plan.ChunkSize < 64<<10 {
			t.Errorf("%s: summary %+v against depth %d, %d stripes", topo, res.Plan, res.Depth, res.DataStripes)
		}
		if !strings.Contains(out, `"max_arc_copies":`) {
			t.Errorf("%s: no max_arc_copies in %s", topo, out)
		}
	}
	out, _, err := run(t, "plan", "--topo", "twotier:4,4")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "plan: auto: forest, ") || !strings.Contains(out, "copies per arc") {
		t.Errorf("text output:\n%s", out)
	}
	if _, _, err := run(t, "plan", "--size", "lots"); exitCode(err) != 2 {
		t.Errorf("--size lots: exit %d, want 2", exitCode(err))
	}
}
