package node_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/identity"
)

// Push an object from one agent to the others of a small loopback cluster.
func ExampleAgent_Push() {
	dir, _ := os.MkdirTemp("", "treecast-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	var agents []*node.Agent
	for _, name := range []string{"src", "r1", "r2"} {
		cfg := node.DefaultConfig(name, filepath.Join(dir, name))
		cfg.Logger = slog.New(slog.DiscardHandler)
		// Every gRPC connection is mutual TLS and gossip is encrypted: a cluster CA issues
		// each agent's certificate (treecast certs does the same on the command line).
		if err := secure(&cfg, filepath.Join(dir, "certs")); err != nil {
			fmt.Println(err)
			return
		}
		if len(agents) > 0 {
			cfg.Join = []string{agents[0].GossipAddr()}
		}
		a, err := node.Start(ctx, cfg)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer a.Close()
		agents = append(agents, a)
	}
	// Gossip needs a moment to bring every member to the source: wait for it (at most 10 s).
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(10 * time.Second); alive(agents[0]) < len(agents) && time.Now().Before(deadline); {
		<-tick.C
	}
	// The file to push must lie in the source's data directory.
	path := filepath.Join(dir, "src", "hello.txt")
	_ = os.WriteFile(path, []byte("hello, group\n"), 0o644)

	rep, err := agents[0].Push(ctx, node.Object{Path: path}, "r1,r2", node.PushOptions{Strategy: "chain"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range rep.Receivers {
		fmt.Println(r.Receiver, r.OK)
	}
	// Output:
	// r1 true
	// r2 true
}

// secure gives cfg a certificate of the cluster CA in certs (made on first use) and the
// cluster's gossip key.
func secure(cfg *node.Config, certs string) error {
	if _, err := os.Stat(certs); err != nil {
		if err := identity.InitCA(certs); err != nil {
			return err
		}
		if _, err := identity.NewGossipKey(certs); err != nil {
			return err
		}
	}
	if err := identity.Issue(certs, cfg.Name, identity.RoleNode, []string{"127.0.0.1"}); err != nil {
		return err
	}
	cert, key := identity.Files(certs, cfg.Name)
	ca, _ := identity.CAFiles(certs)
	src, err := identity.Load(cert, key, ca)
	if err != nil {
		return err
	}
	keys, err := identity.ReadGossipKeys(filepath.Join(certs, "gossip.key"))
	cfg.TLS, cfg.GossipKeys = src, keys
	return err
}

// alive counts the members a sees alive.
func alive(a *node.Agent) int {
	n := 0
	for _, m := range a.Members() {
		if m.State == "alive" {
			n++
		}
	}
	return n
}
