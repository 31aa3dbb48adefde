// Package nodetest starts in-process clusters of real treecast agents for tests: real gRPC on
// loopback TCP, real gossip (memberlist) on loopback, real stores in temporary directories.
//
// A test starts a cluster with [StartCluster], waits for gossip to converge (StartCluster
// does, and [Cluster.WaitFor] waits on any condition with a deadline), pushes with
// [node.Agent.Push] on one of [Cluster.Agents], and checks the receivers' stores. The
// cluster is closed by t.Cleanup.
package nodetest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/treecast/treecast/node"
)

// Options tune a test cluster. The zero value gives agents named a00, a01, ... with no labels.
type Options struct {
	// Labels, when not nil, gives the labels of agent i.
	Labels func(i int) map[string]string
	// Channels, when not nil, gives the channels of agent i.
	Channels func(i int) []string
	// Configure, when not nil, may change agent i's configuration before it starts.
	Configure func(i int, cfg *node.Config)
	// ChunkSize is every agent's default chunk size (0: 64 KiB, small enough for tests).
	ChunkSize int
	// Timeout bounds start-up and gossip convergence (0: 20 s).
	Timeout time.Duration
	// Verbose logs the agents' debug output to the test log.
	Verbose bool
}

// Cluster is a running set of agents.
type Cluster struct {
	t      testing.TB
	Agents []*node.Agent
	Dirs   []string // data directory of each agent
}

// Name returns agent i's name.
func Name(i int) string { return fmt.Sprintf("a%02d", i) }

// StartCluster starts n agents, joins each to the first one and waits until every agent sees
// all n alive. It fails the test (t.Fatal) on any error; t.Cleanup closes the agents.
func StartCluster(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = 20 * time.Second
	}
	if opts.ChunkSize == 0 {
		opts.ChunkSize = 64 << 10
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	defer cancel()
	c := &Cluster{t: t}
	t.Cleanup(c.Close)
	base := t.TempDir()
	for i := range n {
		dir := filepath.Join(base, Name(i))
		cfg := node.DefaultConfig(Name(i), dir)
		cfg.ChunkSize = opts.ChunkSize
		level := slog.LevelWarn
		if opts.Verbose {
			level = slog.LevelDebug
		}
		cfg.Logger = slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: level}))
		for _, prev := range c.Agents { // joining every earlier agent syncs full state at once
			cfg.Join = append(cfg.Join, prev.GossipAddr())
		}
		if opts.Labels != nil {
			cfg.Labels = opts.Labels(i)
		}
		if opts.Channels != nil {
			cfg.Channels = opts.Channels(i)
		}
		if opts.Configure != nil {
			opts.Configure(i, &cfg)
		}
		a, err := node.Start(ctx, cfg)
		if err != nil {
			t.Fatalf("nodetest: start %s: %v", cfg.Name, err)
		}
		c.Agents = append(c.Agents, a)
		c.Dirs = append(c.Dirs, dir)
	}
	c.WaitFor(ctx, "gossip convergence", func() bool {
		for _, a := range c.Agents {
			if alive(a) != n {
				return false
			}
		}
		return true
	})
	return c
}

func alive(a *node.Agent) int {
	k := 0
	for _, m := range a.Members() {
		if m.State == "alive" {
			k++
		}
	}
	return k
}

// WaitFor polls cond until it holds, failing the test with what when ctx ends first.
func (c *Cluster) WaitFor(ctx context.Context, what string, cond func() bool) {
	c.t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			c.t.Fatalf("nodetest: waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// Close closes every agent (idempotent). Errors are logged, not failed: agents a test killed
// on purpose may report them.
func (c *Cluster) Close() {
	for _, a := range c.Agents {
		if err := a.Close(); err != nil {
			c.t.Logf("nodetest: close %s: %v", a.Name(), err)
		}
	}
}

// WriteFile writes data to a file named name in agent i's data directory and returns its path
// (the path Push accepts).
func (c *Cluster) WriteFile(i int, name string, data []byte) string {
	c.t.Helper()
	p := filepath.Join(c.Dirs[i], name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		c.t.Fatal(err)
	}
	return p
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// Agent returns the agent named name, or nil.
func (c *Cluster) Agent(name string) *node.Agent {
	for _, a := range c.Agents {
		if a.Name() == name {
			return a
		}
	}
	return nil
}

// Read returns the whole object digest as the agent named name holds it, through the agent's
// Fetch service (so only a complete, visible object is returned).
func (c *Cluster) Read(name, digest string) ([]byte, error) {
	a := c.Agent(name)
	if a == nil {
		return nil, fmt.Errorf("nodetest: no agent %s", name)
	}
	var buf bytes.Buffer
	err := a.CopyObject(context.Background(), digest, &buf)
	return buf.Bytes(), err
}
