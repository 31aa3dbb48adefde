package transfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/treecast/treecast/node/membership"
	"github.com/treecast/treecast/scheduler"
	"github.com/treecast/treecast/tree"
)

// This file tests the forwarding engine on its own: agents built without sockets, joined by
// an in-process transport, over an in-memory store and a static membership.

// memNet connects engine agents in process: addresses are agent names.
type memNet struct {
	mu     sync.Mutex
	agents map[string]*testAgent
	wg     sync.WaitGroup
	warmed map[string]bool // names the engines asked to warm
	// gates holds the streams opened to a name until the gate is closed; each opening sends
	// on the gate's hit channel first (if it has room).
	gates map[string]memGate
	held  []string // receivers in the order they answered a stream's header
	// lateClose names children whose streams' CloseSend returns io.EOF once the child has
	// ended the stream (its answer raced the close, as a socket's can).
	lateClose map[string]bool
}

type memGate struct{ open, hit chan struct{} }

// gate makes streams opened to name wait until the returned release is called; hit receives
// when one is waiting.
func (n *memNet) gate(name string) (release func(), hit <-chan struct{}) {
	g := memGate{open: make(chan struct{}), hit: make(chan struct{}, 1)}
	n.mu.Lock()
	if n.gates == nil {
		n.gates = map[string]memGate{}
	}
	n.gates[name] = g
	n.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(g.open) }) }, g.hit
}

// heldOrder returns the receivers in the order they answered a header.
func (n *memNet) heldOrder() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.held...)
}

// Warm records the names: memNet's streams need no connection.
func (n *memNet) Warm(_ context.Context, names []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.warmed == nil {
		n.warmed = map[string]bool{}
	}
	for _, name := range names {
		n.warmed[name] = true
	}
}

type memMsg struct {
	hdr   *Header
	frame Frame
	held  []byte
	up    *UpMsg
	eof   bool
}

// memPipe is one Push stream: down carries header and chunks, up carries held and upMsgs.
type memPipe struct {
	ctx    context.Context
	down   chan memMsg
	up     chan memMsg
	net    *memNet
	to     string
	served chan struct{} // closed when the child's end of the stream returned
}

func (p *memPipe) SendHeader(h Header) error { return p.push(p.down, memMsg{hdr: &h}) }
func (p *memPipe) RecvHeld() ([]byte, error) {
	m, err := p.pull(p.up)
	return m.held, err
}

