package node_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/identity"
	"github.com/treecast/treecast/node/nodetest"
	pb "github.com/treecast/treecast/proto/treecast/v1"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func labels(i int) map[string]string {
	return map[string]string{"dc": "east", "pod": fmt.Sprintf("p%d", i%2), "rack": fmt.Sprintf("r%d", i%3)}
}

func channels(i int) []string {
	if i%2 == 1 {
		return []string{"web"}
	}
	return []string{"db"}
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e37))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestClusterPush(t *testing.T) {
	c := nodetest.StartCluster(t, 8, nodetest.Options{Labels: labels, Channels: channels, ChunkSize: 16 << 10})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k := 0
	for _, strat := range []string{"chain", "tree", "forest", "unicast"} {
		for _, target := range []string{"all", "rack=r1", "channel:web"} {
			k++
			data := randomBytes(200_000+k*1000, uint64(k))
			path := mustWrite(t, c, 0, fmt.Sprintf("obj%d.bin", k), data)
			t.Run(strat+"/"+target, func(t *testing.T) {
				var info node.PlanInfo
				rep, err := c.Agents[0].Push(ctx, node.Object{Path: path}, target, node.PushOptions{Strategy: strat, Stripes: 3,
					Plan: func(p node.PlanInfo) { info = p }})
				if err != nil {
					t.Fatal(err)
				}
				if info.Plan == nil || len(info.Receivers) != len(rep.Receivers) {
					t.Fatalf("plan info %+v for %d receivers", info, len(rep.Receivers))
				}
				// A chain in the depth-first order of the physical tree crosses every arc at
				// most once in each direction.
				if cp := info.Plan.Copies(); strat == "chain" && cp.Max > 1+1e-9 {
					t.Errorf("chain puts %v copies on an arc", cp.Max)
				}
				if len(rep.Receivers) == 0 {
					t.Fatal("no receivers")
				}
				for _, r := range rep.Receivers {
					if !r.OK {
						t.Errorf("%s: %s", r.Receiver, r.Err)
					}
					if r.Duplicates != 0 || r.AlreadyHeld != 0 || r.BytesIn != int64(len(data)) {
						t.Errorf("%s: received %d bytes with %d duplicates and %d chunks already held, want exactly the object once",
							r.Receiver, r.BytesIn, r.Duplicates, r.AlreadyHeld)
					}
					got, err := c.Read(r.Receiver, rep.Digest)
					if err != nil {
						t.Errorf("%s: %v", r.Receiver, err)
					} else if !bytes.Equal(got, data) {
						t.Errorf("%s: copy differs", r.Receiver)
					}
				}
			})
		}
	}
}

func TestClusterCorruptChunkRefetched(t *testing.T) {
	var flips atomic.Int32
	c := nodetest.StartCluster(t, 5, nodetest.Options{ChunkSize: 8 << 10, Configure: func(i int, cfg *node.Config) {
		node.SetCorrupt(cfg, func(child string, index int, data []byte) []byte {
			if index%7 == 3 { // every relay flips a bit of some chunks it sends
				flips.Add(1)
				d := append([]byte(nil), data...)
				d[len(d)/2]++ // not an involution: a chunk corrupted twice stays corrupt
				return d
			}
			return data
		})
	}})
	data := randomBytes(100_000, 7)
	path := mustWrite(t, c, 0, "obj.bin", data)
	rep, err := c.Agents[0].Push(context.Background(), node.Object{Path: path}, "all", node.PushOptions{Strategy: "chain"})
	if err != nil {
		t.Fatal(err)
	}
	if flips.Load() == 0 {
		t.Fatal("no chunk was corrupted")
	}
	checkCopies(t, c, rep, data)
	// Every corrupted chunk was caught: rejected by its receiver's verification, or dropped
	// unverified as a duplicate of a chunk the receiver already held. With cut-through a
	// relay passes a corrupt chunk on before it finds out, so its child rejects it too:
	// rejections may outnumber corruptions.
	rejected, dups := 0, 0
	for _, a := range c.Agents[1:] {
		rejected += int(a.Metric("treecast_chunks_rejected_total"))
	}
	for _, r := range rep.Receivers {
		dups += r.Duplicates
	}
	if rejected == 0 || rejected+dups < int(flips.Load()) {
		t.Errorf("%d chunks rejected and %d duplicates, %d corrupted", rejected, dups, flips.Load())
	}
}

