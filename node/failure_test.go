package node_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/nodetest"
)

// The failure suite: seeded, repeatable scenarios on a real loopback cluster (gRPC over TCP,
// gossip, stores on disk) in which relays die at random points of a push. After every run it
// checks the invariants of reliable delivery:
//   - every live target holds a byte-exact copy;
//   - no agent ever exposes an object that is not byte-exact (a watcher hashes every copy the
//     moment it becomes visible, during the push);
//   - nothing a receiver had verified is sent to it again: without parity a live receiver
//     gets every chunk exactly once, repairs included; with parity, the only repeats are the
//     chunks it decoded before their own tree brought them.
//
// TREECAST_FAILURE_SEEDS=N runs N seeds per scenario (default 2, the bounded form CI runs).

type failureScenario struct {
	name     string
	strategy string
	stripes  int
	parity   int
	freeze   bool // the victims hang with their connections open instead of dying
	// victims picks the relays to kill from the plan's edges.
	victims func(r *rand.Rand, edges []node.PlanEdge, src string) []string
}

// relaysOf lists the agents that forward to someone, in some tree, sorted.
func relaysOf(edges []node.PlanEdge, src string) []string {
	seen := map[string]bool{}
	for _, e := range edges {
		if e.Parent != src {
			seen[e.Parent] = true
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

func pick(r *rand.Rand, from []string, n int) []string {
	from = slices.Clone(from)
	r.Shuffle(len(from), func(i, j int) { from[i], from[j] = from[j], from[i] })
	return from[:min(n, len(from))]
}

// stripeParents lists the relays of one tree (chosen by r).
func stripeParents(r *rand.Rand, edges []node.PlanEdge, src string) []string {
	trees := 0
	for _, e := range edges {
		trees = max(trees, e.Stripe+1)
	}
	s := r.IntN(trees)
	var in []node.PlanEdge
	for _, e := range edges {
		if e.Stripe == s {
			in = append(in, e)
		}
	}
	return relaysOf(in, src)
}

var failureScenarios = []failureScenario{
	{name: "tree/one-relay", strategy: "tree", victims: func(r *rand.Rand, e []node.PlanEdge, src string) []string { return pick(r, relaysOf(e, src), 1) }},
	{name: "chain/three-relays", strategy: "chain", victims: func(r *rand.Rand, e []node.PlanEdge, src string) []string { return pick(r, relaysOf(e, src), 3) }},
	{name: "forest/stripe-parents", strategy: "forest", stripes: 3, victims: stripeParents},
	{name: "forest+parity/stripe-parents", strategy: "forest", stripes: 3, parity: 1, victims: stripeParents},
	{name: "forest+parity/two-relays", strategy: "forest", stripes: 3, parity: 1, victims: func(r *rand.Rand, e []node.PlanEdge, src string) []string { return pick(r, relaysOf(e, src), 2) }},
	{name: "tree/one-relay-frozen", strategy: "tree", freeze: true, victims: func(r *rand.Rand, e []node.PlanEdge, src string) []string { return pick(r, relaysOf(e, src), 1) }},
	{name: "forest+parity/stripe-parents-frozen", strategy: "forest", stripes: 3, parity: 1, freeze: true, victims: stripeParents},
}

func failureSeeds(t *testing.T) int {
	if s := os.Getenv("TREECAST_FAILURE_SEEDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("TREECAST_FAILURE_SEEDS=%q: want a positive number", s)
		}
		return n
	}
	return 2
}

func TestFailureSuite(t *testing.T) {
	seeds := failureSeeds(t)
	for _, sc := range failureScenarios {
		for seed := 1; seed <= seeds; seed++ {
			t.Run(fmt.Sprintf("%s/seed%d", sc.name, seed), func(t *testing.T) { runFailure(t, sc, uint64(seed)) })
		}
	}
}

func runFailure(t *testing.T, sc failureScenario, seed uint64) {
	const (
		agents = 12
		chunk  = 16 << 10
		size   = 1 << 20
	)
	r := rand.New(rand.NewPCG(seed, 0xfa11))
	c := nodetest.StartCluster(t, agents, nodetest.Options{ChunkSize: chunk, Labels: func(i int) map[string]string {
		return map[string]string{"rack": fmt.Sprint("r", i/4), "pod": fmt.Sprint("p", i/8)}
	}, Configure: func(i int, cfg *node.Config) {
		cfg.QueueChunks = 2
		cfg.StallTimeout = 20 * time.Second
		node.SetFastFailureDetection(cfg) // a frozen relay is noticed by gossip only
	}})
	data := randomBytes(size, seed)
	sum := sha256.Sum256(data)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	path := mustWrite(t, c, 0, "obj.bin", data)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The watcher: any copy that becomes visible must be byte-exact.
	var (
		mu      sync.Mutex
		dead    = map[string]bool{}
		checked = map[string]bool{}
		exposed []string
	)
	watchCtx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, a := range c.Agents[1:] {
				mu.Lock()
				skip := dead[a.Name()] || checked[a.Name()]
				mu.Unlock()
				if skip {
					continue
				}
				h := sha256.New()
				if err := a.CopyObject(watchCtx, digest, h); err != nil {
					continue // not visible (yet), or the agent is being killed
				}
				mu.Lock()
				checked[a.Name()] = true
				if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest {
					exposed = append(exposed, a.Name()+" exposed "+got)
				}
				mu.Unlock()
			}
			select {
			case <-watchCtx.Done():
				return
			case <-tick.C:
			}
		}
	}()

	plan := make(chan []node.PlanEdge, 1)
	done := make(chan node.Report, 1)
	go func() {
		rep, err := c.Agents[0].Push(ctx, node.Object{Path: path}, "all", node.PushOptions{
			Strategy: sc.strategy, Stripes: sc.stripes, Parity: sc.parity, RateLimit: 3 << 20,
			Plan: func(p node.PlanInfo) { plan <- p.Edges },
		})
		if err != nil {
			t.Error(err)
		}
		done <- rep
	}()
	edges := <-plan
	victims := sc.victims(r, edges, c.Agents[0].Name())
	if len(victims) == 0 {
		t.Fatalf("the %s plan has no relay to kill: %v", sc.strategy, edges)
	}
	// Kill them when the receivers together hold a random 20% to 80% of what they get.
	frac := 0.2 + 0.6*r.Float64()
	chunks := size / chunk
	if err := c.WaitFor(ctx, "the kill point", func() bool {
		got := 0.0
		for _, a := range c.Agents[1:] {
			got += a.Metric("treecast_chunks_in_total")
		}
		return got >= frac*float64(chunks*(agents-1))
	}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	for _, v := range victims {
		dead[v] = true
	}
	mu.Unlock()
	for _, v := range victims {
		if sc.freeze {
			c.Agent(v).Freeze()
		} else {
			_ = c.Agent(v).Kill()
		}
	}
	rep := <-done
	if ctx.Err() != nil {
		t.Fatalf("the push did not end in time: %+v", rep.Receivers)
	}
	for _, v := range victims {
		_ = c.Agent(v).Kill() // a frozen agent ends only so
	}
	stopWatch()
	wg.Wait()
	t.Logf("killed %v at %.0f%%; push took %v", victims, 100*frac, rep.Elapsed.Round(time.Millisecond))

	for _, e := range exposed {
		t.Error(e)
	}
	for _, res := range rep.Receivers {
		name := res.Receiver
		if dead[name] {
			if res.OK {
				// It may have verified before it died: then its copy must be exact.
				continue
			}
			if res.Err == "" {
				t.Errorf("%s (killed): failed without a reason", name)
			}
			continue
		}
		if !res.OK {
			t.Errorf("%s (live): %s", name, res.Err)
			continue
		}
		got, err := c.Read(name, digest)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: copy differs or is missing: %v", name, err)
		}
		a := c.Agent(name)
		decoded := int(a.Metric("treecast_chunks_decoded_total"))
		switch {
		case sc.parity == 0 && res.Duplicates != 0:
			t.Errorf("%s received %d chunks it had already verified", name, res.Duplicates)
		case sc.parity == 0 && int(a.Metric("treecast_chunks_in_total")) != chunks:
			t.Errorf("%s verified %v chunks, want each of the %d once", name, a.Metric("treecast_chunks_in_total"), chunks)
		case sc.parity > 0 && res.Duplicates > decoded:
			t.Errorf("%s received %d chunks it held, more than the %d it decoded", name, res.Duplicates, decoded)
		}
	}
}