// SendFrame passes the frame on with a reference of its own to its buffer, which the receiver
// frees (the contract of Upstream and Downstream).
func (p *memPipe) SendFrame(f Frame) error {
	f.Buf.Ref()
	err := p.push(p.down, memMsg{frame: f})
	if err != nil {
		f.Buf.Free()
	}
	return err
}
func (p *memPipe) CloseSend() error {
	if err := p.push(p.down, memMsg{eof: true}); err != nil {
		return err
	}
	p.net.mu.Lock()
	late := p.net.lateClose[p.to]
	p.net.mu.Unlock()
	if !late {
		return nil
	}
	select {
	case <-p.served:
		return io.EOF
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
}
func (p *memPipe) RecvUp() (UpMsg, error) {
	m, err := p.pull(p.up)
	if err != nil {
		return UpMsg{}, err
	}
	return *m.up, nil
}

// server side
type memDown struct{ p *memPipe }

func (d memDown) RecvFrame() (Frame, error) {
	m, err := d.p.pull(d.p.down)
	return m.frame, err
}
func (d memDown) SendHeld(b []byte) error {
	d.p.net.mu.Lock()
	d.p.net.held = append(d.p.net.held, d.p.to)
	d.p.net.mu.Unlock()
	return d.p.push(d.p.up, memMsg{held: b})
}
func (d memDown) SendUp(u UpMsg) error { return d.p.push(d.p.up, memMsg{up: &u}) }

func (p *memPipe) push(c chan memMsg, m memMsg) error {
	select {
	case c <- m:
		return nil
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
}

func (p *memPipe) pull(c chan memMsg) (memMsg, error) {
	select {
	case m, ok := <-c:
		if !ok || m.eof {
			return memMsg{}, io.EOF
		}
		return m, nil
	case <-p.ctx.Done():
		return memMsg{}, p.ctx.Err()
	}
}

func (n *memNet) OpenPush(ctx context.Context, addr, _ string) (Upstream, error) {
	n.mu.Lock()
	b := n.agents[addr]
	g, gated := n.gates[addr]
	n.mu.Unlock()
	if b == nil {
		return nil, fmt.Errorf("memnet: no agent %s", addr)
	}
	if gated {
		select {
		case g.hit <- struct{}{}:
		default:
		}
		select {
		case <-g.open:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	p := &memPipe{ctx: ctx, down: make(chan memMsg, 1), up: make(chan memMsg, 1), net: n, to: addr, served: make(chan struct{})}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		m, err := p.pull(p.down)
		if err != nil {
			return
		}
		_ = b.e.Receive(ctx, *m.hdr, memDown{p})
		close(p.up)
		close(p.served)
	}()
	return p, nil
}

func (n *memNet) FetchChunk(ctx context.Context, addr, digest string, i int) ([]byte, error) {
	n.mu.Lock()
	b := n.agents[addr]
	n.mu.Unlock()
	if b == nil {
		return nil, fmt.Errorf("memnet: no agent %s", addr)
	}
	return b.e.LocalChunk(digest, i)
}

// testAgent is an engine with its own store, in process.
type testAgent struct {
	name   string
	e      *Engine
	store  *memStore
	m      *Metrics
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
}

func (a *testAgent) goFunc(f func()) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return false
	}
	a.wg.Add(1)
	go func() { defer a.wg.Done(); f() }()
	return true
}

func (a *testAgent) Name() string { return a.name }

func newEngineCluster(t *testing.T, n int, corrupt func(string, int, []byte) []byte) ([]*testAgent, *memNet) {
	t.Helper()
	net := &memNet{agents: map[string]*testAgent{}}
	members := membership.NewStatic()
	var agents []*testAgent
	for i := range n {
		name := fmt.Sprintf("a%02d", i)
		a := &testAgent{name: name, store: newMemStore(), m: NewMetrics(prometheus.NewRegistry())}
		a.ctx, a.cancel = context.WithCancel(context.Background())
		a.e = New(Config{Name: name, QueueChunks: 2, StallTimeout: 30 * time.Second, Corrupt: corrupt},
			Deps{Store: a.store, Members: members, Transport: net, Metrics: a.m, Log: slog.New(slog.DiscardHandler),
				Context: a.ctx, Go: a.goFunc})
		members.Add(membership.Member{Name: name, Addr: name, State: "alive"})
		net.agents[name] = a
		agents = append(agents, a)
	}
	t.Cleanup(func() {
		for _, a := range agents {
			a.mu.Lock()
			a.closed = true
			a.mu.Unlock()
			a.cancel()
			a.wg.Wait()
		}
		net.wg.Wait()
	})
	return agents, net
}

// testPlan plans a push from src to dsts as an agent would (no labels: one flat rack).
func testPlan(t *testing.T, src string, dsts []string, opts scheduler.Options) (Plan, []byte) {
	t.Helper()
	agents := []scheduler.AgentInfo{{Name: src}}
	for _, d := range dsts {
		agents = append(agents, scheduler.AgentInfo{Name: d})
	}
	g, err := scheduler.InferTopology(agents)
	if err != nil {
		t.Fatal(err)
	}
	srcID, _ := g.Lookup(src)
	var ids []tree.NodeID
	for _, d := range dsts {
		id, _ := g.Lookup(d)
		ids = append(ids, id)
	}
	p, err := scheduler.Build(g, srcID, ids, opts)
	if err != nil {
		t.Fatal(err)
	}
	w := p.Wire()
	raw, err := w.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := DecodePlan(raw)
	if err != nil {
		t.Fatal(err)
	}
	return dec, raw
}

// push runs a push of the object m of src's store to dsts.
func push(t *testing.T, src *testAgent, m Manifest, dsts []string, opts scheduler.Options, progress func(Event)) Report {
	t.Helper()
	p, raw := testPlan(t, src.name, dsts, opts)
	out, err := src.e.Prepare(m, p)
	if err != nil {
		t.Fatal(err)
	}
	return src.e.Push(context.Background(), out, Push{ID: fmt.Sprintf("push-%s-%d", src.name, len(dsts)), PlanRaw: raw, Receivers: dsts, Progress: progress})
}

func strategy(t *testing.T, s string) scheduler.Strategy {
	st, err := scheduler.ParseStrategy(s)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func randomObject(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

func TestEngineStrategies(t *testing.T) {
	for _, strat := range []string{"chain", "tree", "unicast", "forest", "forest+parity"} {
		for target, want := range map[string][]string{
			"all":  {"a01", "a02", "a03", "a04", "a05", "a06"},
			"odd":  {"a01", "a03", "a05"},
			"even": {"a02", "a04", "a06"},
			"two":  {"a03", "a05"},
		} {
			t.Run(strat+"/"+target, func(t *testing.T) {
				agents, _ := newEngineCluster(t, 7, nil)
				data := randomObject(10_500, 3)
				src := agents[0]
				m, err := src.store.Put(bytes.NewReader(data), 1000)
				if err != nil {
					t.Fatal(err)
				}
				var mu sync.Mutex
				events := 0
				opts := scheduler.Options{Fanout: 2}
				if strat == "forest+parity" {
					opts.Strategy, opts.Parity, opts.Stripes = strategy(t, "forest"), 1, 3
				} else {
					opts.Strategy = strategy(t, strat)
				}
				if strat == "forest" {
					opts.Stripes = 3
				}
				rep := push(t, src, m, want, opts, func(Event) { mu.Lock(); events++; mu.Unlock() })
				var got []string
				for _, r := range rep.Receivers {
					got = append(got, r.Receiver)
					if !r.OK {
						t.Errorf("%s failed: %s", r.Receiver, r.Err)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("receivers %v, want %v", got, want)
				}
				for _, a := range agents[1:] {
					sel := sort.SearchStrings(want, a.Name()) < len(want) && want[sort.SearchStrings(want, a.Name())] == a.Name()
					obj := a.store.object(m.Digest())
					if sel && !bytes.Equal(obj, data) {
						t.Errorf("%s: copy differs (%d bytes)", a.Name(), len(obj))
					}
					if !sel && len(obj) != 0 {
						t.Errorf("%s: not a receiver but holds the object", a.Name())
					}
				}
				if events < len(want) {
					t.Errorf("%d progress events for %d receivers", events, len(want))
				}
			})
		}
	}
}

// TestEngineChildEndsFirst: a child whose whole subtree verified may end its stream before
// its parent's close does (a socket's close then fails with io.EOF): the parent counts no
// error and repairs nothing. (Seen on the 8x8 testbed as "child stream failed: EOF" after
// leaves had committed.)
func TestEngineChildEndsFirst(t *testing.T) {
	agents, net := newEngineCluster(t, 4, nil)
	net.lateClose = map[string]bool{"a01": true, "a02": true, "a03": true}
	data := randomObject(20_000, 5)
	m, err := agents[0].store.Put(bytes.NewReader(data), 1000)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a01", "a02", "a03"}
	rep := push(t, agents[0], m, want, scheduler.Options{Strategy: strategy(t, "chain")}, nil)
	for _, r := range rep.Receivers {
		if !r.OK {
			t.Errorf("%s failed: %s", r.Receiver, r.Err)
		}
	}
	for _, a := range agents {
		if n := testutil.ToFloat64(a.m.errors.WithLabelValues("child")); n != 0 {
			t.Errorf("%s counted %v child stream errors", a.name, n)
		}
		if n := testutil.ToFloat64(a.m.repairs); n != 0 {
			t.Errorf("%s repaired %v times", a.name, n)
		}
	}
}

func TestEngineCorruptChunkRefetched(t *testing.T) {
	var mu sync.Mutex
	flipped := 0
	corrupt := func(child string, i int, data []byte) []byte {
		mu.Lock()
		defer mu.Unlock()
		if i == 4 && child == "a03" {
			flipped++
			c := append([]byte(nil), data...)
			c[0] ^= 0xff
			return c
		}
		return data
	}
	agents, _ := newEngineCluster(t, 6, corrupt)
	data := randomObject(9000, 5)
	m, _ := agents[0].store.Put(bytes.NewReader(data), 1000)
	rep := push(t, agents[0], m, []string{"a01", "a02", "a03", "a04", "a05"}, scheduler.Options{Strategy: strategy(t, "chain")}, nil)
	if rep.Failed() != 0 {
		t.Fatalf("failures: %+v", rep.Receivers)
	}
	if flipped == 0 {
		t.Fatal("corruption hook never ran")
	}
	for _, a := range agents[1:] {
		if !bytes.Equal(a.store.object(m.Digest()), data) {
			t.Errorf("%s: copy differs", a.Name())
		}
	}
}

// scriptDown is a Downstream that replays given chunks then EOF (or an error).
type scriptDown struct {
	chunks []queued
	end    error
	ups    []UpMsg
	held   []byte
}

func (d *scriptDown) RecvFrame() (Frame, error) {
	if len(d.chunks) == 0 {
		return Frame{}, d.end
	}
	q := d.chunks[0]
	d.chunks = d.chunks[1:]
	return Frame{Index: q.index, Data: q.data}, nil
}
func (d *scriptDown) SendHeld(b []byte) error { d.held = b; return nil }
func (d *scriptDown) SendUp(m UpMsg) error    { d.ups = append(d.ups, m); return nil }

func TestEngineBadStreams(t *testing.T) {
	agents, _ := newEngineCluster(t, 3, nil)
	data := randomObject(5000, 9)
	m, _ := agents[0].store.Put(bytes.NewReader(data), 1000)
	p, raw := testPlan(t, "a00", []string{"a01"}, scheduler.Options{Strategy: strategy(t, "chain")})
	if p.Stripes() != 1 {
		t.Fatalf("%d stripes", p.Stripes())
	}
	chunk := func(i int) queued { c, _ := agents[0].store.ReadChunk(m.Digest(), i); return queued{index: i, data: c} }
	hdr := Header{Transfer: "t1", Manifest: m, Plan: raw, Child: "a01", Parent: "a00", Source: "a00"}
	cases := []struct {
		name string
		hdr  func(h Header) Header
		down *scriptDown
		want error
	}{
		{"truncated", nil, &scriptDown{chunks: []queued{chunk(0), chunk(1)}, end: io.EOF}, ErrTruncated},
		{"broken", nil, &scriptDown{chunks: []queued{chunk(0)}, end: errors.New("connection reset")}, ErrParentLost},
		{"chunk out of range", nil, &scriptDown{chunks: []queued{{index: 7, data: []byte("x")}}, end: io.EOF}, ErrBadHeader},
		{"wrong child", func(h Header) Header { h.Child = "a02"; return h }, &scriptDown{end: io.EOF}, ErrBadHeader},
		{"bad plan", func(h Header) Header { h.Plan = []byte("{"); return h }, &scriptDown{end: io.EOF}, ErrBadHeader},
		{"no transfer id", func(h Header) Header { h.Transfer = ""; return h }, &scriptDown{end: io.EOF}, ErrBadHeader},
	}
	for k, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := hdr
			h.Transfer = fmt.Sprintf("t%d", k)
			if c.hdr != nil {
				h = c.hdr(h)
			}
			err := agents[1].e.Receive(context.Background(), h, c.down)
			if err == nil {
				t.Fatal("receive succeeded")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if _, serr := agents[1].store.Stat(m.Digest()); serr == nil {
				t.Fatal("object visible after a failed stream")
			}
			if len(c.down.ups) > 0 && !errors.Is(err, ErrParentLost) {
				last := c.down.ups[len(c.down.ups)-1]
				if !last.Final || last.OK || last.Err == "" {
					t.Fatalf("last message up %+v, want a failure", last)
				}
			}
		})
	}
}

// TestEngineOrphanReattach: a stream that breaks orphans the stripe instead of failing the
// receiver; a new parent re-attaches it, is told what is held (nothing is sent twice) and
// gets the result; with nobody re-attaching, the stall timeout fails the transfer.
func TestEngineOrphanReattach(t *testing.T) {
	agents, _ := newEngineCluster(t, 3, nil)
	data := randomObject(5000, 11)
	m, _ := agents[0].store.Put(bytes.NewReader(data), 1000)
	_, raw := testPlan(t, "a00", []string{"a01"}, scheduler.Options{Strategy: strategy(t, "chain")})
	chunk := func(i int) queued { c, _ := agents[0].store.ReadChunk(m.Digest(), i); return queued{index: i, data: c} }
	hdr := Header{Transfer: "t1", Manifest: m, Plan: raw, Child: "a01", Parent: "a00", Source: "a00"}
	first := &scriptDown{chunks: []queued{chunk(0), chunk(1)}, end: errors.New("connection reset")}
	if err := agents[1].e.Receive(context.Background(), hdr, first); !errors.Is(err, ErrParentLost) {
		t.Fatalf("broken stream: %v, want ErrParentLost", err)
	}
	for _, m := range first.ups {
		if m.Final {
			t.Fatalf("a broken stream got a result: %+v", m)
		}
	}
	second := &scriptDown{chunks: []queued{chunk(2), chunk(3), chunk(4)}, end: io.EOF}
	hdr.Parent = "a02"
	if err := agents[1].e.Receive(context.Background(), hdr, second); err != nil {
		t.Fatalf("re-attached stream: %v", err)
	}
	if got := bitCount(second.held); got != 2 {
		t.Errorf("the new parent was told %d chunks are held, want 2", got)
	}
	last := second.ups[len(second.ups)-1]
	if !last.Final || !last.OK || last.Receiver != "a01" {
		t.Fatalf("last message up %+v, want a01 verified", last)
	}
	if got := agents[1].store.object(m.Digest()); !bytes.Equal(got, data) {
		t.Fatalf("copy after re-attach differs (%d bytes)", len(got))
	}

	// Nobody re-attaches: the transfer fails after the stall timeout and shows nothing.
	agents[2].e.cfg.StallTimeout = 50 * time.Millisecond
	hdr = Header{Transfer: "t2", Manifest: m, Plan: raw, Child: "a02", Parent: "a00", Source: "a00"}
	_, raw2 := testPlan(t, "a00", []string{"a02"}, scheduler.Options{Strategy: strategy(t, "chain")})
	hdr.Plan = raw2
	if err := agents[2].e.Receive(context.Background(), hdr, &scriptDown{chunks: []queued{chunk(0)}, end: errors.New("reset")}); !errors.Is(err, ErrParentLost) {
		t.Fatalf("broken stream: %v", err)
	}
	if !eventually(10*time.Second, func() bool { return agents[2].transferCount() == 0 }) {
		t.Fatalf("%d transfers still open after the stall timeout", agents[2].transferCount())
	}
	if _, err := agents[2].store.Stat(m.Digest()); err == nil {
		t.Fatal("an orphaned, stalled transfer made its object visible")
	}
}

func bitCount(b []byte) int {
	n := 0
	for i := range len(b) * 8 {
		if bitGet(b, i) {
			n++
		}
	}
	return n
}

// eventually polls cond every few milliseconds until it holds (true) or the deadline passes.
func eventually(within time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			return cond()
		case <-tick.C:
		}
	}
	return true
}

