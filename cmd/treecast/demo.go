package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/identity"
	"github.com/treecast/treecast/node/nodetest"
	pb "github.com/treecast/treecast/proto/treecast/v1"
	"github.com/treecast/treecast/scheduler"
	"github.com/treecast/treecast/tree"
)

func init() { commands = append(commands, newDemoCmd) }

// demoResult is the last line of `treecast demo --json`.
type demoResult struct {
	Receivers int     `json:"receivers"`
	Verified  int     `json:"verified"`
	Seconds   float64 `json:"seconds"`
	Bytes     int64   `json:"bytes"`
	MBps      float64 `json:"mb_per_s"`
	Digest    string  `json:"digest"`
	Strategy  string  `json:"strategy"`
	Depth     int     `json:"depth"`
	// Plan is the plan the source ran, as push --json carries it.
	Plan       *scheduler.Summary `json:"plan,omitempty"`
	Copies     planCopies         `json:"copies"`
	LowerBound float64            `json:"lower_bound"`
	Killed     int                `json:"killed"`
	// BytesReceived sums the chunk bytes every receiver got (data and parity, repairs
	// included); Duplicates the chunks a receiver got although it held them; Decoded the data
	// chunks rebuilt from parity.
	BytesReceived uint64 `json:"bytes_received"`
	Duplicates    uint64 `json:"duplicate_chunks"`
	Decoded       uint64 `json:"decoded_chunks"`
	// LiveSeconds is when the last live receiver had verified its copy (Seconds also waits
	// for the verdicts on the killed ones).
	LiveSeconds float64 `json:"live_seconds"`
	// KilledNames are the relays killed mid-push (--kill).
	KilledNames []string `json:"killed_names,omitempty"`
}

func newDemoCmd() *cobra.Command {
	var (
		pf      pushFlags
		nodes   int
		size    string
		rack    int
		kill    int
		hang    bool
		verbose bool
		web     bool
		webWait time.Duration
	)
	c := &cobra.Command{
		Use:   "demo",
		Short: "Run a local cluster of agents, push a random object to all of them, and report",
		Long: `Start a cluster of real agents on this machine (gRPC over TCP on 127.0.0.1, gossip
membership, stores on disk in a temporary directory), write a random object into the first
agent's store, push it to every other agent through the first agent's gRPC Submit call, check
every copy byte for byte, print the plan, the per-receiver table and the plan's copies per arc
on the topology inferred from the agents' rack labels, and clean up.

With --kill N, N relays of the plan (the receivers that forward to the most others) are
killed halfway through the push, as a crash would kill them: their parents re-attach the
orphaned subtrees, and the push completes for every live receiver. With --hang they stop dead
instead, their connections open, so that only gossip's failure detection notices them (with
--parity, receivers decode what they miss without waiting for it).`,
		Example: `  treecast demo
  treecast demo --nodes 16 --size 1GiB --strategy forest --stripes 4
  treecast demo --kill 2 --strategy forest --stripes 3 --parity 1
  treecast demo --json | tail -n 1`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			opts, err := pf.options()
			if err != nil {
				return err
			}
			bytes, err := parseSize(size)
			if err != nil {
				return usageErr(fmt.Errorf("--size: %w", err))
			}
			if nodes < 2 || nodes > 64 {
				return usageErr(fmt.Errorf("--nodes %d: want 2 to 64", nodes))
			}
			if rack < 1 {
				return usageErr(fmt.Errorf("--rack %d: want at least 1", rack))
			}
			if kill < 0 || kill > nodes-2 {
				return usageErr(fmt.Errorf("--kill %d: want 0 to %d (the source and one receiver stay)", kill, nodes-2))
			}
			return runDemo(c, demoConfig{nodes: nodes, size: bytes, rack: rack, kill: kill, hang: hang, opts: opts, asJSON: pf.asJSON, verbose: verbose,
				web: web, webWait: webWait})
		},
	}
	pf.register(c)
	c.Flags().IntVar(&nodes, "nodes", 8, "agents in the cluster, the source included")
	c.Flags().StringVar(&size, "size", "64MiB", "size of the random object")
	c.Flags().IntVar(&rack, "rack", 4, "agents per rack label (racks are grouped two to a pod)")
	c.Flags().IntVar(&kill, "kill", 0, "relays to kill halfway through the push")
	c.Flags().BoolVar(&hang, "hang", false, "with --kill: the relays hang with their connections open (a host that stops dead) instead of crashing")
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "show the agents' logs")
	c.Flags().BoolVar(&web, "web", false, "serve the source agent's live view (printed URL, on 127.0.0.1) and keep the cluster up until Ctrl-C")
	c.Flags().DurationVar(&webWait, "web-wait", time.Minute, "with --web: wait this long for a browser to open the view before pushing (0: push at once)")
	return c
}

