package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/treecast/treecast/bench/testbed"
)

// buildTreecast builds the treecast command into a temporary directory.
func buildTreecast(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("skipping: no go command to build treecast with: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "treecast")
	out, err := exec.Command(goBin, "build", "-o", bin, "../cmd/treecast").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/treecast: %v\n%s", err, out)
	}
	return bin
}

func needTestbed(t *testing.T) {
	t.Helper()
	if err := testbed.Supported(); err != nil {
		t.Skipf("skipping the testbed benchmark: %v (it needs root and network namespaces; CI runs it as root)", err)
	}
	if testing.Short() {
		t.Skip("skipping the testbed benchmark in -short mode")
	}
	if os.Getenv("TREECAST_TESTBED") == "skip" {
		t.Skip("skipping the testbed benchmark: TREECAST_TESTBED=skip (CI runs it in a step of its own)")
	}
}

// TestTestbed4x4 runs every peer once on the 4x4 testbed at 100 Mbit/s with a 4 MiB
// object: every receiver of every peer holds a byte-exact copy, no peer beats the shaped
// links, and the arc counters see what each peer must do (unicast puts one copy per
// receiver on the source's uplink, multicast and a chain about one copy on every arc).
func TestTestbed4x4(t *testing.T) {
	needTestbed(t)
	cfg := Config{Racks: 4, HostsPerRack: 4, Rate: 100e6, Size: 4 << 20, Seed: 7, Runs: 1,
		Treecast: buildTreecast(t), Install: true, WorkDir: t.TempDir(), Timeout: 90 * time.Second, Log: tlog{t}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != len(DefaultPeers()) {
		t.Fatalf("%d results, want one per peer (%d)", len(rep.Results), len(DefaultPeers()))
	}
	ideal := cfg.Ideal().Seconds()
	for _, r := range rep.Results {
		if !r.OK() || r.Verified != 15 {
			t.Errorf("%s: %d/%d verified: %s", r.Peer, r.Verified, r.Receivers, r.Error)
			continue
		}
		if r.Seconds < 0.9*ideal {
			t.Errorf("%s: %.2f s, faster than the links allow (ideal %.2f s)", r.Peer, r.Seconds, ideal)
		}
		if len(r.Arcs) != 2*(16+4) {
			t.Errorf("%s: %d arcs counted, want 40", r.Peer, len(r.Arcs))
		}
		if c := r.Arcs["r0h0>r0"]; c < 0.99 {
			t.Errorf("%s: the source's uplink carried %.2f copies, want at least one", r.Peer, c)
		}
		for _, h := range []string{"r0h1", "r1h0", "r3h3"} {
			rack := h[:2]
			if c := r.Arcs[rack+">"+h]; c < 0.99 {
				t.Errorf("%s: %s's downlink carried %.2f copies, want at least one", r.Peer, h, c)
			}
		}
		switch {
		case strings.HasPrefix(r.Peer, "http"):
			if c := r.Arcs["r0h0>r0"]; c < 15 || c > 16.5 {
				t.Errorf("http unicast: the source's uplink carried %.2f copies, want 15 (one per receiver)", c)
			}
		case strings.Contains(r.Peer, "chain"):
			if r.MaxCopies > 1.3 {
				t.Errorf("%s: %.2f copies on %s, want about one per arc", r.Peer, r.MaxCopies, r.MaxArc)
			}
		case strings.HasPrefix(r.Peer, "uftp"):
			// Multicast sends each packet once per arc, but lost packets are sent again to the
			// whole group (NAKs): on a busy machine 1.3 to 1.5 copies were seen.
			if r.MaxCopies > 2 {
				t.Errorf("%s: %.2f copies on %s, want at most two per arc", r.Peer, r.MaxCopies, r.MaxArc)
			}
		}
	}
	var md, js, img bytes.Buffer
	if err := rep.WriteMarkdown(&md, "testbed.png"); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if err := rep.WritePNG(&img); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", md.String())
}

// TestRelayKilledOnTestbed kills a relay (an agent with children in the push's plan) with
// SIGKILL in the middle of a default push on the 4x4 testbed: every live receiver verifies
// a byte-exact copy, and none receives much more than one copy (no verified chunk sent
// again after the orphans re-attach).
func TestRelayKilledOnTestbed(t *testing.T) {
	needTestbed(t)
	cfg := Config{Racks: 4, HostsPerRack: 4, Rate: 100e6, Size: 24 << 20, Seed: 9, Runs: 1,
		Treecast: buildTreecast(t), WorkDir: t.TempDir(), Timeout: 2 * time.Minute, Log: tlog{t}}
	killer := &relayKiller{}
	cfg.Peers = []Peer{killer}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Results[0]
	if killer.killed == "" {
		t.Fatalf("no relay was killed: %s", r.Error)
	}
	t.Logf("killed %s at %d of %d chunks; %d/%d verified in %.1f s; %s", killer.killed, killer.heldAt, killer.total, r.Verified, r.Receivers, r.Seconds, r.Error)
	if r.Verified != r.Receivers-1 {
		t.Errorf("%d of the %d live receivers verified their copy, want all: %s", r.Verified, r.Receivers-1, r.Error)
	}
	for arc, c := range r.Arcs {
		host := strings.SplitN(arc, ">", 2)[1]
		if strings.Contains(host, "h") && host != killer.killed && c > 1.25 {
			t.Errorf("live receiver %s got %.2f copies on its downlink %s, want about one (chunks sent twice?)", host, c, arc)
		}
	}
}

// relayKiller is a peer that pushes with treecast's defaults and kills the first relay seen
// forwarding once it holds a quarter of the chunks. Its copies leave the killed host out.
type relayKiller struct {
	killed        string
	heldAt, total uint64
}

func (k *relayKiller) Name() string  { return "treecast (defaults), a relay killed" }
func (k *relayKiller) Tools() []Tool { return nil }

func (k *relayKiller) Run(ctx context.Context, e *Env) (map[int]string, error) {
	c, err := startCluster(ctx, e, 0)
	if err != nil {
		return nil, err
	}
	if err := e.Start(ctx); err != nil {
		return nil, err
	}
	push, err := c.push(ctx, nil)
	if err != nil {
		return nil, err
	}
	victim := -1
	err = poll(ctx, 100*time.Millisecond, "a relay a quarter through the push", func() (bool, error) {
		if !push.running() {
			return false, fmt.Errorf("the push ended before a relay could be killed: %s", lastLines(push.output(), 3))
		}
		// Every host at once: asked one after the other, 15 agents busy forwarding answer
		// slower than a fast push runs past the window.
		type relayState struct {
			ok          bool
			held, total uint64
		}
		states := make([]relayState, len(e.Hosts()))
		var wg sync.WaitGroup
		for i := 1; i < len(e.Hosts()); i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := e.run(ctx, i, "ls", e.cfg.Treecast, append([]string{"ls", "--json", "--agent", c.grpcAddr(i)}, c.clientTLS...)...)
				if err != nil {
					return // an agent busy forwarding may answer late; the next sweep asks again
				}
				var st struct {
					Transfers []struct {
						Children    []string `json:"children"`
						ChunksHeld  uint64   `json:"chunks_held"`
						ChunksTotal uint64   `json:"chunks_total"`
					} `json:"transfers"`
				}
				if json.Unmarshal([]byte(out), &st) != nil {
					return
				}
				for _, tr := range st.Transfers {
					if len(tr.Children) > 0 && tr.ChunksTotal > 0 && tr.ChunksHeld*4 >= tr.ChunksTotal && tr.ChunksHeld < tr.ChunksTotal {
						states[i] = relayState{true, tr.ChunksHeld, tr.ChunksTotal}
						return
					}
				}
			}()
		}
		wg.Wait()
		for i, st := range states {
			if st.ok {
				victim, k.heldAt, k.total = i, st.held, st.total
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	k.killed = e.Hosts()[victim].Name
	if err := c.agents[victim].cmd.Process.Kill(); err != nil {
		return nil, err
	}
	delete(c.copies, victim)
	_ = push.wait(ctx)
	if err := e.Stop(ctx); err != nil {
		return c.copies, err
	}
	// The push exits 1 because the killed relay failed; the live receivers are checked by
	// their copies.
	return c.copies, nil
}

// tlog writes the benchmark's progress lines to the test log.
type tlog struct{ t *testing.T }

func (l tlog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func TestReportOutputs(t *testing.T) {
	rep := &Report{Command: "treecast bench testbed --runs 3", Date: "2026-01-01T00:00:00Z", Kernel: "Linux 6", CPUs: 2,
		Network: "4 racks x 4 hosts, 100 Mbit/s", Object: 50 << 20, Ideal: 4.37, Runs: 3, Peers: []string{"a", "b"}}
	for run, secs := range []float64{10, 30, 20} {
		rep.Results = append(rep.Results, Result{Peer: "a", Run: run + 1, Seconds: secs, XIdeal: secs / 4.37, MaxCopies: 1 + float64(run)/10,
			MaxArc: "r0h0>r0", MaxKind: "host uplink", Verified: 15, Receivers: 15, CPUSeconds: 12, Arcs: map[string]float64{"r0h0>r0": 1}})
	}
	rep.Results = append(rep.Results, Result{Peer: "b", Run: 1, Seconds: 60, Verified: 3, Receivers: 15, Error: "timed | out"})
	sums := rep.Summaries()
	if len(sums) != 2 || sums[0].Seconds != 20 || sums[0].MaxCopies != 1.1 || sums[0].OK != 3 || sums[0].Verified != 45 {
		t.Fatalf("summaries %+v, want peer a: median 20 s, 1.1 copies, 3 ok, 45 verified", sums)
	}
	if sums[1].OK != 0 || sums[1].Seconds != 0 || sums[1].Verified != 3 {
		t.Fatalf("summary of the failed peer: %+v", sums[1])
	}
	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md, "p.png"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| 4 racks x 4 hosts, 100 Mbit/s, 50 MiB | a | 20.0 | 4.58 | 1.10 | r0h0>r0 (host uplink) | 45/45 | 3/3 | 12 |",
		"| 4 racks x 4 hosts, 100 Mbit/s, 50 MiB | b | 1 | 60.00 | - | - | - | 3/15 | - | timed \\| out |",
		"![seconds and max copies per peer](p.png)", "Command: `treecast bench testbed --runs 3`",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md.String())
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Results   []Result  `json:"results"`
		Summaries []Summary `json:"summaries"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Results) != 4 || back.Summaries[0].Seconds != 20 || back.Results[0].Arcs["r0h0>r0"] != 1 {
		t.Fatalf("JSON round trip: %+v", back)
	}
	var img bytes.Buffer
	if err := rep.WritePNG(&img); err != nil {
		t.Fatal(err)
	}
	if cfg, err := png.DecodeConfig(&img); err != nil || cfg.Width < 1000 {
		t.Fatalf("PNG: %v, %+v", err, cfg)
	}
}

func TestPeerByName(t *testing.T) {
	for name, want := range map[string]string{
		"treecast": "treecast (defaults)", "treecast:--strategy chain": "treecast --strategy chain",
		"uftp": "uftp (IP multicast)", "bittorrent": "bittorrent (aria2c)", "http": "http unicast (curl)",
	} {
		p, err := PeerByName(name)
		if err != nil || p.Name() != want {
			t.Errorf("PeerByName(%q) = %v, %v; want %q", name, p, err, want)
		}
	}
	for _, bad := range []string{"", "ftp", "treecast:"} {
		if _, err := PeerByName(bad); err == nil {
			t.Errorf("PeerByName(%q) succeeded", bad)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Racks: 2, HostsPerRack: 2, Rate: 1e8, Size: 1 << 20, Runs: 1, Peers: DefaultPeers(), Treecast: "/bin/true"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := ok.Ideal(); got < 87*time.Millisecond || got > 88*time.Millisecond {
		t.Errorf("ideal of 1 MiB at 100 Mbit/s = %v, want 87.4 ms", got)
	}
	for i, f := range []func(c *Config){
		func(c *Config) { c.Racks, c.HostsPerRack = 1, 1 },
		func(c *Config) { c.Racks = 20; c.HostsPerRack = 20 },
		func(c *Config) { c.Rate = 0 },
		func(c *Config) { c.Size = 0 },
		func(c *Config) { c.Runs = 0 },
		func(c *Config) { c.Treecast = "" },
		func(c *Config) { c.Peers = []Peer{&UFTP{}, &UFTP{}} },
	} {
		c := ok
		f(&c)
		if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), "bench: ") {
			t.Errorf("case %d: Validate() = %v, want a bench error", i, err)
		}
	}
}

func TestServeFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "object"), []byte("bytes of the object"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeFiles(ctx, dir, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/object")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "bytes of the object" {
		t.Errorf("GET /object = %q", body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("after cancel: %v", err)
	}
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := ServeFiles(context.Background(), filepath.Join(dir, "none"), ln2); err == nil {
		t.Fatal("serving a missing directory succeeded")
	}
}

// TestCancelCleansUp cancels a benchmark in the middle of a run (as Ctrl-C does): Run
// returns, the process the run started inside the testbed is gone, and so is every
// namespace of the testbed.
func TestCancelCleansUp(t *testing.T) {
	if err := testbed.Supported(); err != nil {
		t.Skipf("skipping: %v (needs root; CI runs it as root)", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := &hangPeer{started: make(chan int, 1)}
	name := testbed.RandomName()
	cfg := Config{Racks: 2, HostsPerRack: 2, Rate: 100e6, Size: 1 << 20, Runs: 2, Peers: []Peer{h}, Name: name, WorkDir: t.TempDir()}
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, cfg)
		done <- err
	}()
	var pid int
	select {
	case pid = <-h.started:
	case err := <-done:
		t.Fatalf("Run ended before the peer started: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "interrupted") {
			t.Errorf("Run after cancel: %v, want an interrupted error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30 s of the cancel")
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); !os.IsNotExist(err) {
		t.Errorf("process %d started inside the testbed still exists", pid)
	}
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), name+"-") {
			t.Errorf("namespace %s left behind", e.Name())
		}
	}
}

// hangPeer starts a long sleep inside host 1, reports its pid, and waits for the end of
// the run.
type hangPeer struct{ started chan int }

func (h *hangPeer) Name() string  { return "hang" }
func (h *hangPeer) Tools() []Tool { return nil }

func (h *hangPeer) Run(ctx context.Context, e *Env) (map[int]string, error) {
	p, err := e.exec(ctx, 1, "sleep", "sleep", "600")
	if err != nil {
		return nil, err
	}
	h.started <- p.cmd.Process.Pid
	<-ctx.Done()
	return nil, context.Cause(ctx)
}
