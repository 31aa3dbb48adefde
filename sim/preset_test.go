package sim

import (
	"errors"
	"testing"

	"github.com/treecast/treecast/tree"
)

// Every preset parses (topology, schemes, volume, ranges, workload on its topology), and the
// paper presets carry the papers' settings.
func TestPresets(t *testing.T) {
	for _, p := range Presets() {
		t.Run(p.Name, func(t *testing.T) {
			x, err := p.Experiment()
			if err != nil {
				t.Fatal(err)
			}
			if x.Graph.Name() != p.Topology || len(x.Schemes) < 2 || x.Workload.Volume.String() != p.Volume || x.Seeds != (Range{1, 5}) {
				t.Fatalf("experiment %+v", x)
			}
			if len(p.Args()) != 16 || p.Paper == "" || p.Figure == "" {
				t.Fatalf("args %v, paper %q, figure %q", p.Args(), p.Paper, p.Figure)
			}
		})
	}
	q, err := LookupPreset("quickcast-fig8")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := ParseVolume(q.Volume)
	// QuickCast: 10 receivers, lambda 1, heavy-tailed sizes capped at 2,000, GScale.
	if q.Topology != "gscale" || q.Copies != "10" || q.Lambda != 1 || len(v.terms) != 1 || v.terms[0].kind != "pareto" || v.terms[0].cap != 2000 {
		t.Errorf("quickcast-fig8 = %+v", q)
	}
	d, _ := LookupPreset("dccast")
	if d.Topology != "gscale" || d.Copies != "1-6" || d.Volume != "10+exp:20" || d.Lambda != 1 || d.Horizon != 500 {
		t.Errorf("dccast = %+v", d)
	}
	r, _ := LookupPreset("dccast-random")
	if g, _ := tree.ParseSpec(r.Topology); g.NumNodes() != 50 || g.NumLinks() != 150 {
		t.Errorf("dccast-random topology %s", r.Topology)
	}
	if _, err := LookupPreset("infocom"); !errors.Is(err, ErrBadWorkload) {
		t.Errorf("unknown preset: %v", err)
	}
}
