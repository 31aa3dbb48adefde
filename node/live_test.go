package node_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/identity"
	"github.com/treecast/treecast/node/nodetest"
	pb "github.com/treecast/treecast/proto/treecast/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// httpClient is an HTTPS client presenting the certificate of name (nil tls: plaintext).
func httpClient(t *testing.T, c *nodetest.Cluster, name string, role identity.Role) *http.Client {
	t.Helper()
	src, err := c.Identity(name, role)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: src.ClientConfig("")}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// event is the fields of the events the tests look at.
type event struct {
	ID       uint64 `json:"id"`
	Type     string `json:"type"`
	Name     string `json:"name"`
	Agent    string `json:"agent"`
	Transfer string `json:"transfer"`
	Receiver string `json:"receiver"`
	OK       bool   `json:"ok"`
	Held     int    `json:"held"`
	Child    string `json:"child"`
	Parent   string `json:"parent"`
	Failed   string `json:"failed"`
	Stripe   int    `json:"stripe"`
	Trees    []struct {
		Arcs [][2]string `json:"arcs"`
	} `json:"trees"`
	Topology struct {
		Arcs []struct{ Copies float64 } `json:"arcs"`
	} `json:"topology"`
	Members  []struct{ Name string } `json:"members"`
	Verified int                     `json:"verified"`
	Elapsed  float64                 `json:"elapsed_ms"`
	time     time.Time
}

// readEvents reads the stream's events into a channel until the body closes.
func readEvents(body io.Reader) <-chan event {
	ch := make(chan event, 4096)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ev event
				// Fields of the same name differ in type across events (failed): an
				// UnmarshalTypeError still fills the others.
				if _ = json.Unmarshal([]byte(d), &ev); ev.Type != "" {
					ev.time = time.Now()
					ch <- ev
				}
			}
		}
	}()
	return ch
}

