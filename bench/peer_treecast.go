package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Treecast runs a treecast agent in every host (its own process, `treecast agent`, labelled
// with its rack), the first as the gossip seed and the others joining it, waits until the
// seed's gossip lists every agent alive, then times `treecast push OBJECT --to all --json`
// run against the source's agent, with Flags added. Every receiver's copy is the complete
// object in its agent's store (DATA/store/objects/HEX).
type Treecast struct {
	// Flags are extra flags of treecast push ("--strategy", "chain"); none: the defaults.
	Flags []string
}

// Name is "treecast" for the defaults, else "treecast " and the flags.
func (t *Treecast) Name() string {
	if len(t.Flags) == 0 {
		return "treecast (defaults)"
	}
	return "treecast " + strings.Join(t.Flags, " ")
}

// Tools is empty: the treecast binary comes from Config.Treecast.
func (t *Treecast) Tools() []Tool { return nil }

// Agent ports inside every host.
const (
	treecastGRPCPort   = "7700"
	treecastGossipPort = "7946"
)

// Run starts the agents, pushes once and returns the receivers' stores' copies.
func (t *Treecast) Run(ctx context.Context, e *Env) (map[int]string, error) {
	hosts := e.Hosts()
	bin := e.cfg.Treecast
	data := func(i int) string { return filepath.Join(e.dir, "data", hosts[i].Name) }
	grpcAddr := func(i int) string { return net.JoinHostPort(hosts[i].Addr.String(), treecastGRPCPort) }
	args := func(i int) []string {
		return []string{"agent", "--name", hosts[i].Name, "--data", data(i),
			"--listen", grpcAddr(i), "--gossip", net.JoinHostPort(hosts[i].Addr.String(), treecastGossipPort),
			"--labels", fmt.Sprintf("rack=r%d", hosts[i].Rack)}
	}
	for i := range hosts {
		if err := os.MkdirAll(data(i), 0o755); err != nil {
			return nil, err
		}
	}
	src := filepath.Join(data(0), "object")
	if err := linkOrCopy(e.object, src); err != nil {
		return nil, err
	}
	startCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	seed, err := e.exec(ctx, 0, "agent", bin, args(0)...)
	if err != nil {
		return nil, err
	}
	if _, err := seed.waitLine(startCtx, "agent "+hosts[0].Name+": grpc"); err != nil {
		return nil, err
	}
	join := net.JoinHostPort(hosts[0].Addr.String(), treecastGossipPort)
	agents := []*proc{seed}
	for i := 1; i < len(hosts); i++ {
		p, err := e.exec(ctx, i, "agent", bin, append(args(i), "--join", join)...)
		if err != nil {
			return nil, err
		}
		agents = append(agents, p)
	}
	if err := waitAll(startCtx, agents, ": grpc "); err != nil {
		return nil, err
	}
	// Every agent alive in the seed's view of the cluster.
	err = poll(startCtx, 250*time.Millisecond, "every agent in the seed's membership", func() (bool, error) {
		out, err := e.run(startCtx, 0, "members", bin, "members", "--agent", grpcAddr(0))
		if err != nil {
			return false, err
		}
		alive := 0
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[1] == "alive" {
				alive++
			}
		}
		return alive == len(hosts), nil
	})
	if err != nil {
		return nil, err
	}

	copies := map[int]string{}
	for i := 1; i < len(hosts); i++ {
		copies[i] = filepath.Join(data(i), "store", "objects", e.digest)
	}
	if err := e.Start(ctx); err != nil {
		return nil, err
	}
	pushArgs := append([]string{"push", src, "--to", "all", "--json", "--agent", grpcAddr(0)}, t.Flags...)
	push, err := e.exec(ctx, 0, "push", bin, pushArgs...)
	if err != nil {
		return nil, err
	}
	perr := push.wait(ctx)
	if err := e.Stop(ctx); err != nil {
		return copies, err
	}
	if perr != nil {
		return copies, fmt.Errorf("treecast push: %v: %s", perr, failedReceivers(push.output()))
	}
	return copies, nil
}

// failedReceivers summarizes the failed receivers of push --json output.
func failedReceivers(out string) string {
	var rep struct {
		Receivers []struct{ Name, Status, Error string }
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "{") && json.Unmarshal([]byte(l), &rep) == nil {
			var bad []string
			for _, r := range rep.Receivers {
				if r.Status != "verified" {
					bad = append(bad, r.Name+": "+r.Error)
				}
			}
			return fmt.Sprintf("%d receivers failed (%s)", len(bad), strings.Join(bad, "; "))
		}
	}
	return lastLines(out, 3)
}