func (a *testAgent) transferCount() int {
	a.e.mu.Lock()
	defer a.e.mu.Unlock()
	return len(a.e.transfers)
}

// TestEngineParityDecode: a receiver fed by K of its K+M trees decodes the data chunks of the
// missing tree, verifies them against the manifest and completes without waiting for it.
func TestEngineParityDecode(t *testing.T) {
	for _, tc := range []struct{ k, m, size, missing int }{
		{2, 1, 10_500, 2}, // a parity tree lost
		{2, 1, 10_500, 0}, // a data tree lost
		{3, 2, 9_000, 1},  // short last group, two trees lost
	} {
		t.Run(fmt.Sprintf("k%d_m%d_lose%d", tc.k, tc.m, tc.missing), func(t *testing.T) {
			agents, _ := newEngineCluster(t, 2, nil)
			data := randomObject(tc.size, 5)
			m, _ := agents[0].store.Put(bytes.NewReader(data), 1000)
			p, raw := testPlan(t, "a00", []string{"a01"}, scheduler.Options{Strategy: strategy(t, "forest"), Stripes: tc.k, Parity: tc.m})
			lay := newLayout(p, m.NumChunks())
			read := func(i int) ([]byte, error) { return agents[0].store.ReadChunk(m.Digest(), i) }
			c, _ := newCoder(lay, 1000)
			pm, err := parityManifest(m, c, read)
			if err != nil {
				t.Fatal(err)
			}
			gc := newGroupCache(c, read)
			lost := map[int]bool{tc.missing: true}
			if tc.m == 2 {
				lost[(tc.missing+1)%lay.trees] = true
			}
			var wg sync.WaitGroup
			errs := make([]error, lay.trees)
			downs := make([]*scriptDown, lay.trees)
			decodedBefore := testutil.ToFloat64(agents[1].m.chunksDecoded)
			for s := range lay.trees {
				if lost[s] {
					continue
				}
				var chunks []queued
				for _, i := range lay.chunks(s) {
					d, err := read(i)
					if lay.isParity(i) {
						d, err = gc.chunk(i)
					}
					if err != nil {
						t.Fatal(err)
					}
					chunks = append(chunks, queued{index: i, data: d})
				}
				hdr := Header{Transfer: "t", Manifest: pm, Plan: raw, Child: "a01", Parent: "a00", Source: "a00", Stripe: s}
				downs[s] = &scriptDown{chunks: chunks, end: io.EOF}
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[s] = agents[1].e.Receive(context.Background(), hdr, downs[s])
				}()
			}
			wg.Wait()
			for s, err := range errs {
				if err != nil {
					t.Errorf("tree %d: %v", s, err)
				}
			}
			if got := agents[1].store.object(m.Digest()); !bytes.Equal(got, data) {
				t.Fatalf("decoded copy differs (%d bytes of %d)", len(got), len(data))
			}
			want := 0
			for s := range lost {
				for _, i := range lay.chunks(s) {
					if !lay.isParity(i) {
						want++
					}
				}
			}
			// A group may also be decoded before a slower tree brings its piece: that piece
			// then arrives as a duplicate. So decoded = lost data chunks + duplicates.
			dups := 0
			for _, d := range downs {
				if d != nil && len(d.ups) > 0 {
					dups = d.ups[len(d.ups)-1].Duplicates
				}
			}
			if got := int(testutil.ToFloat64(agents[1].m.chunksDecoded) - decodedBefore); got != want+dups {
				t.Errorf("%d chunks decoded, want the %d data chunks of the lost trees plus the %d that arrived after they were decoded", got, want, dups)
			}
		})
	}
}

