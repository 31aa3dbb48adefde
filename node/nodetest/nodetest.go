// Package nodetest starts in-process clusters of real treecast agents: real gRPC on loopback
// TCP, real gossip (memberlist) on loopback, real stores in temporary directories. Tests use
// [StartCluster]; programs (such as a demo command) use [Start].
//
// A cluster is secured as a production one is: a throwaway CA in the cluster's directory
// issues every agent's certificate (mutual TLS) and gossip is encrypted ([Options].Insecure
// turns both off). [Cluster.Dial] connects as an operator or a node of the cluster, and
// [Cluster.Secure] gives an extra agent's configuration its certificate.
//
// A test starts a cluster with [StartCluster], which waits for gossip to converge; pushes with
// [node.Agent.Push] on one of [Cluster.Agents]; checks the receivers' copies with
// [Cluster.Read]; and waits on any condition with [Cluster.WaitFor] (a deadline, never a
// sleep). The cluster is closed by t.Cleanup.
package nodetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/identity"
)

// Options tune a cluster. The zero value gives agents named a00, a01, ... with no labels,
// 64 KiB chunks, in a new temporary directory.
type Options struct {
	// Labels, when not nil, gives the labels of agent i.
	Labels func(i int) map[string]string
	// Channels, when not nil, gives the channels of agent i.
	Channels func(i int) []string
	// Configure, when not nil, may change agent i's configuration before it starts.
	Configure func(i int, cfg *node.Config)
	// ChunkSize is every agent's default chunk size (0: 64 KiB, small enough for tests).
	ChunkSize int
	// Dir holds the agents' data directories (Dir/a00, ...); empty: a new temporary
	// directory, removed by Close.
	Dir string
	// Logger receives the agents' logs (nil: discarded; StartCluster logs warnings to t).
	Logger *slog.Logger
	// Timeout bounds start-up and gossip convergence (0: 20 s).
	Timeout time.Duration
	// Insecure starts the agents without TLS and without a gossip key. By default a cluster
	// is secured as in production: a throwaway CA in Dir/certs issues every agent's
	// certificate, and gossip is encrypted with a key made there.
	Insecure bool
}

// Cluster is a running set of agents.
type Cluster struct {
	Agents []*node.Agent
	Dirs   []string // data directory of each agent
	// CertDir holds the cluster's CA, gossip key and certificates ("" when insecure).
	CertDir    string
	GossipKeys [][]byte
	tmp        string // removed by Close when Start created it
}

// Secure gives cfg the TLS certificate of cfg.Name (issued by the cluster's CA on first use)
// and the cluster's gossip key; on an insecure cluster it sets cfg.Insecure.
func (c *Cluster) Secure(cfg *node.Config) error {
	if c.CertDir == "" {
		cfg.Insecure = true
		return nil
	}
	src, err := c.Identity(cfg.Name, identity.RoleNode)
	if err != nil {
		return err
	}
	cfg.TLS, cfg.GossipKeys = src, c.GossipKeys
	return nil
}

// Identity returns the certificate of name with role, issued by the cluster's CA on first
// use (for clients: operators, or rogue nodes in tests).
func (c *Cluster) Identity(name string, role identity.Role) (*identity.Source, error) {
	if c.CertDir == "" {
		return nil, fmt.Errorf("nodetest: an insecure cluster has no certificates")
	}
	cert, key := identity.Files(c.CertDir, name)
	if _, err := os.Stat(cert); err != nil {
		if err := identity.Issue(c.CertDir, name, role, []string{"127.0.0.1"}); err != nil {
			return nil, err
		}
	}
	ca, _ := identity.CAFiles(c.CertDir)
	return identity.Load(cert, key, ca)
}

// Dial opens a gRPC client connection to addr as the identity name with role (over mutual
// TLS; plaintext on an insecure cluster). The caller closes it.
func (c *Cluster) Dial(addr, name string, role identity.Role) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if c.CertDir != "" {
		src, err := c.Identity(name, role)
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(src.ClientConfig(""))
	}
	return grpc.NewClient(addr, grpc.WithTransportCredentials(creds), grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(80<<20)))
}

