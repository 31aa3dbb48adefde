package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/identity"
	"github.com/treecast/treecast/node/nodetest"
)

// dashboardQuery is one PromQL expression of the Grafana dashboard and where it is.
type dashboardQuery struct {
	where  string // panel title or variable name
	expr   string
	legend string
}

// dashboardQueries returns every PromQL expression of deploy/grafana-dashboard.json: the
// panels' targets (rows' nested panels too) and the query variables.
func dashboardQueries(t *testing.T) []dashboardQuery {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("deploy", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
	}
	type panel struct {
		Title   string   `json:"title"`
		Type    string   `json:"type"`
		Targets []target `json:"targets"`
		Panels  []panel  `json:"panels"`
	}
	var d struct {
		Title      string  `json:"title"`
		UID        string  `json:"uid"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("the dashboard has no title or uid")
	}
	var qs []dashboardQuery
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				qs = append(qs, dashboardQuery{where: "panel " + p.Title, expr: tg.Expr, legend: tg.LegendFormat})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		var s string
		if json.Unmarshal(v.Query, &s) == nil {
			q.Query = s
		} else if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("variable %s: query %s: %v", v.Name, v.Query, err)
		}
		qs = append(qs, dashboardQuery{where: "variable " + v.Name, expr: q.Query})
	}
	return qs
}

var (
	reGrafanaVar  = regexp.MustCompile(`\$\{[^}]*\}|\$\w+`)
	reString      = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	reMatchers    = regexp.MustCompile(`\{([^}]*)\}`)
	reMatcherName = regexp.MustCompile(`([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)`)
	reRange       = regexp.MustCompile(`\[[^\]]*\]`)
	reGrouping    = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	reIdent       = regexp.MustCompile(`[a-zA-Z_:][\w:]*`)
	reLabelValues = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][\w:]*)\s*(?:\{[^}]*\})?\s*,\s*(\w+)\s*\)$`)
	reLegend      = regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`)
)

// promqlNames returns the metric names and the label names a PromQL expression uses (in
// matchers and in by/without/on/ignoring/group_* clauses). Function and aggregation names
// (identifiers followed by '(') and keywords are not metrics. Grafana's label_values(metric,
// label) is understood too.
func promqlNames(expr string) (metrics, labels []string) {
	e := strings.TrimSpace(expr)
	if m := reLabelValues.FindStringSubmatch(e); m != nil {
		return []string{m[1]}, []string{m[2]}
	}
	e = reGrafanaVar.ReplaceAllString(e, "x")
	e = reString.ReplaceAllString(e, `""`)
	for _, m := range reMatchers.FindAllStringSubmatch(e, -1) {
		for _, n := range reMatcherName.FindAllStringSubmatch(m[1], -1) {
			labels = append(labels, n[1])
		}
	}
	e = reMatchers.ReplaceAllString(e, " ")
	e = reRange.ReplaceAllString(e, " ")
	for _, m := range reGrouping.FindAllStringSubmatch(e, -1) {
		for _, l := range strings.Split(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				labels = append(labels, l)
			}
		}
	}
	e = reGrouping.ReplaceAllString(e, " ")
	keywords := map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true}
	for _, loc := range reIdent.FindAllStringIndex(e, -1) {
		id := e[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsAny(e[loc[0]-1:loc[0]], "0123456789.") {
			continue // inside a number such as 1e3
		}
		if strings.HasPrefix(strings.TrimSpace(e[loc[1]:]), "(") || keywords[strings.ToLower(id)] {
			continue // a function or aggregation, or a keyword
		}
		metrics = append(metrics, id)
	}
	return metrics, labels
}

func TestPromqlNames(t *testing.T) {
	cases := []struct {
		expr            string
		metrics, labels []string
	}{
		{`histogram_quantile(0.99, sum by (le, role) (rate(treecast_transfer_seconds_bucket{instance=~"$instance"}[$__rate_interval])))`,
			[]string{"treecast_transfer_seconds_bucket"}, []string{"instance", "le", "role"}},
		{`sum(rate(a_total{x="by (y)"}[5m])) / on (job) group_left(kind) b > bool 0.5`, []string{"a_total", "b"}, []string{"job", "kind", "x"}},
		{`label_values(treecast_bytes_in_total, instance)`, []string{"treecast_bytes_in_total"}, []string{"instance"}},
		{`max without(instance)(up offset 5m) or vector(1e3)`, []string{"up"}, []string{"instance"}},
	}
	for _, c := range cases {
		m, l := promqlNames(c.expr)
		slices.Sort(m)
		slices.Sort(l)
		if !slices.Equal(m, c.metrics) || !slices.Equal(l, c.labels) {
			t.Errorf("%s: metrics %v labels %v, want %v %v", c.expr, m, l, c.metrics, c.labels)
		}
	}
}

// scrapeMetrics fetches the agent's /metrics (over mutual TLS with client) and parses the
// text exposition format.
func scrapeMetrics(t *testing.T, client *http.Client, a *node.Agent) map[string]*dto.MetricFamily {
	t.Helper()
	addr := strings.TrimSuffix(a.EventsURL(), "/events")
	resp, err := client.Get(addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s/metrics: %s: %.300s", addr, resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("%s/metrics: %v", addr, err)
	}
	return mfs
}

// exportedMetrics runs real agents through what the dashboard shows (a push, a push with a
// killed receiver, a channel catch-up) and returns, over the scrapes of their /metrics,
// every metric family name with the label names of its series.
func exportedMetrics(t *testing.T) map[string]map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := nodetest.StartCluster(t, 3, nodetest.Options{
		Configure: func(_ int, cfg *node.Config) {
			cfg.MetricsAddr = "127.0.0.1:0"
			cfg.StallTimeout = 2 * time.Second
		},
		Channels: func(i int) []string {
			if i == 1 {
				return []string{"web"}
			}
			return nil
		},
	})
	src := c.Agents[0]
	data := bytes.Repeat([]byte("treecast dashboard "), 20000)
	path, err := c.WriteFile(0, "obj", data)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := src.Push(ctx, node.Object{Path: path}, "a01,a02", node.PushOptions{}); err != nil {
		t.Fatalf("push: %v %+v", err, rep)
	}
	// A channel version, and an agent subscribed to the channel that starts after it was
	// published: it catches up.
	if _, err := src.Publish(ctx, "web", node.Object{Path: path}, node.PushOptions{}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	cfg := node.DefaultConfig("late", filepath.Join(t.TempDir(), "late"))
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.MetricsAddr = "127.0.0.1:0"
	cfg.Channels = []string{"web"}
	cfg.Join = []string{src.GossipAddr()}
	if err := c.Secure(&cfg); err != nil {
		t.Fatal(err)
	}
	late, err := node.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = late.Close() })
	if err := c.WaitFor(ctx, "the late subscriber's catch-up", func() bool { return late.Metric("treecast_catchups_total") > 0 }); err != nil {
		t.Fatal(err)
	}
	// A receiver killed just before a push: the stream to it fails (the push then waits for
	// gossip to declare it gone; the test does not wait for that).
	path2, err := c.WriteFile(0, "obj2", data[:len(data)/2])
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Agents[2].Kill(); err != nil {
		t.Fatal(err)
	}
	pushCtx, cancelPush := context.WithCancel(ctx)
	pushed := make(chan error, 1)
	go func() {
		_, err := src.Push(pushCtx, node.Object{Path: path2}, "a01,a02", node.PushOptions{})
		pushed <- err
	}()
	err = c.WaitFor(ctx, "a child stream error", func() bool {
		return src.Metric("treecast_errors_total")+c.Agents[1].Metric("treecast_errors_total") > 0
	})
	cancelPush()
	<-pushed
	if err != nil {
		t.Fatal(err)
	}

	// Prometheus scrapes with a certificate of the cluster's CA.
	id, err := c.Identity("prometheus", identity.RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	scraper := &http.Client{Transport: &http.Transport{TLSClientConfig: id.ClientConfig("")}}
	names := map[string]map[string]bool{}
	for _, a := range []*node.Agent{src, c.Agents[1], late} {
		for name, mf := range scrapeMetrics(t, scraper, a) {
			if names[name] == nil {
				names[name] = map[string]bool{}
			}
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					names[name][lp.GetName()] = true
				}
			}
		}
	}
	return names
}

// TestDashboardMetricsExist checks deploy/grafana-dashboard.json against real agents: every
// metric a query names (less a _bucket, _sum or _count suffix) is exported by an agent, every
// label it groups or matches by is a label of those metrics (or a target label Prometheus
// adds), and every treecast metric the agents export is on the dashboard.
func TestDashboardMetricsExist(t *testing.T) {
	qs := dashboardQueries(t)
	if len(qs) < 10 {
		t.Fatalf("%d queries in the dashboard, want a dashboard", len(qs))
	}
	exported := exportedMetrics(t)
	targetLabels := map[string]bool{"instance": true, "job": true, "node": true}
	used := map[string]bool{}
	for _, q := range qs {
		metrics, labels := promqlNames(q.expr)
		if len(metrics) == 0 {
			t.Errorf("%s: %q names no metric", q.where, q.expr)
		}
		have := map[string]bool{}
		for l := range targetLabels {
			have[l] = true
		}
		for _, m := range metrics {
			base := m
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(m, suf); ok && exported[b] != nil {
					base = b
					if suf == "_bucket" {
						have["le"] = true
					}
				}
			}
			ls, ok := exported[base]
			if !ok {
				t.Errorf("%s: metric %s is not exported by the agent (query %s)", q.where, m, q.expr)
				continue
			}
			used[base] = true
			for l := range ls {
				have[l] = true
			}
		}
		for _, l := range labels {
			if !have[l] {
				t.Errorf("%s: label %q is on none of %v (query %s)", q.where, l, metrics, q.expr)
			}
		}
		for _, m := range reLegend.FindAllStringSubmatch(q.legend, -1) {
			if !have[m[1]] {
				t.Errorf("%s: legend %q names label %q, on none of %v", q.where, q.legend, m[1], metrics)
			}
		}
	}
	var missing []string
	for name := range exported {
		if strings.HasPrefix(name, "treecast_") && !used[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("treecast metrics the agent exports but the dashboard does not show: %v", missing)
	}
	var treecast []string
	for name := range used {
		treecast = append(treecast, name)
	}
	sort.Strings(treecast)
	t.Logf("%d queries over %d exported metrics: %s", len(qs), len(used), fmt.Sprint(treecast))
}