// checkCopies fails t for each receiver of rep that did not verify its copy, or whose store
// does not hold data under rep's digest.
func checkCopies(t *testing.T, c *nodetest.Cluster, rep node.Report, data []byte) {
	t.Helper()
	for _, r := range rep.Receivers {
		if !r.OK {
			t.Errorf("%s: %s", r.Receiver, r.Err)
			continue
		}
		if got, err := c.Read(r.Receiver, rep.Digest); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: copy differs or is missing: %v", r.Receiver, err)
		}
	}
}

func writeFile(p string, b []byte) error { return os.WriteFile(p, b, 0o644) }

// TestSubmit pushes through the gRPC Submit call, as the CLI does, and checks the event
// stream: the plan first, progress and one result per receiver, the report last.
func TestSubmit(t *testing.T) {
	c := nodetest.StartCluster(t, 5, nodetest.Options{Channels: channels, ChunkSize: 8 << 10})
	data := randomBytes(120_000, 21)
	path := mustWrite(t, c, 2, "app.tar", data)
	cl := client(t, c, c.Agents[2].Addr(), "op", identity.RoleOperator)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := cl.Submit(ctx, &pb.SubmitRequest{Object: &pb.SubmitRequest_Path{Path: path},
		Target:  &pb.Target{Kind: &pb.Target_Channel{Channel: "web"}},
		Options: &pb.PushOptions{Strategy: pb.Strategy_STRATEGY_TREE, Fanout: 2}})
	if err != nil {
		t.Fatal(err)
	}
	var events []*pb.SubmitEvent
	for {
		ev, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	if len(events) < 4 || events[0].GetAccepted().GetPushId() == "" || events[1].GetStored().GetDigest() == "" || events[2].GetPlan() == nil ||
		events[len(events)-1].GetReport() == nil {
		t.Fatalf("events %v: want the push's id first, then the object stored, a plan, and a report last", events)
	}
	plan := events[2].GetPlan()
	want := []string{"a01", "a03"} // channel web, without the source a02
	if fmt.Sprint(plan.GetReceivers()) != fmt.Sprint(want) {
		t.Fatalf("receivers %v, want %v", plan.GetReceivers(), want)
	}
	results := map[string]bool{}
	for _, ev := range events {
		if r := ev.GetResult(); r != nil {
			results[r.GetReceiver()] = r.GetStatus() == pb.ReceiverStatus_RECEIVER_STATUS_VERIFIED
		}
	}
	rep := events[len(events)-1].GetReport()
	if len(rep.GetReceivers()) != len(want) || len(results) != len(want) {
		t.Fatalf("report %v, results %v", rep, results)
	}
	for _, r := range rep.GetReceivers() {
		if r.GetStatus() != pb.ReceiverStatus_RECEIVER_STATUS_VERIFIED || !results[r.GetReceiver()] {
			t.Errorf("%s: %v %s", r.GetReceiver(), r.GetStatus(), r.GetError())
		}
		if got, err := c.Read(r.GetReceiver(), rep.GetDigest()); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: copy differs or missing: %v", r.GetReceiver(), err)
		}
	}
	// The gRPC health service answers for the agent.
	hr, err := healthpb.NewHealthClient(clientConn(t, c, c.Agents[1].Addr(), "op", identity.RoleOperator)).Check(ctx, &healthpb.HealthCheckRequest{Service: "treecast.v1.Agent"})
	if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health: %v, %v", hr, err)
	}
	// Status of a receiver lists the object as complete.
	sr, err := client(t, c, c.Agents[1].Addr(), "op", identity.RoleOperator).Status(ctx, &pb.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sr.GetObjects()) != 1 || !sr.GetObjects()[0].GetComplete() || sr.GetObjects()[0].GetDigest() != rep.GetDigest() {
		t.Errorf("status objects %v", sr.GetObjects())
	}
	if len(sr.GetMembers()) != 5 {
		t.Errorf("status lists %d members, want 5", len(sr.GetMembers()))
	}
	// Fetch serves the whole object from a receiver.
	fs, err := client(t, c, c.Agents[3].Addr(), "a00", identity.RoleNode).Fetch(ctx, &pb.FetchRequest{Digest: rep.GetDigest()})
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	for {
		m, err := fs.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m.GetChunk().GetData()...)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("fetched %d bytes, want the %d pushed", len(got), len(data))
	}
}

