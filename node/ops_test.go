package node_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/identity"
	"github.com/treecast/treecast/node/nodetest"
	"github.com/treecast/treecast/node/store"
	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// TestDataDirLocked starts a second agent on a running agent's data directory: it refuses.
func TestDataDirLocked(t *testing.T) {
	c := nodetest.StartCluster(t, 1, nodetest.Options{})
	startRefused(t, c, node.DefaultConfig("other", c.Dirs[0]), node.ErrDataDirLocked)
}

// startRefused starts an agent of cfg in c's security and fails the test unless Start refuses
// it with an error wrapping want.
func startRefused(t *testing.T, c *nodetest.Cluster, cfg node.Config, want error) {
	t.Helper()
	cfg.Logger = slog.New(slog.DiscardHandler)
	if err := c.Secure(&cfg); err != nil {
		t.Fatal(err)
	}
	a, err := node.Start(context.Background(), cfg)
	if err == nil {
		a.Close()
		t.Fatalf("agent %s started, want it refused with %v", cfg.Name, want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("got %v, want %v", err, want)
	}
}

func memberState(a *node.Agent, name string) string {
	for _, m := range a.Members() {
		if m.Name == name {
			return m.State
		}
	}
	return ""
}

// TestCleanLeaveListedLeft closes an agent gracefully: the others list it left, not dead.
func TestCleanLeaveListedLeft(t *testing.T) {
	c := nodetest.StartCluster(t, 3, nodetest.Options{})
	if err := c.Agents[2].Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.WaitFor(ctx, "a00 to list a02 as left", func() bool { return memberState(c.Agents[0], "a02") == "left" }); err != nil {
		t.Fatalf("%v: a02 is %q", err, memberState(c.Agents[0], "a02"))
	}
}

// TestSeedRejoinsKnownPeers restarts the seed without any seed of its own: it joins the
// peers it knew before instead of running alone.
func TestSeedRejoinsKnownPeers(t *testing.T) {
	c := nodetest.StartCluster(t, 3, nodetest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	peers := filepath.Join(c.Dirs[0], "peers.json")
	if err := c.WaitFor(ctx, "a00 to save its peers", func() bool {
		b, err := os.ReadFile(peers)
		return err == nil && strings.Count(string(b), ":") == 2
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Agents[0].Close(); err != nil {
		t.Fatal(err)
	}
	cfg := node.DefaultConfig("a00", c.Dirs[0])
	cfg.Logger = slog.New(slog.DiscardHandler)
	if err := c.Secure(&cfg); err != nil {
		t.Fatal(err)
	}
	a, err := node.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if err := c.WaitFor(ctx, "the restarted seed to see a01 and a02", func() bool {
		return memberState(a, "a01") == "alive" && memberState(a, "a02") == "alive"
	}); err != nil {
		t.Fatalf("%v: members %+v", err, a.Members())
	}
}

// TestRelayDrainsOnClose closes a relay gracefully in the middle of a push: it finishes its
// running transfer (it and its child verify their copies) before it stops.
func TestRelayDrainsOnClose(t *testing.T) {
	const chunk = 64 << 10
	c := nodetest.StartCluster(t, 3, nodetest.Options{ChunkSize: chunk, Configure: func(i int, cfg *node.Config) {
		if i == 0 {
			cfg.RateLimit = 1 << 20
		}
	}})
	data := randomBytes(2<<20, 21)
	path := mustWrite(t, c, 0, "obj.bin", data)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan node.Report, 1)
	go func() {
		rep, _ := c.Agents[0].Push(ctx, node.Object{Path: path}, "a01,a02", node.PushOptions{Strategy: "chain"})
		done <- rep
	}()
	if err := c.WaitFor(ctx, "a01 a quarter through", func() bool { return c.Agents[1].Metric("treecast_chunks_in_total") >= 8 }); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Agents[1].Close() }()
	rep := <-done
	for _, r := range rep.Receivers {
		if !r.OK {
			t.Errorf("%s: %s (a relay that stops gracefully finishes its transfer)", r.Receiver, r.Err)
		}
	}
	if err := <-closed; err != nil {
		t.Logf("close: %v", err)
	}
}

// TestPushPartialObject asks to push an object the agent holds in part: the error says so
// (FailedPrecondition), not "unknown digest"; a malformed digest is InvalidArgument.
func TestPushPartialObject(t *testing.T) {
	dir := t.TempDir()
	data := randomBytes(256<<10, 22)
	m, err := store.NewManifest(bytes.NewReader(data), 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(filepath.Join(dir, "a00", "store"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Begin(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WriteChunk(0, data[:64<<10]); err != nil {
		t.Fatal(err)
	}
	p.Close()
	s.Close()
	c := nodetest.StartCluster(t, 2, nodetest.Options{Dir: dir})
	cl := client(t, c, c.Agents[0].Addr(), "op", identity.RoleOperator)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	submit := func(digest string) error {
		st, err := cl.Submit(ctx, &pb.SubmitRequest{Object: &pb.SubmitRequest_Digest{Digest: digest}, Target: &pb.Target{Kind: &pb.Target_All{All: true}}})
		if err == nil {
			_, err = st.Recv()
		}
		return err
	}
	if err := submit(m.Digest.String()); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "1 of 4 chunks") {
		t.Errorf("push of a partial object: %v, want FailedPrecondition saying 1 of 4 chunks", err)
	}
	if err := submit("sha256:abc"); status.Code(err) != codes.InvalidArgument {
		t.Errorf("push of sha256:abc: %v, want InvalidArgument", err)
	}
}

// TestStableFile reads a file that is written to halfway through the read: the read fails
// with ErrObjectChanged instead of ending; an untouched file reads to io.EOF.
func TestStableFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, randomBytes(1<<20, 23), 0o644); err != nil {
		t.Fatal(err)
	}
	read := func(touch func()) error {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sf, err := node.StableFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(io.Discard, sf, 1000); err != nil {
			t.Fatal(err)
		}
		touch()
		_, err = io.Copy(io.Discard, sf)
		return err
	}
	if err := read(func() {}); err != nil {
		t.Fatalf("untouched file: %v", err)
	}
	for name, touch := range map[string]func(){
		"overwritten in place": func() {
			f, _ := os.OpenFile(path, os.O_WRONLY, 0)
			f.WriteAt([]byte("x"), 5000)
			f.Close()
		},
		"truncated": func() { os.Truncate(path, 500<<10) },
		"mtime restored": func() {
			fi, _ := os.Stat(path)
			f, _ := os.OpenFile(path, os.O_WRONLY, 0)
			f.WriteAt([]byte("y"), 7000)
			f.Close()
			os.Chtimes(path, fi.ModTime(), fi.ModTime())
		},
	} {
		if err := read(touch); !errors.Is(err, node.ErrObjectChanged) {
			t.Errorf("%s: %v, want ErrObjectChanged", name, err)
		}
	}
}

// TestCloseCutsIdleTransfers kills a push's source mid-way, then closes a receiver
// gracefully: its transfer moves no byte any more (its parent is gone), so Close stops
// waiting on it once it has been idle for a moment, not after the whole drain grace, and
// says so.
func TestCloseCutsIdleTransfers(t *testing.T) {
	const chunk = 64 << 10
	logs := &lockedBuffer{}
	c := nodetest.StartCluster(t, 3, nodetest.Options{ChunkSize: chunk, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Configure: func(i int, cfg *node.Config) {
			if i == 0 {
				cfg.RateLimit = 1 << 20
			}
		}})
	path := mustWrite(t, c, 0, "obj.bin", randomBytes(4<<20, 23))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() {
		_, _ = c.Agents[0].Push(ctx, node.Object{Path: path}, "a01,a02", node.PushOptions{Strategy: "chain"})
	}()
	if err := c.WaitFor(ctx, "a02 under way", func() bool { return c.Agents[2].Metric("treecast_chunks_in_total") >= 4 }); err != nil {
		t.Fatal(err)
	}
	_ = c.Agents[0].Kill()
	if err := c.Agents[2].Close(); err != nil {
		t.Logf("close: %v", err)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `msg="stopping: running transfers moved no byte`) && strings.Contains(line, "agent=a02") {
			return
		}
	}
	t.Fatalf("a02's Close did not cut its idle transfer; the log:\n%s", logs.String())
}

// lockedBuffer is a bytes.Buffer that several goroutines may write (a shared log).
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