type demoConfig struct {
	nodes, rack int
	kill        int
	hang        bool
	size        int64
	opts        *pb.PushOptions
	asJSON      bool
	verbose     bool
	web         bool          // serve the live view, keep the cluster up until ctx ends
	webWait     time.Duration // wait for a browser before pushing
}

func runDemo(c *cobra.Command, cfg demoConfig) error {
	ctx := c.Context()
	out, errw := c.OutOrStdout(), c.ErrOrStderr()
	say := func(format string, args ...any) {
		if !cfg.asJSON {
			fmt.Fprintf(out, format, args...)
		}
	}
	logger := slog.New(slog.DiscardHandler)
	if cfg.verbose {
		logger = slog.New(slog.NewTextHandler(errw, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}

	// 1. The cluster: real agents, each joining the earlier ones, until gossip converges.
	cl, err := nodetest.Start(ctx, cfg.nodes, nodetest.Options{
		Logger:  logger,
		Timeout: 30 * time.Second,
		Configure: func(i int, c *node.Config) {
			c.ChunkSize = int(cfg.opts.GetChunkSize()) // 0: the plan chooses
			if cfg.web && i == 0 {
				c.MetricsAddr = "127.0.0.1:0" // the source's page and events
			}
		},
		Labels: func(i int) map[string]string {
			r := i / cfg.rack
			return map[string]string{"dc": "local", "pod": "p" + strconv.Itoa(r/2), "rack": "r" + strconv.Itoa(r)}
		},
	})
	if err != nil {
		return fmt.Errorf("starting the cluster: %w", err)
	}
	defer cl.Close()
	agents := cl.Agents
	say("cluster: %d agents on 127.0.0.1 (gRPC + gossip), %d per rack, stores under %s\n", cfg.nodes, cfg.rack, filepath.Dir(cl.Dirs[0]))
	say("security: mutual TLS 1.3 on every gRPC connection (a throwaway CA in %s), gossip encrypted with AES-GCM,\n          manifests sealed by the node that hashed the object (BLAKE3 chunks)\n", cl.CertDir)

	src := agents[0]
	if cfg.web {
		v, err := demoView(c, cl, cfg)
		if err != nil {
			return err
		}
		defer v.Close()
	}

	// 2. A random object in the source's data directory.
	path := filepath.Join(cl.Dirs[0], "demo-object.bin")
	want, err := writeRandom(path, cfg.size)
	if err != nil {
		return err
	}
	say("object: %s random bytes, %s\n", humanBytes(cfg.size), want)

	// 3. The push, through the source agent's gRPC service.
	// The demo's operator: a certificate of the cluster's CA with role operator, so the push
	// travels over mutual TLS like every other connection of the cluster.
	conn, err := cl.Dial(src.Addr(), "operator", identity.RoleOperator)
	if err != nil {
		return err
	}
	defer conn.Close()
	client := pb.NewAgentClient(conn)
	req := &pb.SubmitRequest{Target: &pb.Target{Kind: &pb.Target_All{All: true}}, Options: cfg.opts}
	if err := objectRequest(req, path); err != nil {
		return err
	}
	p, err := demoPlan(src, cfg.opts, cfg.size)
	if err != nil {
		return err
	}
	victims, err := relaysToKill(p, cfg.kill)
	if err != nil {
		return err
	}
	stream, err := client.Submit(ctx, req)
	if err != nil {
		return err
	}
	killed := make(chan []string, 1)
	stopKiller := make(chan struct{})
	go func() {
		killed <- killHalfway(cl, victims, cfg.hang, cfg.size, p.ChunkSize, stopKiller)
	}()
	planEv, report, err := followPush(stream, newPushView(errw, cfg.asJSON))
	close(stopKiller)
	dead := <-killed
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	if len(dead) > 0 {
		say("killed mid-push: %v\n", dead)
	}
	if report.GetDigest() != want {
		return fmt.Errorf("the agent stored digest %s, the file's is %s", report.GetDigest(), want)
	}

	// 4. Every live copy, byte for byte.
	verified := 0
	gone := map[string]bool{}
	for _, d := range dead {
		gone[d] = true
	}
	// One copy per CPU at a time: hashing them is most of the check.
	var (
		checkMu sync.Mutex
		checkWG sync.WaitGroup
		slots   = make(chan struct{}, runtime.NumCPU())
	)
	for _, a := range agents[1:] {
		if gone[a.Name()] {
			continue
		}
		slots <- struct{}{}
		checkWG.Add(1)
		go func() {
			defer func() { <-slots; checkWG.Done() }()
			h := sha256.New()
			if err := a.CopyObject(ctx, want, h); err == nil && "sha256:"+hex.EncodeToString(h.Sum(nil)) == want {
				checkMu.Lock()
				verified++
				checkMu.Unlock()
			}
		}()
	}
	checkWG.Wait()

	// 5. The plan and what it costs on the inferred topology.
	copies := p.Copies()
	lb, _ := p.LowerBound()
	if !cfg.asJSON {
		printPlan(out, planEv, p)
		fmt.Fprintln(out)
		writeReport(out, report, uint64(cfg.size))
		fmt.Fprintf(out, "\nbyte-exact copies checked: %d of %d live receivers (%d killed)\n", verified, cfg.nodes-1-len(dead), len(dead))
		var in, dup, dec uint64
		for _, r := range report.GetReceivers() {
			in, dup, dec = in+r.GetBytesReceived(), dup+r.GetChunksDuplicate(), dec+r.GetChunksDecoded()
		}
		fmt.Fprintf(out, "received %s in all (%.2f objects per receiver), %d chunks sent twice, %d decoded from parity\n",
			humanBytes(int64(in)), float64(in)/float64(max(cfg.size, 1))/float64(cfg.nodes-1), dup, dec)
		printCopies(out, p, copies, lb)
	}
	secs := report.GetElapsed().AsDuration().Seconds()
	res := demoResult{Receivers: cfg.nodes - 1, Verified: verified, Seconds: secs, Bytes: cfg.size, Digest: want,
		Strategy: string(p.Strategy), Depth: p.Depth(), LowerBound: lb,
		Copies: planCopies{Max: copies.Max, MaxSwitch: copies.MaxSwitch, MaxHost: copies.MaxHost, Total: copies.Total},
		Killed: len(dead), KilledNames: dead}
	if s := planEv.GetSummary(); s != nil {
		sm := summaryOf(s)
		res.Plan = &sm
	}
	for _, r := range report.GetReceivers() {
		if !gone[r.GetReceiver()] {
			res.LiveSeconds = max(res.LiveSeconds, r.GetElapsed().AsDuration().Seconds())
		}
		res.BytesReceived += r.GetBytesReceived()
		res.Duplicates += r.GetChunksDuplicate()
		res.Decoded += r.GetChunksDecoded()
	}
	if secs > 0 {
		res.MBps = float64(cfg.size) / 1e6 / secs
	}
	if cfg.asJSON {
		if err := encodeJSON(out, res); err != nil {
			return err
		}
	}
	if cfg.web {
		fmt.Fprintln(errw, "the cluster stays up for the live view; Ctrl-C stops it")
		<-ctx.Done()
	}
	if live := cfg.nodes - 1 - len(dead); verified != live {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d live receivers hold a verified copy", verified, live)}
	}
	return nil
}

// relaysToKill picks the n receivers of plan p that forward to the most others (over every
// tree), ties broken by name.
func relaysToKill(p *scheduler.Plan, n int) ([]string, error) {
	if n == 0 {
		return nil, nil
	}
	w := p.Wire()
	below := map[string]int{}
	for s := range w.Stripes() {
		var count func(v string) int
		count = func(v string) int {
			k := 0
			for _, c := range w.Children(v, s) {
				k += 1 + count(c)
			}
			return k
		}
		for _, v := range w.Nodes()[1:] {
			below[v] += count(v)
		}
	}
	var relays []string
	for v, k := range below {
		if k > 0 {
			relays = append(relays, v)
		}
	}
	sort.Slice(relays, func(i, j int) bool {
		if below[relays[i]] != below[relays[j]] {
			return below[relays[i]] > below[relays[j]]
		}
		return relays[i] < relays[j]
	})
	if len(relays) < n {
		return nil, usageErr(fmt.Errorf("--kill %d: the %s plan has only %d relays", n, p.Strategy, len(relays)))
	}
	return relays[:n], nil
}

// killHalfway kills the named agents, hard (or freezes them, with hang), once the receivers
// together hold half of what the push sends them, and returns the names it stopped (none when
// stop closes first).
func killHalfway(cl *nodetest.Cluster, names []string, hang bool, size int64, chunk int, stop <-chan struct{}) []string {
	if len(names) == 0 {
		return nil
	}
	chunks := (size + int64(chunk) - 1) / int64(chunk)
	half := float64(chunks*int64(len(cl.Agents)-1)) / 2
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		sum := 0.0
		for _, a := range cl.Agents[1:] {
			sum += a.Metric("treecast_chunks_in_total")
		}
		if sum >= half {
			break
		}
		select {
		case <-stop:
			return nil
		case <-tick.C:
		}
	}
	for _, n := range names {
		if hang {
			cl.Agent(n).Freeze()
		} else {
			_ = cl.Agent(n).Kill()
		}
	}
	return names
}

// writeRandom writes size pseudo-random bytes to path and returns their digest.
func writeRandom(path string, size int64) (string, error) {
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	seed := [32]byte{}
	binaryTime := uint64(time.Now().UnixNano())
	for i := range 8 {
		seed[i] = byte(binaryTime >> (8 * i))
	}
	rng := rand.NewChaCha8(seed)
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	if _, err := io.CopyN(w, rng, size); err != nil {
		return "", err
	}
	if err := w.Flush(); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), f.Close()
}