// TestMemoryBounded slows a relay's uplink and checks that the chunks waiting at the relay
// never exceed its queue bound, whatever the object size: back-pressure stops the source
// instead.
func TestMemoryBounded(t *testing.T) {
	const chunk, queue = 32 << 10, 4
	c := nodetest.StartCluster(t, 3, nodetest.Options{ChunkSize: chunk, Configure: func(i int, cfg *node.Config) {
		cfg.QueueChunks = queue
		if i == 1 {
			cfg.RateLimit = 8 << 20 // the relay sends at 8 MiB/s
		}
	}})
	data := randomBytes(3<<20, 5) // 96 chunks, 24 times the queue
	path := mustWrite(t, c, 0, "big.bin", data)
	rep, err := c.Agents[0].Push(context.Background(), node.Object{Path: path}, "a01,a02", node.PushOptions{Strategy: "chain"})
	if err != nil || rep.Failed() != 0 {
		t.Fatal(err, rep)
	}
	peak := c.Agents[1].Metric("treecast_queued_bytes_max")
	bound := float64((queue + 2) * chunk)
	if peak > bound {
		t.Errorf("relay queued up to %v bytes, bound %v", peak, bound)
	}
	if peak < chunk {
		t.Errorf("relay queued at most %v bytes: the slow uplink never filled its queue", peak)
	}
	if now := c.Agents[1].Metric("treecast_queued_bytes"); now != 0 {
		t.Errorf("%v bytes still queued after the push", now)
	}
	if got, err := c.Read("a02", rep.Digest); err != nil || !bytes.Equal(got, data) {
		t.Errorf("leaf copy differs or missing: %v", err)
	}
}

func TestDuplicateNameRefused(t *testing.T) {
	c := nodetest.StartCluster(t, 2, nodetest.Options{})
	cfg := node.DefaultConfig("a01", t.TempDir())
	cfg.Join = []string{c.Agents[0].GossipAddr()}
	startRefused(t, c, cfg, node.ErrNameTaken)
}

