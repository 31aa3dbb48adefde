package bench

import (
	"github.com/treecast/treecast/node/identity"

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
// with its rack), the first as the gossip seed and the others joining it, waits until every
// agent's gossip lists every agent alive (the cluster formed), then times
// `treecast push OBJECT --to all --json` run against the source's agent, with Flags added.
// Every receiver's copy is the complete object in its agent's store
// (DATA/store/objects/HEX).
type Treecast struct {
	// Flags are extra flags of treecast push ("--strategy", "chain"); none: the defaults.
	Flags []string
	// JoinBatch, when positive, starts the agents (after the seed) that many at a time, each
	// batch once the previous one is up; 0 starts them all at once, as a fleet would be.
	JoinBatch int
}

// Name is "treecast" for the defaults, else "treecast " and the flags.
func (t *Treecast) Name() string {
	name := "treecast " + strings.Join(t.Flags, " ")
	if len(t.Flags) == 0 {
		name = "treecast (defaults)"
	}
	if t.JoinBatch > 0 {
		name += fmt.Sprintf(" [agents started %d at a time]", t.JoinBatch)
	}
	return name
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
	c, err := startCluster(ctx, e, t.JoinBatch)
	if err != nil {
		return nil, err
	}
	if err := e.Start(ctx); err != nil {
		return nil, err
	}
	push, err := c.push(ctx, t.Flags)
	if err != nil {
		return nil, err
	}
	perr := push.wait(ctx)
	if err := e.Stop(ctx); err != nil {
		return c.copies, err
	}
	if perr != nil {
		return c.copies, fmt.Errorf("treecast push: %v: %s", perr, failedReceivers(push.output()))
	}
	return c.copies, nil
}

// cluster is a running set of treecast agents, one per host.
type cluster struct {
	e      *Env
	agents []*proc
	src    string         // the object's path in the source's data directory
	copies map[int]string // where each receiver's store puts the complete object
	// restarts counts agents started again after their join failed.
	restarts int
	// clientTLS are the flags of the benchmark's operator certificate.
	clientTLS []string
}

// maxRestarts bounds how many times an agent whose join failed is started again.
const maxRestarts = 3

// grpcAddr is the gRPC address of host i's agent.
func (c *cluster) grpcAddr(i int) string {
	return net.JoinHostPort(c.e.Hosts()[i].Addr.String(), treecastGRPCPort)
}

// startCluster starts an agent in every host (the seed first, then the others batch at a
// time, 0: all at once) and waits until every agent's gossip lists them all alive (at most
// 3 minutes in all).
func startCluster(ctx context.Context, e *Env, batch int) (*cluster, error) {
	hosts := e.Hosts()
	bin := e.cfg.Treecast
	c := &cluster{e: e, copies: map[int]string{}}
	data := func(i int) string { return filepath.Join(e.dir, "data", hosts[i].Name) }
	// Secured as a production cluster is: a CA of the run's own issues every agent's
	// certificate and the benchmark's operator certificate; gossip is encrypted.
	certs := filepath.Join(e.dir, "certs")
	if err := identity.InitCA(certs); err != nil {
		return nil, err
	}
	gossipKey, err := identity.NewGossipKey(certs)
	if err != nil {
		return nil, err
	}
	if err := identity.Issue(certs, "bench", identity.RoleOperator, nil); err != nil {
		return nil, err
	}
	ca, _ := identity.CAFiles(certs)
	opCert, opKey := identity.Files(certs, "bench")
	c.clientTLS = []string{"--tls-cert", opCert, "--tls-key", opKey, "--tls-ca", ca}
	args := func(i int) []string {
		cert, key := identity.Files(certs, hosts[i].Name)
		return []string{"agent", "--name", hosts[i].Name, "--data", data(i),
			"--listen", c.grpcAddr(i), "--gossip", net.JoinHostPort(hosts[i].Addr.String(), treecastGossipPort),
			"--labels", fmt.Sprintf("rack=r%d", hosts[i].Rack),
			"--tls-cert", cert, "--tls-key", key, "--tls-ca", ca, "--gossip-key", gossipKey}
	}
	for i := range hosts {
		if err := identity.Issue(certs, hosts[i].Name, identity.RoleNode, []string{hosts[i].Addr.String()}); err != nil {
			return nil, err
		}
	}
	for i := range hosts {
		if err := os.MkdirAll(data(i), 0o755); err != nil {
			return nil, err
		}
		if i > 0 {
			c.copies[i] = filepath.Join(data(i), "store", "objects", e.digest)
		}
	}
	c.src = filepath.Join(data(0), "object")
	if err := linkOrCopy(e.object, c.src); err != nil {
		return nil, err
	}
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	seed, err := e.exec(ctx, 0, "agent", bin, args(0)...)
	if err != nil {
		return nil, err
	}
	if _, err := seed.waitLine(startCtx, "agent "+hosts[0].Name+": grpc"); err != nil {
		return nil, err
	}
	join := net.JoinHostPort(hosts[0].Addr.String(), treecastGossipPort)
	c.agents = []*proc{seed}
	if batch <= 0 {
		batch = len(hosts)
	}
	for from := 1; from < len(hosts); from += batch {
		for i := from; i < min(from+batch, len(hosts)); i++ {
			p, err := e.exec(ctx, i, "agent", bin, append(args(i), "--join", join)...)
			if err != nil {
				return nil, err
			}
			c.agents = append(c.agents, p)
		}
		// An agent whose join fails exits; it is started again (at most maxRestarts times,
		// as a service manager would), and each restart is noted in the run's result.
		for i := from; i < min(from+batch, len(hosts)); i++ {
			for attempt := 0; ; attempt++ {
				_, err := c.agents[i].waitLine(startCtx, ": grpc ")
				if err == nil {
					break
				}
				if c.agents[i].running() || attempt == maxRestarts || startCtx.Err() != nil {
					return nil, err
				}
				c.restarts++
				e.note(fmt.Sprintf("agent %s restarted after: %s", hosts[i].Name, firstLine(lastLines(c.agents[i].output(), 1))))
				p, err := e.exec(ctx, i, "agent-retry", bin, append(args(i), "--join", join)...)
				if err != nil {
					return nil, err
				}
				c.agents[i] = p
			}
		}
	}
	// The cluster is formed when every agent's gossip lists every agent alive, as a running
	// cluster's does: the seed first (it learns of the others first), then each other agent.
	// A push started as soon as the seed lists them all would share the hosts' CPUs with the
	// gossip still spreading the joins (the first seconds after 64 agents start at once),
	// which is the cluster forming, not the push.
	for i := range hosts {
		err := poll(startCtx, 250*time.Millisecond, fmt.Sprintf("every agent in %s's membership", hosts[i].Name), func() (bool, error) {
			n, err := c.alive(startCtx, i)
			return n == len(hosts), err
		})
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// alive returns how many agents host i's agent lists alive (treecast members, run in host
// i's namespace).
func (c *cluster) alive(ctx context.Context, i int) (int, error) {
	out, err := c.e.run(ctx, i, "members", c.e.cfg.Treecast, append([]string{"members", "--agent", c.grpcAddr(i)}, c.clientTLS...)...)
	if err != nil {
		return 0, err
	}
	alive := 0
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[1] == "alive" {
			alive++
		}
	}
	return alive, nil
}

// push starts treecast push of the object to all, with flags, from the source (agent:PATH:
// the source agent reads the object in its data directory, no upload).
func (c *cluster) push(ctx context.Context, flags []string) (*proc, error) {
	src, err := filepath.Abs(c.src)
	if err != nil {
		return nil, err
	}
	args := append(append([]string{"push", "agent:" + src, "--to", "all", "--json", "--agent", c.grpcAddr(0)}, c.clientTLS...), flags...)
	return c.e.exec(ctx, 0, "push", c.e.cfg.Treecast, args...)
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
