package node_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/identity"
	"github.com/treecast/treecast/node/nodetest"
)

// TestProfiling reads an agent's live profiles over its mutual-TLS HTTP address: an operator
// gets a heap profile and a one-second CPU profile; a monitor, which reads metrics, is
// refused; an agent without Config.Profiling serves no profile.
func TestProfiling(t *testing.T) {
	c := nodetest.StartCluster(t, 2, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		cfg.MetricsAddr = "127.0.0.1:0"
		cfg.Profiling = i == 0
	}})
	base := func(i int) string { return strings.TrimSuffix(c.Agents[i].EventsURL(), "/events") }
	get := func(cl *http.Client, url string) (int, string) {
		t.Helper()
		resp, err := cl.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	op := httpClient(t, c, "op", identity.RoleOperator)
	if code, body := get(op, base(0)+"/debug/pprof/heap?debug=1"); code != http.StatusOK || !strings.Contains(body, "heap profile") {
		t.Fatalf("operator, heap profile: %d %.200q", code, body)
	}
	// A CPU profile is a gzipped protocol buffer.
	if code, body := get(op, base(0)+"/debug/pprof/profile?seconds=1"); code != http.StatusOK || len(body) < 2 || body[0] != 0x1f || body[1] != 0x8b {
		t.Fatalf("operator, CPU profile: %d, %d bytes", code, len(body))
	}
	mon := httpClient(t, c, "prometheus", identity.RoleMonitor)
	if code, _ := get(mon, base(0)+"/metrics"); code != http.StatusOK {
		t.Fatalf("monitor, metrics: %d", code)
	}
	if code, body := get(mon, base(0)+"/debug/pprof/heap?debug=1"); code != http.StatusForbidden || strings.Contains(body, "heap profile") {
		t.Fatalf("monitor, heap profile: %d %.200q, want 403", code, body)
	}
	if _, body := get(op, base(1)+"/debug/pprof/heap?debug=1"); strings.Contains(body, "heap profile") {
		t.Fatal("an agent without Profiling served a heap profile")
	}
}