func (c *Cluster) initSecurity(base string) error {
	c.CertDir = filepath.Join(base, "certs")
	if err := identity.InitCA(c.CertDir); err != nil {
		return err
	}
	path, err := identity.NewGossipKey(c.CertDir)
	if err != nil {
		return err
	}
	c.GossipKeys, err = identity.ReadGossipKeys(path)
	return err
}

// Name returns agent i's name.
func Name(i int) string { return fmt.Sprintf("a%02d", i) }

// Start starts n agents on loopback, each joining every earlier one, and waits until every
// agent sees all n alive. On error it closes what it started. Cost: about n gossip joins;
// typically well under a second for ten agents.
func Start(ctx context.Context, n int, opts Options) (*Cluster, error) {
	if n < 1 {
		return nil, fmt.Errorf("nodetest: %d agents, want at least 1", n)
	}
	if opts.Timeout == 0 {
		opts.Timeout = 20 * time.Second
	}
	if opts.ChunkSize == 0 {
		opts.ChunkSize = 64 << 10
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	c := &Cluster{}
	base := opts.Dir
	if base == "" {
		var err error
		if base, err = os.MkdirTemp("", "treecast-cluster-"); err != nil {
			return nil, err
		}
		c.tmp = base
	}
	if !opts.Insecure {
		if err := c.initSecurity(base); err != nil {
			c.Close()
			return nil, fmt.Errorf("nodetest: certificates: %w", err)
		}
	}
	for i := range n {
		dir := filepath.Join(base, Name(i))
		cfg := node.DefaultConfig(Name(i), dir)
		cfg.ChunkSize = opts.ChunkSize
		cfg.Logger = opts.Logger
		for _, prev := range c.Agents { // joining every earlier agent syncs full state at once
			cfg.Join = append(cfg.Join, prev.GossipAddr())
		}
		if opts.Labels != nil {
			cfg.Labels = opts.Labels(i)
		}
		if opts.Channels != nil {
			cfg.Channels = opts.Channels(i)
		}
		if err := c.Secure(&cfg); err != nil {
			c.Close()
			return nil, fmt.Errorf("nodetest: %s: %w", cfg.Name, err)
		}
		if opts.Configure != nil {
			opts.Configure(i, &cfg)
		}
		a, err := node.Start(ctx, cfg)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("nodetest: start %s: %w", cfg.Name, err)
		}
		c.Agents = append(c.Agents, a)
		c.Dirs = append(c.Dirs, dir)
	}
	if err := c.WaitFor(ctx, "gossip convergence", func() bool {
		for _, a := range c.Agents {
			if alive(a) != n {
				return false
			}
		}
		return true
	}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// StartCluster is Start for tests: agents log warnings to t, data lives in t.TempDir(),
// t.Cleanup closes the cluster, and any error fails the test at once.
func StartCluster(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	c, err := Start(context.Background(), n, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
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

// WaitFor polls cond every 10 ms until it holds; it returns an error naming what when ctx
// ends first.
func (c *Cluster) WaitFor(ctx context.Context, what string, cond func() bool) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("nodetest: waiting for %s: %w", what, ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

// Close closes every agent (idempotent: agents already closed or killed are skipped) and
// removes the temporary directory Start created. Close errors of agents a caller killed on
// purpose are ignored.
func (c *Cluster) Close() {
	for _, a := range c.Agents {
		_ = a.Close()
	}
	if c.tmp != "" {
		_ = os.RemoveAll(c.tmp)
	}
}

// WriteFile writes data to a file named name in agent i's data directory and returns its path
// (the path Push accepts).
func (c *Cluster) WriteFile(i int, name string, data []byte) (string, error) {
	if i < 0 || i >= len(c.Dirs) {
		return "", fmt.Errorf("nodetest: no agent %d", i)
	}
	p := filepath.Join(c.Dirs[i], name)
	return p, os.WriteFile(p, data, 0o644)
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

// Read returns the whole object digest as the agent named name holds it: only a complete,
// verified, visible object is returned.
func (c *Cluster) Read(name, digest string) ([]byte, error) {
	a := c.Agent(name)
	if a == nil {
		return nil, fmt.Errorf("nodetest: no agent %s", name)
	}
	var buf bytes.Buffer
	err := a.CopyObject(context.Background(), digest, &buf)
	return buf.Bytes(), err
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

var _ io.Writer = tlogWriter{}
