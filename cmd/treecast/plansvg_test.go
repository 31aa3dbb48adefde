package main

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

// svgElems decodes an SVG document and returns its elements by name (the document must be
// well-formed XML).
func svgElems(t *testing.T, doc string) map[string][]xml.StartElement {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(doc))
	out := map[string][]xml.StartElement{}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("not well-formed SVG: %v\n%.500s", err, doc)
		}
		if se, ok := tok.(xml.StartElement); ok {
			out[se.Name.Local] = append(out[se.Name.Local], se)
		}
	}
}

func attr(se xml.StartElement, name string) string {
	for _, a := range se.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// TestPlanSVG draws plans and checks the drawing against the plan's JSON: one arrow per
// overlay edge in its stripe's colour, every node of the topology, the links that carry
// copies drawn dark and those above one copy red.
func TestPlanSVG(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		nodes      int // drawn nodes (rect + circle)
		wantRed    bool
		wantStripe int
	}{
		{[]string{"--topo", "fattree:4", "--dst", "hosts", "--strategy", "forest", "--stripes", "2"}, 36, true, 2},
		{[]string{"--topo", "fattree:4", "--dst", "hosts", "--strategy", "chain"}, 36, false, 1},
		{[]string{"--topo", "gscale", "--src", "s0", "--dst", "s5,s9,s11", "--strategy", "chain"}, 12, false, 1},
	} {
		svg, _, err := run(t, append([]string{"plan", "--format", "svg"}, tc.args...)...)
		if err != nil {
			t.Fatal(err)
		}
		js, _, err := run(t, append([]string{"plan", "--format", "json"}, tc.args...)...)
		if err != nil {
			t.Fatal(err)
		}
		var want planOutput
		if err := json.Unmarshal([]byte(js), &want); err != nil {
			t.Fatal(err)
		}
		el := svgElems(t, svg)
		if len(el["svg"]) != 1 || !strings.HasPrefix(svg, "<svg") {
			t.Fatalf("%v: not one svg document", tc.args)
		}
		if n := len(el["rect"]) - 1 + len(el["circle"]); n != tc.nodes { // one rect is the background
			t.Errorf("%v: %d nodes drawn, want %d", tc.args, n, tc.nodes)
		}
		perColor := map[string]int{}
		for _, p := range el["path"] {
			if strings.HasPrefix(attr(p, "marker-end"), "url(#arrow") {
				perColor[attr(p, "stroke")]++
			}
		}
		if len(perColor) != tc.wantStripe || len(want.Trees) != tc.wantStripe {
			t.Errorf("%v: arrows in %d colours, %d trees; want %d", tc.args, len(perColor), len(want.Trees), tc.wantStripe)
		}
		for _, tr := range want.Trees {
			if got := perColor[stripeColors[tr.Stripe%len(stripeColors)]]; got != len(tr.Edges) {
				t.Errorf("%v: stripe %d: %d arrows, %d edges", tc.args, tr.Stripe, got, len(tr.Edges))
			}
		}
		red, dark := 0, 0
		for _, l := range el["line"] {
			switch attr(l, "stroke") {
			case "#c62828":
				red++
			case "#555":
				dark++
			}
		}
		if (red > 0) != tc.wantRed || (want.Copies.Max > 1.001) != tc.wantRed || red+dark == 0 {
			t.Errorf("%v: %d red and %d dark links; max copies %.2f", tc.args, red, dark, want.Copies.Max)
		}
	}
	if _, _, err := run(t, "plan", "--topo", "fattree:4", "--format", "png"); err == nil || exitCode(err) != 2 {
		t.Errorf("unknown format: %v", err)
	}
}
