package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSimJSON(t *testing.T) {
	out, _, err := run(t, "sim", "--topo", "fattree:4", "--schemes", "overlay:chain,overlay:unicast",
		"--copies", "2-6", "--horizon", "10", "--seeds", "1-2", "--format", "json", "--progress", "none")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if len(doc.Results) != 4 {
		t.Fatalf("%d results, want 2 schemes x 2 seeds", len(doc.Results))
	}
	for _, key := range []string{"scheme", "topology", "seed", "transfers", "total_bandwidth", "mean_tct", "p50_tct", "p99_tct", "max_tct", "wall_ms"} {
		if _, ok := doc.Results[0][key]; !ok {
			t.Errorf("result lacks %q", key)
		}
	}
	r := doc.Results[0]
	if r["scheme"] != "overlay:chain" || r["topology"] != "fattree:4" || r["seed"] != 1.0 || r["transfers"].(float64) < 1 {
		t.Fatalf("first result %v", r)
	}
	// Unicast sends a copy per receiver from the source: more bandwidth than the chain.
	if doc.Results[1]["total_bandwidth"].(float64) <= r["total_bandwidth"].(float64) {
		t.Errorf("unicast bandwidth %v not above chain %v", doc.Results[1]["total_bandwidth"], r["total_bandwidth"])
	}
}

func TestSimTableCSVAndPlot(t *testing.T) {
	dir := t.TempDir()
	plotFile := filepath.Join(dir, "tct.png")
	out, stderr, err := run(t, "sim", "--topo", "fattree:4", "--schemes", "overlay:tree,overlay:forest",
		"--copies", "3", "--horizon", "5", "--seeds", "3-4", "--plot", plotFile, "--progress", "lines")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 3 || !strings.Contains(lines[0], "mean TCT") || !strings.Contains(lines[1], "overlay:tree") ||
		!strings.Contains(lines[2], "overlay:forest") || !strings.Contains(lines[1], "1.000") {
		t.Fatalf("table:\n%s", out)
	}
	if strings.Count(stderr, "sim: overlay:") != 4 {
		t.Errorf("progress lines:\n%s", stderr)
	}
	f, err := os.Open(plotFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("plot is not a PNG: %v", err)
	}

	out, _, err = run(t, "sim", "--topo", "fattree:4", "--schemes", "overlay:chain", "--copies", "3",
		"--horizon", "5", "--format", "csv", "--progress", "none")
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if len(rows) != 2 || !strings.HasPrefix(rows[0], "scheme,topology,seed") || !strings.HasPrefix(rows[1], "overlay:chain,fattree:4,1,") {
		t.Fatalf("csv:\n%s", out)
	}
}

func TestSimTrace(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "trace.csv")
	if err := os.WriteFile(trace, []byte("arrival,source,receivers,volume\n0,h0,h1;h5,4\n2,h3,h15,2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "sim", "--topo", "fattree:4", "--schemes", "overlay:chain", "--trace", trace,
		"--format", "json", "--progress", "none")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"transfers": 2`) {
		t.Fatalf("output %s", out)
	}
	if err := os.WriteFile(trace, []byte("0,h0,h1;h99,4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = run(t, "sim", "--topo", "fattree:4", "--schemes", "overlay:chain", "--trace", trace)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), `line 1: field receivers: unknown node "h99"`) {
		t.Fatalf("bad trace: %v", err)
	}
}

func TestSimBadFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--schemes", "dijkstra"}, `"dijkstra"`},
		{[]string{"--rate", "lifo"}, `"lifo"`},
		{[]string{"--volume", "exp:-1"}, "exponential mean"},
		{[]string{"--copies", "5-2"}, "5 > 2"},
		{[]string{"--copies", "1-12"}, "only 11 endpoints"},
		{[]string{"--seeds", "x"}, "--seeds"},
		{[]string{"--format", "xml"}, `"xml"`},
		{[]string{"--plot", "out.pdf"}, "out.pdf"},
		{[]string{"--topo", "fattree:3"}, "fattree:3"},
		{[]string{"--lambda", "0"}, "lambda"},
		{[]string{"--progress", "loud"}, `"loud"`},
	} {
		_, _, err := run(t, append([]string{"sim", "--topo", "gscale"}, tt.args...)...)
		if exitCode(err) != 2 || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v (exit %d), want exit 2 mentioning %s", tt.args, err, exitCode(err), tt.want)
		}
	}
}

func TestSimNetworkSchemes(t *testing.T) {
	out, _, err := run(t, "sim", "--topo", "gscale", "--schemes", "dccast,p2p,quickcast@maxmin", "--horizon", "40",
		"--seeds", "1-2", "--format", "json", "--progress", "none")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Results []struct {
			Scheme         string  `json:"scheme"`
			Transfers      int     `json:"transfers"`
			Completed      int     `json:"completed"`
			TotalBandwidth float64 `json:"total_bandwidth"`
			MeanTCT        float64 `json:"mean_tct"`
			P99TCT         float64 `json:"p99_tct"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Results) != 6 {
		t.Fatalf("%d results", len(doc.Results))
	}
	for i := 0; i < 6; i += 3 {
		dc, p2p := doc.Results[i], doc.Results[i+1]
		if dc.Scheme != "dccast" || p2p.Scheme != "p2p" || dc.Completed != dc.Transfers || dc.Transfers < 20 {
			t.Fatalf("results %+v", doc.Results[i:i+3])
		}
		// Receivers sharing a tree's arcs save bandwidth over one path each (DCCast: 20-50%).
		if p2p.TotalBandwidth < dc.TotalBandwidth {
			t.Errorf("p2p bandwidth %v below dccast %v", p2p.TotalBandwidth, dc.TotalBandwidth)
		}
		if dc.MeanTCT < 10 || dc.P99TCT < dc.MeanTCT {
			t.Errorf("dccast TCT mean %v p99 %v", dc.MeanTCT, dc.P99TCT)
		}
	}
}