func TestEventsNeedAClusterCertificate(t *testing.T) {
	c := nodetest.StartCluster(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) { cfg.MetricsAddr = "127.0.0.1:0" }})
	a := c.Agents[0]
	url := a.EventsURL()
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("events URL %q of a TLS agent", url)
	}
	base := strings.TrimSuffix(url, "/events")

	// Plaintext HTTP and TLS without a client certificate are both refused.
	if resp, err := http.Get("http://" + strings.TrimPrefix(base, "https://") + "/metrics"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plaintext /metrics answered 200 on a TLS agent")
		}
	}
	src, err := c.Identity("op", identity.RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	noCert := src.ClientConfig("")
	noCert.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tls.Certificate{}, nil }
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: noCert}}
	if resp, err := anon.Get(url); err == nil {
		resp.Body.Close()
		t.Fatalf("TLS without a client certificate: %s", resp.Status)
	}

	// An operator of the cluster reads the page, the metrics and the stream.
	op := httpClient(t, c, "op", identity.RoleOperator)
	for _, p := range []string{"/", "/app.js", "/metrics"} {
		resp, err := op.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(b) == 0 {
			t.Fatalf("%s: %s", p, resp.Status)
		}
		if p == "/" && !strings.Contains(string(b), "app.js") {
			t.Fatalf("/ is not the page: %.200s", b)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// A monitor (a Prometheus scraper) reads the HTTP address but may call no RPC.
	mon := httpClient(t, c, "prometheus", identity.RoleMonitor)
	if resp, err := mon.Get(base + "/metrics"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("monitor /metrics: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	conn, err := c.Dial(a.Addr(), "prometheus", identity.RoleMonitor)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := pb.NewAgentClient(conn).Status(ctx, &pb.StatusRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("monitor calling Status: %v, want PermissionDenied", err)
	}

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := op.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ev := <-readEvents(resp.Body)
	if ev.Type != "hello" || ev.Agent != a.Name() || len(ev.Members) != 1 {
		t.Fatalf("first event %+v", ev)
	}
}

func TestEventsOfAPushWithAKilledRelay(t *testing.T) {
	const (
		agents = 8
		chunk  = 16 << 10
		size   = 1 << 20
	)
	c := nodetest.StartCluster(t, agents, nodetest.Options{ChunkSize: chunk,
		Labels: func(i int) map[string]string { return map[string]string{"rack": fmt.Sprint("r", i/4)} },
		Configure: func(i int, cfg *node.Config) {
			if i == 0 {
				cfg.MetricsAddr = "127.0.0.1:0"
			}
			cfg.StallTimeout = 20 * time.Second
			node.SetFastFailureDetection(cfg)
		}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	op := httpClient(t, c, "op", identity.RoleOperator)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.Agents[0].EventsURL(), nil)
	resp, err := op.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	evs := readEvents(resp.Body)
	if ev := <-evs; ev.Type != "hello" {
		t.Fatalf("first event %+v", ev)
	}

	path := mustWrite(t, c, 0, "obj.bin", randomBytes(size, 7))
	plan := make(chan []node.PlanEdge, 1)
	done := make(chan node.Report, 1)
	go func() {
		rep, err := c.Agents[0].Push(ctx, node.Object{Path: path}, "all", node.PushOptions{Strategy: "tree", Fanout: 2, RateLimit: 2 << 20,
			Plan: func(p node.PlanInfo) { plan <- p.Edges }})
		if err != nil {
			t.Error(err)
		}
		done <- rep
	}()
	edges := <-plan
	// The victim: a relay below the source's children (its parent, not the source, repairs).
	var victim string
	depth := map[string]int{c.Agents[0].Name(): 0}
	for _, e := range edges {
		depth[e.Child] = depth[e.Parent] + 1
		if depth[e.Parent] == 2 || depth[e.Parent] == 1 && victim == "" { // the deepest relay
			victim = e.Parent
		}
	}
	if victim == "" {
		t.Fatalf("no relay at depth 1 in %v", edges)
	}
	var got []event
	var start event
	for ev := range evs {
		got = append(got, ev)
		if ev.Type == "push_start" {
			start = ev
		}
		if ev.Type == "progress" && ev.Receiver == victim && ev.Held > 0 {
			break
		}
	}
	_ = c.Agent(victim).Kill()
	rep := <-done
	if rep.Failed() != 1 {
		t.Fatalf("report: %d failed, want only the victim %s: %+v", rep.Failed(), victim, rep.Receivers)
	}
	// Read on until push_done and member_gone of the victim.
	var sawDone, sawGone bool
	for !sawDone || !sawGone {
		select {
		case ev, ok := <-evs:
			if !ok {
				t.Fatal("stream ended")
			}
			got = append(got, ev)
			sawDone = sawDone || ev.Type == "push_done"
			sawGone = sawGone || ev.Type == "member_gone" && ev.Name == victim
		case <-ctx.Done():
			var types []string
			for _, e := range got {
				types = append(types, fmt.Sprint(e.ID, e.Type, e.Receiver, e.Name))
			}
			t.Fatalf("no push_done (%v) or member_gone of %s (%v); got %v", sawDone, victim, sawGone, types)
		}
	}

	if len(start.Trees) != 1 || len(start.Trees[0].Arcs) != agents-1 || len(start.Topology.Arcs) == 0 {
		t.Fatalf("push_start: %+v", start)
	}
	var last uint64
	results := map[string]bool{}
	lastProgress := map[string]float64{}
	progress := 0
	reattached := map[string]string{}
	for _, ev := range got {
		if ev.ID <= last {
			t.Fatalf("event ids out of order: %d after %d", ev.ID, last)
		}
		last = ev.ID
		switch ev.Type {
		case "progress":
			progress++
			if prev, ok := lastProgress[ev.Receiver]; ok && ev.Elapsed-prev < 200 {
				t.Errorf("progress of %s %.0f ms after the last: not throttled", ev.Receiver, ev.Elapsed-prev)
			}
			lastProgress[ev.Receiver] = ev.Elapsed
		case "result":
			if _, dup := results[ev.Receiver]; dup {
				t.Errorf("two results for %s", ev.Receiver)
			}
			results[ev.Receiver] = ev.OK
		case "reattach":
			if ev.Failed != victim {
				t.Errorf("reattach after %s, not the victim: %+v", ev.Failed, ev)
			}
			reattached[ev.Child] = ev.Parent
		}
	}
	if progress == 0 {
		t.Error("no progress event")
	}
	for _, r := range rep.Receivers {
		if ok, seen := results[r.Receiver]; !seen || ok != r.OK {
			t.Errorf("result event of %s: seen %v ok %v; report ok %v", r.Receiver, seen, ok, r.OK)
		}
	}
	var parent string
	var kids []string
	for _, e := range edges {
		if e.Child == victim {
			parent = e.Parent
		}
		if e.Parent == victim {
			kids = append(kids, e.Child)
		}
	}
	for _, k := range kids {
		if reattached[k] != parent {
			t.Errorf("%s re-attached under %q, want %s (the victim's parent)", k, reattached[k], parent)
		}
	}
}

// TestEventsHelloRecallsPushesAndChannelVersions publishes a channel version, then opens a
// stream: its hello recalls the push with its report, and the replay holds the
// channel_version event.
func TestEventsHelloRecallsPushesAndChannelVersions(t *testing.T) {
	c := nodetest.StartCluster(t, 2, nodetest.Options{
		Configure: func(i int, cfg *node.Config) {
			if i == 0 {
				cfg.MetricsAddr = "127.0.0.1:0"
			}
		},
		Channels: func(i int) []string { return []string{"web"} },
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	path := mustWrite(t, c, 0, "v1.bin", randomBytes(200<<10, 3))
	rep, err := c.Agents[0].Publish(ctx, "web", node.Object{Path: path}, node.PushOptions{})
	if err != nil || rep.Failed() != 0 || len(rep.Receivers) != 1 {
		t.Fatalf("publish: %v %+v", err, rep)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.Agents[0].EventsURL(), nil)
	resp, err := httpClient(t, c, "op", identity.RoleOperator).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	var hello struct {
		Type   string `json:"type"`
		Pushes []struct {
			Start   struct{ Transfer, Digest string }
			Done    *struct{ Verified int }
			Running bool
		}
	}
	var version struct {
		Channel, Digest string
		Version         uint64
	}
	for sc.Scan() && version.Channel == "" {
		d, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		switch {
		case hello.Type == "":
			if err := json.Unmarshal([]byte(d), &hello); err != nil || hello.Type != "hello" {
				t.Fatalf("first event %s: %v", d, err)
			}
		case strings.Contains(d, `"type":"channel_version"`):
			if err := json.Unmarshal([]byte(d), &version); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(hello.Pushes) != 1 || hello.Pushes[0].Start.Digest != rep.Digest || hello.Pushes[0].Running ||
		hello.Pushes[0].Done == nil || hello.Pushes[0].Done.Verified != 1 {
		t.Fatalf("hello pushes %+v, want the publish's push, done, 1 verified", hello.Pushes)
	}
	if version.Channel != "web" || version.Digest != rep.Digest || version.Version == 0 {
		t.Fatalf("channel_version %+v", version)
	}
}