// TestReceiverRestartMidPush kills a receiver during a push and starts it again at once on
// the same data directory and addresses: its parent reopens the stream, the same push
// completes, and the chunks it had verified before the crash are not sent again.
func TestReceiverRestartMidPush(t *testing.T) {
	const chunk = 32 << 10
	c := nodetest.StartCluster(t, 2, nodetest.Options{ChunkSize: chunk})
	data := randomBytes(2<<20, 21)
	total := len(data) / chunk
	path := mustWrite(t, c, 0, "obj.bin", data)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan node.Report, 1)
	go func() {
		rep, err := c.Agents[0].Push(ctx, node.Object{Path: path}, "a01", node.PushOptions{Strategy: "unicast", RateLimit: 4 << 20})
		if err != nil {
			t.Error(err)
		}
		done <- rep
	}()
	old := c.Agents[1]
	if err := c.WaitFor(ctx, "a01 a third of the way", func() bool { return old.Metric("treecast_chunks_in_total") >= float64(total/3) }); err != nil {
		t.Fatal(err)
	}
	listen, gossip := old.Addr(), old.GossipAddr() // the same ports: its parent dials them again
	_ = old.Kill()
	before := int(old.Metric("treecast_chunks_in_total"))
	cfg := node.DefaultConfig("a01", c.Dirs[1])
	cfg.ListenAddr, cfg.GossipAddr = listen, gossip
	cfg.Join = []string{c.Agents[0].GossipAddr()}
	cfg.ChunkSize = chunk
	cfg.Logger = slog.New(slog.DiscardHandler)
	if err := c.Secure(&cfg); err != nil {
		t.Fatal(err)
	}
	a01, err := node.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a01.Close() })
	rep := <-done
	if len(rep.Receivers) != 1 || !rep.Receivers[0].OK {
		t.Fatalf("push: %+v, want a01 verified after its restart", rep.Receivers)
	}
	after := int(a01.Metric("treecast_chunks_in_total"))
	if before+after != total || rep.Receivers[0].Duplicates != 0 {
		t.Errorf("a01 verified %d chunks before the crash and %d after (%d duplicates); want %d in all, each once",
			before, after, rep.Receivers[0].Duplicates, total)
	}
	var buf bytes.Buffer
	if err := a01.CopyObject(ctx, rep.Digest, &buf); err != nil || !bytes.Equal(buf.Bytes(), data) {
		t.Errorf("a01's copy after the restart: %v", err)
	}
	t.Logf("a01: %d chunks before the crash, %d after, push %v", before, after, rep.Elapsed.Round(time.Millisecond))
}