// A cancelled context (Ctrl-C) stops the run, prints the results so far and exits 130.
func TestSimInterrupted(t *testing.T) {
	root := newRoot()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs([]string{"sim", "--topo", "gscale", "--schemes", "dccast,p2p", "--seeds", "1-3", "--format", "json", "--progress", "none"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := root.ExecuteContext(ctx)
	if exitCode(err) != 130 || !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v (exit %d), want exit 130 wrapping context.Canceled", err, exitCode(err))
	}
	var doc struct {
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil || len(doc.Results) != 1 {
		t.Fatalf("partial results %v: %s", err, out.String())
	}
	if doc.Results[0]["completed"].(float64) >= doc.Results[0]["transfers"].(float64) {
		t.Fatalf("interrupted run completed everything: %v", doc.Results[0])
	}
	if !strings.Contains(errb.String(), "interrupted") {
		t.Errorf("stderr %q", errb.String())
	}
}

// Progress bars (what a terminal gets) draw to stderr and are finished before the command
// returns.
func TestSimProgressBars(t *testing.T) {
	out, stderr, err := run(t, "sim", "--topo", "gscale", "--schemes", "dccast,overlay:chain", "--horizon", "30",
		"--seeds", "1-2", "--progress", "bars")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "overlay:chain") || !strings.Contains(stderr, "dccast seed 2 (3/4)") || !strings.Contains(stderr, "transfers") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", out, stderr)
	}
}

// --preset sets the flags the user did not give and tells the command it stands for; the
// table and CSV carry per-receiver completion times.
func TestSimPreset(t *testing.T) {
	out, stderr, err := run(t, "sim", "--preset", "quickcast-fig8", "--schemes", "dccast,quickcast@maxmin", "--horizon", "20",
		"--seeds", "1", "--progress", "none")
	if err != nil {
		t.Fatal(err)
	}
	want := "= treecast sim --topo gscale --schemes dccast,quickcast@maxmin --rate fcfs --lambda 1 --copies 10 --volume pareto:"
	if !strings.Contains(stderr, want) || !strings.Contains(stderr, "--horizon 20 --seeds 1") {
		t.Fatalf("stderr %q, want %q", stderr, want)
	}
	if !strings.Contains(out, "mean RCT") || !strings.Contains(out, "quickcast@maxmin") {
		t.Fatalf("table:\n%s", out)
	}
	out, _, err = run(t, "sim", "--preset", "dccast", "--schemes", "dccast", "--horizon", "5", "--seeds", "1",
		"--format", "csv", "--progress", "none")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "mean_receiver_time,p50_receiver_time,p99_receiver_time") {
		t.Fatalf("csv:\n%s", out)
	}
	if _, _, err := run(t, "sim", "--preset", "nope"); exitCode(err) != 2 || !strings.Contains(err.Error(), "quickcast-fig8") {
		t.Fatalf("unknown preset: %v", err)
	}
}