// demoPlan rebuilds the plan the source ran: the same inference from the members' labels and
// the same options, which the scheduler turns into the same plan.
func demoPlan(src *node.Agent, opts *pb.PushOptions, size int64) (*scheduler.Plan, error) {
	var infos []scheduler.AgentInfo
	var dsts []string
	for _, m := range src.Members() {
		infos = append(infos, scheduler.AgentInfo{Name: m.Name, Labels: m.Labels})
		if m.Name != src.Name() {
			dsts = append(dsts, m.Name)
		}
	}
	g, err := scheduler.InferTopology(infos)
	if err != nil {
		return nil, err
	}
	s, _ := g.Lookup(src.Name())
	var ids []tree.NodeID
	for _, d := range dsts {
		v, _ := g.Lookup(d)
		ids = append(ids, v)
	}
	strategy := map[pb.Strategy]scheduler.Strategy{pb.Strategy_STRATEGY_CHAIN: scheduler.StrategyChain, pb.Strategy_STRATEGY_TREE: scheduler.StrategyTree,
		pb.Strategy_STRATEGY_FOREST: scheduler.StrategyForest, pb.Strategy_STRATEGY_UNICAST: scheduler.StrategyUnicast}[opts.GetStrategy()]
	if strategy == "" {
		strategy = scheduler.StrategyAuto
	}
	so := scheduler.Options{Strategy: strategy, Fanout: int(opts.GetFanout()), Parity: int(opts.GetParity()),
		ObjectSize: size, ChunkSize: int(opts.GetChunkSize())}
	if strategy == scheduler.StrategyForest {
		so.Stripes = int(opts.GetStripes())
	}
	return scheduler.Build(g, s, ids, so)
}