// TestRelayKilled kills a relay in the middle of a chain: its parent re-attaches the orphaned
// subtree, so every live receiver verifies, the relay is reported failed with the reason, and
// the receivers below it are sent only what they had not verified.
func TestRelayKilled(t *testing.T) {
	const chunk = 32 << 10
	c := nodetest.StartCluster(t, 5, nodetest.Options{ChunkSize: chunk, Configure: func(i int, cfg *node.Config) {
		cfg.QueueChunks = 2
		if i == 2 {
			cfg.RateLimit = 2 << 20 // a02 forwards slowly: the push is still running when it dies
		}
	}})
	data := randomBytes(2<<20, 8)
	path := mustWrite(t, c, 0, "obj.bin", data)
	type res struct {
		rep node.Report
		err error
	}
	done := make(chan res, 1)
	go func() {
		rep, err := c.Agents[0].Push(context.Background(), node.Object{Path: path}, "all", node.PushOptions{Strategy: "chain"})
		done <- res{rep, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.WaitFor(ctx, "a02 to be relaying", func() bool { return c.Agents[3].Metric("treecast_chunks_in_total") >= 4 }); err != nil {
		t.Fatal(err)
	}
	if err := c.Agents[2].Kill(); err != nil {
		t.Logf("kill a02: %v", err)
	}
	var r res
	select {
	case r = <-done:
	case <-ctx.Done():
		t.Fatal("push did not end after its relay died")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	got := map[string]node.Result{}
	for _, x := range r.rep.Receivers {
		got[x.Receiver] = x
	}
	for _, x := range r.rep.Receivers {
		t.Logf("%s ok=%v err=%s", x.Receiver, x.OK, x.Err)
	}
	if !got["a01"].OK {
		t.Errorf("a01 (above the dead relay) failed: %s", got["a01"].Err)
	}
	// a02 receives faster than it forwards (a slow child never throttles its parent): it may
	// have verified its own copy before it died. Otherwise it is failed with the reason.
	if r := got["a02"]; !r.OK && !strings.Contains(r.Err, "a02") {
		t.Errorf("a02 (killed): %+v, want verified before the kill, or failed with a reason naming it", r)
	}
	for _, name := range []string{"a03", "a04"} {
		if !got[name].OK {
			t.Errorf("%s (below the dead relay): %s, want verified after the repair", name, got[name].Err)
			continue
		}
		if b, err := c.Read(name, r.rep.Digest); err != nil || !bytes.Equal(b, data) {
			t.Errorf("%s's copy: %v", name, err)
		}
		if dup := got[name].Duplicates; dup != 0 {
			t.Errorf("%s received %d chunks it had already verified", name, dup)
		}
	}
	if n := c.Agents[1].Metric("treecast_repairs_total"); n != 1 {
		t.Errorf("a01 counted %v repairs, want 1", n)
	}
	// The orphans had verified part of the object before the relay died: the repair resent
	// only the rest.
	total := len(data) / chunk
	if in := int(c.Agents[3].Metric("treecast_chunks_in_total")); in != total {
		t.Errorf("a03 verified %d chunks in all, want %d (each once)", in, total)
	}
}

// TestPushRateLimit: a push's own rate cap bounds every sender, so a push cannot beat
// size/rate (less the token bucket's depth).
func TestPushRateLimit(t *testing.T) {
	c := nodetest.StartCluster(t, 3, nodetest.Options{ChunkSize: 32 << 10})
	data := randomBytes(1<<20, 4)
	path := mustWrite(t, c, 0, "obj.bin", data)
	const rate = 4 << 20
	rep, err := c.Agents[0].Push(context.Background(), node.Object{Path: path}, "all", node.PushOptions{Strategy: "chain", RateLimit: rate})
	if err != nil || rep.Failed() != 0 {
		t.Fatal(err, rep)
	}
	floor := time.Duration(float64(len(data)-256<<10) / rate * float64(time.Second))
	if rep.Elapsed < floor {
		t.Errorf("push took %v, faster than its cap allows (%v)", rep.Elapsed, floor)
	}
}

func mustWrite(t testing.TB, c *nodetest.Cluster, i int, name string, data []byte) string {
	t.Helper()
	p, err := c.WriteFile(i, name, data)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestReceiverRestartResumes kills a receiver in the middle of a push, restarts it on the
// same data directory, and pushes again: it keeps the chunks it had verified and receives only
// the others.
func TestReceiverRestartResumes(t *testing.T) {
	const chunk = 32 << 10
	c := nodetest.StartCluster(t, 2, nodetest.Options{ChunkSize: chunk, Configure: func(i int, cfg *node.Config) {
		if i == 0 {
			cfg.RateLimit = 4 << 20 // slow enough to kill a01 half way
		}
	}})
	data := randomBytes(2<<20, 12)
	total := len(data) / chunk
	path := mustWrite(t, c, 0, "obj.bin", data)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan node.Report, 1)
	go func() {
		rep, _ := c.Agents[0].Push(ctx, node.Object{Path: path}, "a01", node.PushOptions{Strategy: "unicast"})
		done <- rep
	}()
	if err := c.WaitFor(ctx, "a01 half way", func() bool { return c.Agents[1].Metric("treecast_chunks_in_total") >= float64(total/3) }); err != nil {
		t.Fatal(err)
	}
	gossipAddr := c.Agents[1].GossipAddr()
	if err := c.Agents[1].Kill(); err != nil {
		t.Logf("kill: %v", err)
	}
	rep := <-done
	if rep.Failed() != 1 {
		t.Fatalf("first push: %+v, want a01 failed", rep.Receivers)
	}
	// Restart a01 on its data directory and gossip address.
	cfg := node.DefaultConfig("a01", c.Dirs[1])
	cfg.GossipAddr = gossipAddr
	cfg.Join = []string{c.Agents[0].GossipAddr()}
	cfg.Logger = slog.New(slog.DiscardHandler)
	if err := c.Secure(&cfg); err != nil {
		t.Fatal(err)
	}
	a01, err := node.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a01.Close() })
	if err := c.WaitFor(ctx, "a00 to see a01 alive again", func() bool {
		for _, m := range c.Agents[0].Members() {
			if m.Name == "a01" && m.State == "alive" && m.Addr == a01.Addr() {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	rep2, err := c.Agents[0].Push(ctx, node.Object{Digest: rep.Digest}, "a01", node.PushOptions{Strategy: "unicast"})
	if err != nil || rep2.Failed() != 0 {
		t.Fatal(err, rep2.Receivers)
	}
	resent := int(a01.Metric("treecast_chunks_in_total"))
	if resent >= total || resent == 0 {
		t.Errorf("a01 received %d of %d chunks again, want only the ones it missed", resent, total)
	}
	if r := rep2.Receivers[0]; r.AlreadyHeld+resent != total || r.Duplicates != 0 {
		t.Errorf("a01 reports %d chunks already held and %d duplicates; %d were sent of %d", r.AlreadyHeld, r.Duplicates, resent, total)
	}
	var buf bytes.Buffer
	if err := a01.CopyObject(ctx, rep.Digest, &buf); err != nil || !bytes.Equal(buf.Bytes(), data) {
		t.Errorf("a01's copy differs or is missing: %v", err)
	}
	t.Logf("a01 resumed: %d of %d chunks sent again", resent, total)
}

func TestCloseIdempotent(t *testing.T) {
	c := nodetest.StartCluster(t, 3, nodetest.Options{})
	first := c.Agents[1].Close()
	if err := c.Agents[1].Close(); fmt.Sprint(err) != fmt.Sprint(first) {
		t.Errorf("second Close returned %v, first %v", err, first)
	}
	killed := c.Agents[2].Kill()
	if err := c.Agents[2].Close(); fmt.Sprint(err) != fmt.Sprint(killed) {
		t.Errorf("Close after Kill returned %v, Kill %v", err, killed)
	}
	if _, err := c.Agents[1].Push(context.Background(), node.Object{Digest: "sha256:" + strings.Repeat("0", 64)}, "all", node.PushOptions{}); !errors.Is(err, node.ErrClosed) {
		t.Errorf("Push on a closed agent: %v, want ErrClosed", err)
	}
	// The survivor sees the agent that left cleanly as gone at once (it announced it).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitFor(ctx, "a00 to see a01 leave", func() bool {
		for _, m := range c.Agents[0].Members() {
			if m.Name == "a01" {
				return m.State == "left"
			}
		}
		return false
	}); err != nil {
		t.Error(err)
	}
}

// TestStalledChildSlowsOnlyItself stalls every send to one receiver that has a sibling under
// the same relay: the relay keeps feeding the sibling (the chunks the stalled child cannot take
// wait in the store, not in memory), so every receiver outside the stalled one's subtree
// verifies while it is stalled; once released it catches up from the relay's store.
func TestStalledChildSlowsOnlyItself(t *testing.T) {
	var stalled atomic.Value // the receiver whose incoming chunks are held back
	stalled.Store("")
	var below sync.Map // the stalled receiver's subtree
	release := make(chan struct{})
	c := nodetest.StartCluster(t, 6, nodetest.Options{ChunkSize: 16 << 10, Configure: func(i int, cfg *node.Config) {
		cfg.QueueChunks = 2
		node.SetCorrupt(cfg, func(child string, _ int, data []byte) []byte {
			if child == stalled.Load().(string) {
				<-release
			}
			return data
		})
	}})
	data := randomBytes(1<<20, 51)
	path := mustWrite(t, c, 0, "obj.bin", data)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var once sync.Once
	defer once.Do(func() { close(release) })
	done := make(chan node.Report, 1)
	go func() {
		rep, err := c.Agents[0].Push(ctx, node.Object{Path: path}, "all", node.PushOptions{Strategy: "tree", Fanout: 2,
			Plan: func(p node.PlanInfo) {
				kids := map[string][]string{}
				for _, e := range p.Edges {
					kids[e.Parent] = append(kids[e.Parent], e.Child)
				}
				for parent, cs := range kids {
					if parent != p.Edges[0].Parent && len(cs) >= 2 { // a relay (not the source) with two children
						for q := []string{cs[0]}; len(q) > 0; q = append(q[1:], kids[q[0]]...) {
							below.Store(q[0], true)
						}
						stalled.Store(cs[0])
						return
					}
				}
				t.Errorf("no relay with two children in %v", p.Edges)
			}})
		if err != nil {
			t.Error(err)
		}
		done <- rep
	}()
	if err := c.WaitFor(ctx, "every receiver but the stalled one to verify", func() bool {
		s := stalled.Load().(string)
		if s == "" {
			return false
		}
		for _, a := range c.Agents[1:] {
			if _, in := below.Load(a.Name()); in {
				continue
			}
			if _, err := c.Read(a.Name(), digestOf(data)); err != nil {
				return false
			}
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(stalled.Load().(string), digestOf(data)); err == nil {
		t.Fatal("the stalled receiver verified while stalled")
	}
	once.Do(func() { close(release) })
	rep := <-done
	if rep.Failed() != 0 {
		t.Fatalf("after the release: %+v", rep.Receivers)
	}
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
