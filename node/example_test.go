package node_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/treecast/treecast/node"
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