func printPlan(w io.Writer, ev *pb.PlanEvent, p *scheduler.Plan) {
	fmt.Fprintf(w, "\nplan: %s\n", p.Summary())
	byStripe := map[uint32][]string{}
	for _, e := range ev.GetEdges() {
		byStripe[e.GetStripe()] = append(byStripe[e.GetStripe()], e.GetParent()+"->"+e.GetChild())
	}
	stripes := make([]int, 0, len(byStripe))
	for s := range byStripe {
		stripes = append(stripes, int(s))
	}
	sort.Ints(stripes)
	for _, s := range stripes {
		fmt.Fprintf(w, "  tree %d: %v\n", s, byStripe[uint32(s)])
	}
}

func printCopies(w io.Writer, p *scheduler.Plan, c scheduler.Copies, lb float64) {
	g := p.Graph
	fmt.Fprintf(w, "copies per arc on the inferred topology (%d hosts, %d switches): max %.2f, switch-to-switch %.2f, host %.2f; total %.2f, lower bound %.0f\n",
		len(g.Hosts()), g.NumNodes()-len(g.Hosts()), c.Max, c.MaxSwitch, c.MaxHost, c.Total, lb)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ARC\tCOPIES")
	for a, v := range c.PerArc {
		if v > 0 {
			arc := g.Arc(tree.ArcID(a))
			fmt.Fprintf(tw, "  %s -> %s\t%.2f\n", g.NodeName(arc.From), g.NodeName(arc.To), v)
		}
	}
	tw.Flush()
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}