// TestLayout checks the parity layout against its definition: every chunk travels on exactly
// one tree, chunks(s) and tree(i) agree, and no tree carries two pieces of a group.
func TestLayout(t *testing.T) {
	for _, tc := range []struct{ trees, k, m, n int }{{3, 0, 0, 10}, {3, 2, 1, 10}, {5, 3, 2, 7}, {6, 4, 2, 1}, {4, 3, 1, 0}} {
		l := layout{trees: tc.trees, k: tc.k, m: tc.m, n: tc.n}
		seen := map[int]int{}
		for s := range l.trees {
			groups := map[int]bool{}
			for _, i := range l.chunks(s) {
				if l.tree(i) != s {
					t.Errorf("%+v: chunk %d listed on tree %d, tree() says %d", tc, i, s, l.tree(i))
				}
				if l.m > 0 {
					if groups[l.group(i)] {
						t.Errorf("%+v: tree %d carries two pieces of group %d", tc, s, l.group(i))
					}
					groups[l.group(i)] = true
				}
				seen[i]++
			}
		}
		if len(seen) != l.total() {
			t.Errorf("%+v: %d chunks travel, want %d", tc, len(seen), l.total())
		}
		for i, c := range seen {
			if c != 1 || i < 0 || i >= l.total() {
				t.Errorf("%+v: chunk %d travels %d times", tc, i, c)
			}
		}
	}
}

func nilRegistry() *prometheus.Registry { return prometheus.NewRegistry() }

// TestPlanAddrsKeepsPlanNodes: a header's addresses are kept and passed on only for nodes of
// its plan; anything else it carries is dropped.
func TestPlanAddrsKeepsPlanNodes(t *testing.T) {
	raw, err := (&scheduler.Wire{Strategy: scheduler.StrategyChain, Source: "s", DataStripes: 1,
		Trees: [][][2]string{{{"s", "a"}, {"a", "b"}}}}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	p, err := DecodePlan(raw)
	if err != nil {
		t.Fatal(err)
	}
	got := planAddrs(p, map[string]string{"a": "10.0.0.1:7700", "b": "10.0.0.2:7700", "x": "10.0.0.9:7700", "s": ""})
	want := map[string]string{"a": "10.0.0.1:7700", "b": "10.0.0.2:7700"}
	if !maps.Equal(got, want) {
		t.Errorf("planAddrs = %v, want %v", got, want)
	}
	if got := planAddrs(p, nil); got != nil {
		t.Errorf("planAddrs of no addresses = %v, want nil", got)
	}
}