// partition is a gossip partition between agents of one process: the agents with index
// below cut gossip with the others while it is on.
type partition struct {
	mu    sync.Mutex
	on    bool
	cut   int
	group map[string]int // gossip address -> agent index
}

func (p *partition) blocked(self int) func(peer string) bool {
	return func(peer string) bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		other, ok := p.group[peer]
		return p.on && ok && (self < p.cut) != (other < p.cut)
	}
}

func (p *partition) set(on bool) {
	p.mu.Lock()
	p.on = on
	p.mu.Unlock()
}

// TestGossipPartitionHeal partitions the gossip of a 6-agent cluster in two halves. Each half
// declares the other dead, and a push from one half reaches its own half only. After the
// partition heals, the agents rejoin, and the same push again reaches everyone: the half
// that had the object is sent nothing, the other half gets it once.
func TestGossipPartitionHeal(t *testing.T) {
	const n = 6
	part := &partition{cut: n / 2, group: map[string]int{}}
	c := nodetest.StartCluster(t, n, nodetest.Options{ChunkSize: 16 << 10, Configure: func(i int, cfg *node.Config) {
		cfg.RejoinInterval = 200 * time.Millisecond
		node.SetGossipFilter(cfg, part.blocked(i))
		node.SetFastFailureDetection(cfg)
	}})
	part.mu.Lock()
	for i, a := range c.Agents {
		part.group[a.GossipAddr()] = i
	}
	part.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sees := func(a *node.Agent) (alive int) {
		for _, m := range a.Members() {
			if m.State == "alive" {
				alive++
			}
		}
		return alive
	}

	start := time.Now()
	part.set(true)
	if err := c.WaitFor(ctx, "each half to see only itself", func() bool {
		for _, a := range c.Agents {
			if sees(a) != n/2 {
				return false
			}
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("partitioned in %v", time.Since(start).Round(time.Millisecond))
	data := randomBytes(1<<20, 31)
	path := mustWrite(t, c, 0, "obj.bin", data)
	rep, err := c.Agents[0].Push(ctx, node.Object{Path: path}, "all", node.PushOptions{Strategy: "tree"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Receivers) != n/2-1 || rep.Failed() != 0 {
		t.Fatalf("push during the partition: %+v, want the %d other agents of its half verified", rep.Receivers, n/2-1)
	}

	start = time.Now()
	part.set(false)
	if err := c.WaitFor(ctx, "the halves to rejoin", func() bool {
		for _, a := range c.Agents {
			if sees(a) != n {
				return false
			}
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("healed in %v", time.Since(start).Round(time.Millisecond))
	rep, err = c.Agents[0].Push(ctx, node.Object{Digest: rep.Digest}, "all", node.PushOptions{Strategy: "tree"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Receivers) != n-1 || rep.Failed() != 0 {
		t.Fatalf("push after the heal: %+v, want all %d others verified", rep.Receivers, n-1)
	}
	for _, r := range rep.Receivers {
		i := slices.IndexFunc(c.Agents, func(a *node.Agent) bool { return a.Name() == r.Receiver })
		switch {
		case r.Duplicates != 0:
			t.Errorf("%s received %d chunks it held", r.Receiver, r.Duplicates)
		case i < n/2 && r.BytesIn != 0:
			t.Errorf("%s already held the object but was sent %d bytes", r.Receiver, r.BytesIn)
		case i >= n/2 && r.BytesIn != int64(len(data)):
			t.Errorf("%s was sent %d bytes, want the object once (%d)", r.Receiver, r.BytesIn, len(data))
		}
		if got, err := c.Read(r.Receiver, rep.Digest); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: copy differs or is missing: %v", r.Receiver, err)
		}
	}
}

// TestSourceDiesPushResumedElsewhere kills the source in the middle of a push; the same push
// run again (same digest) from another agent that holds the object completes it, and the
// receivers are sent only the chunks they had not verified.
func TestSourceDiesPushResumedElsewhere(t *testing.T) {
	const chunk = 16 << 10
	c := nodetest.StartCluster(t, 6, nodetest.Options{ChunkSize: chunk})
	data := randomBytes(1<<20, 41)
	total := len(data) / chunk
	// a05 holds the object too (an origin replica); a00 pushes it to a01..a04.
	digest, err := c.Agents[5].Put(mustWrite(t, c, 5, "obj.bin", data), chunk)
	if err != nil {
		t.Fatal(err)
	}
	path := mustWrite(t, c, 0, "obj.bin", data)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	targets := "a01,a02,a03,a04"
	go func() {
		_, _ = c.Agents[0].Push(ctx, node.Object{Path: path}, targets, node.PushOptions{Strategy: "chain", RateLimit: 2 << 20})
	}()
	if err := c.WaitFor(ctx, "a quarter of the push", func() bool {
		return c.Agents[4].Metric("treecast_chunks_in_total") >= float64(total/4)
	}); err != nil {
		t.Fatal(err)
	}
	_ = c.Agents[0].Kill()
	before := map[string]int{}
	for _, a := range c.Agents[1:5] {
		before[a.Name()] = int(a.Metric("treecast_chunks_in_total"))
	}
	rep, err := c.Agents[5].Push(ctx, node.Object{Digest: digest}, targets, node.PushOptions{Strategy: "chain"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Receivers {
		if !r.OK {
			t.Errorf("%s: %s", r.Receiver, r.Err)
			continue
		}
		if got, err := c.Read(r.Receiver, digest); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: copy differs or is missing: %v", r.Receiver, err)
		}
		// The resumed push sent only what the receiver had not verified when it reached it.
		// (The dead source's chain may still deliver a chunk or two it had in flight.)
		if r.AlreadyHeld < before[r.Receiver] || r.Duplicates != 0 || r.BytesIn > int64((total-r.AlreadyHeld)*chunk) {
			t.Errorf("%s: %d chunks verified before the source died, %d held when the resumed push reached it; it sent %d bytes (%d duplicates), want at most the %d missing chunks",
				r.Receiver, before[r.Receiver], r.AlreadyHeld, r.BytesIn, r.Duplicates, total-r.AlreadyHeld)
		}
	}
}
