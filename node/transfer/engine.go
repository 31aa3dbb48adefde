package transfer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/treecast/treecast/node/store"
)

// Errors of the engine. They are wrapped with context (%w); the agent maps them to gRPC
// status codes at its RPC edge.
var (
	ErrClosed        = errors.New("transfer: agent closed")
	ErrUnknownDigest = errors.New("transfer: unknown digest")
	ErrTruncated     = errors.New("transfer: stream ended before every chunk arrived")
	ErrBadHeader     = errors.New("transfer: bad push header")
	ErrChildFailed   = errors.New("transfer: child stream failed")
	ErrStalled       = errors.New("transfer: transfer stalled")
	ErrManifest      = errors.New("transfer: bad manifest")
	ErrParentLost    = errors.New("transfer: parent stream lost")
	ErrPlan          = errors.New("transfer: bad plan")
)

// Config tunes the engine.
type Config struct {
	// Name is this agent's member name: the receiver it is in plans.
	Name string
	// QueueChunks bounds the chunks queued per child of a transfer.
	QueueChunks int
	// StallTimeout fails a receiver's transfer that gets no chunk for that long once one of
	// its streams has ended, and bounds how long an orphaned stripe waits for a new parent.
	StallTimeout time.Duration
	// Corrupt, a test hook, may alter a chunk this agent sends on a Push stream to child.
	Corrupt func(child string, index int, data []byte) []byte
	// Limits on a plan received from a parent: the agents it names, this agent's children in
	// one stripe, and the depth of this agent's subtree (0: none). A plan past them is
	// refused with ErrBadHeader before anything is allocated for it.
	MaxPlanNodes, MaxFanout, MaxDepth int
	// SendTimeout fails a child that takes nothing for that long (it stopped reading): it is
	// reported failed, not reopened, and its subtree is re-attached. 0: none.
	SendTimeout time.Duration
}

// Deps are the engine's parts, given by the agent.
type Deps struct {
	Store     Store
	Members   Members
	Transport Transport
	Metrics   *Metrics
	Log       *slog.Logger
	// Limiter caps everything this agent sends (nil: no cap).
	Limiter *rate.Limiter
	// Context is the agent's lifetime: cancelled when it stops.
	Context context.Context
	// Go runs f in a goroutine the agent owns (its Close waits for it); it runs nothing and
	// reports false once the agent is stopping.
	Go func(f func()) bool
	// Hang blocks while the agent is frozen (a test hook: a host that stops dead); nil: never.
	Hang func()
	// Committed, when not nil, is called once per transfer on a receiver that committed the
	// object (or already held it), with the push's Meta, before the receiver's result goes
	// up; what it returns travels in the result. It may block (bounded by the caller).
	Committed func(digest string, meta Meta) *Hook
	// OnRepair, when not nil, is told of every repair this agent makes (see [Repair]). It is
	// called from the repairing goroutine and must not block.
	OnRepair func(Repair)
}

// Engine is an agent's forwarding engine: the state of every push it takes part in, as a
// source ([Engine.Push]) or a receiver ([Engine.Receive]). All methods are safe for
// concurrent use.
type Engine struct {
	cfg      Config
	store    Store
	members  Members
	net      Transport
	m        *Metrics
	log      *slog.Logger
	limiter  *rate.Limiter
	ctx      context.Context
	goFunc   func(func()) bool
	hangFn   func()
	onCommit func(string, Meta) *Hook
	repairs  func(Repair)

	mu        sync.Mutex
	closed    bool
	transfers map[string]*receiver // receiver side, by transfer id
	sources   map[string]*tally    // source side, by transfer id
}

// New returns an engine over the agent's parts.
func New(cfg Config, d Deps) *Engine {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Engine{cfg: cfg, store: d.Store, members: d.Members, net: d.Transport, m: d.Metrics, log: d.Log,
		limiter: d.Limiter, ctx: d.Context, goFunc: d.Go, hangFn: d.Hang, onCommit: d.Committed, repairs: d.OnRepair,
		transfers: map[string]*receiver{}, sources: map[string]*tally{}}
}

// Close refuses new incoming transfers from now on ([ErrClosed]); running ones go on until
// the agent's context ends. Idempotent.
func (e *Engine) Close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
}

// hang blocks while the agent is frozen.
func (e *Engine) hang() {
	if e.hangFn != nil {
		e.hangFn()
	}
}

// waitRate blocks until n bytes may be sent under the agent's rate cap.
func (e *Engine) waitRate(ctx context.Context, n int) error { return WaitLimiter(ctx, e.limiter, n) }

// RateBurst is a rate cap's token bucket depth: the most sent at once above the cap.
const RateBurst = 256 << 10

// NewLimiter returns a token bucket of bytesPerSec, or nil for no cap.
func NewLimiter(bytesPerSec int64) *rate.Limiter {
	if bytesPerSec <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(bytesPerSec), RateBurst)
}

// WaitLimiter blocks until n bytes may be sent under l (in pieces of at most the bucket's
// depth); a nil l never blocks.
func WaitLimiter(ctx context.Context, l *rate.Limiter, n int) error {
	if l == nil {
		return nil
	}
	for n > 0 {
		k := min(n, RateBurst)
		if err := l.WaitN(ctx, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// attach returns the receiver transfer of hdr, creating it on the first stream: the plan is
// decoded, the manifest checked and the partial object begun (answering what is held).
func (e *Engine) attach(hdr Header) (*receiver, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	if t, ok := e.transfers[hdr.Transfer]; ok {
		if t.man.Digest() != hdr.Manifest.Digest() {
			return nil, fmt.Errorf("%w: transfer %s carries %s, not %s", ErrBadHeader, hdr.Transfer, hdr.Manifest.Digest(), t.man.Digest())
		}
		t.refs++
		return t, nil
	}
	if hdr.Transfer == "" {
		return nil, fmt.Errorf("%w: no transfer id", ErrBadHeader)
	}
	p, err := DecodePlan(hdr.Plan)
	if err != nil {
		return nil, fmt.Errorf("%w: plan: %w", ErrBadHeader, err)
	}
	if err := e.checkPlan(p); err != nil {
		return nil, fmt.Errorf("%w: plan: %w", ErrBadHeader, err)
	}
	if hdr.Stripe < 0 || hdr.Stripe >= p.Stripes() {
		return nil, fmt.Errorf("%w: stripe %d of %d", ErrBadHeader, hdr.Stripe, p.Stripes())
	}
	n := hdr.Manifest.NumChunks()
	lay := newLayout(p, n)
	smf, err := store.ManifestFromProto(hdr.Manifest.Proto())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrManifest, err)
	}
	var code *coder
	if lay.m > 0 {
		if smf.Parity == nil || smf.Parity.DataShards != lay.k || smf.Parity.ParityShards != lay.m {
			return nil, fmt.Errorf("%w: the plan codes %d+%d pieces per group, the manifest's parity does not match", ErrBadHeader, lay.k, lay.m)
		}
		if code, err = newCoder(lay, smf.ChunkSize); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadHeader, err)
		}
	}
	// An object new to this agent is begun (its staging files created) while the first
	// stream's children are dialled: the two are independent until the holding answer,
	// and both lie on every hop of the setup wave. An object the store holds some of is
	// begun first, so that the forwarders start with what it holds.
	fs, ok := e.store.(FreshStore)
	late := ok && n > 0 && fs.Fresh(hdr.Manifest.Digest())
	var part Partial
	if !late {
		if part, err = e.store.Begin(hdr.Manifest); err != nil {
			return nil, fmt.Errorf("transfer: begin %s: %w", hdr.Manifest.Digest(), err)
		}
	}
	t := &receiver{
		e: e, id: hdr.Transfer, man: hdr.Manifest, plan: p, planRaw: hdr.Plan, addrs: planAddrs(p, hdr.Addrs), source: hdr.Source, meta: hdr.Meta,
		start: time.Now(), partial: part, rate: hdr.Rate, limiter: NewLimiter(hdr.Rate),
		lay: lay, code: code, smf: smf, parity: map[int]keptPiece{}, decoding: map[int]bool{},
		held: newBitmap(lay.total()), claims: map[int]*claim{}, claimed: make(chan struct{}), fwd: map[int][]*forwarder{},
		started: map[int]bool{}, ended: map[int]bool{}, finals: map[int]map[string]UpMsg{},
		refs: 1, done: make(chan struct{}), begun: make(chan struct{}),
	}
	if code != nil {
		t.recode = newGroupCache(code, t.readChunk)
	}
	if late {
		if !e.goFunc(t.begin) {
			t.begin() // the agent is stopping: the stream ends soon anyway
		}
	} else {
		t.addHeldLocked(part.Held())
		t.npreheld = t.nheld
		close(t.begun)
	}
	e.transfers[t.id] = t
	e.goFunc(func() { e.warm(p) }) // not under e.mu: the transport takes the agent's locks
	e.m.active.Inc()
	if t.nheld == n {
		// Everything was already here (a resumed or repeated push): commit at once.
		t.commit()
	}
	return t, nil
}

// warm asks the transport to open connections to this agent's children in every stripe of
// p (the first stream of a transfer has arrived; the others' headers follow). Cost: one
// connection per distinct child, opened in the background.
func (e *Engine) warm(p Plan) {
	w, ok := e.net.(Warmer)
	if !ok {
		return
	}
	var kids []string
	for s := range p.Stripes() {
		kids = append(kids, p.Children(e.cfg.Name, s)...)
	}
	if kids = dedupSorted(kids); len(kids) > 0 {
		w.Warm(e.ctx, kids)
	}
}

// retain takes one more reference on a transfer (an orphaned stripe's waiter).
func (e *Engine) retain(t *receiver) {
	e.mu.Lock()
	t.refs++
	e.mu.Unlock()
}

// detach drops one stream's reference; the last one ends the transfer, discarding the partial
// object unless it was committed.
func (e *Engine) detach(t *receiver) {
	e.mu.Lock()
	t.refs--
	last := t.refs == 0
	if last {
		delete(e.transfers, t.id)
		e.m.active.Dec()
	}
	e.mu.Unlock()
	if !last {
		return
	}
	t.mu.Lock()
	select {
	case <-t.done:
	default:
		t.err = fmt.Errorf("%w: %d of %d chunks", ErrTruncated, t.nheld, t.man.NumChunks())
		close(t.done)
	}
	err := t.err
	t.mu.Unlock()
	result := "verified"
	if err != nil {
		result = "failed"
	}
	// Release the store handle. A failed object stays staged, invisible: its verified chunks
	// let a later push of the same digest resume instead of starting over.
	<-t.begun
	if t.partial != nil {
		if cerr := t.partial.Close(); cerr != nil {
			e.log.Warn("close partial", "transfer", t.id, "err", cerr)
		}
	}
	e.m.transfers.WithLabelValues("receiver", result).Inc()
	e.m.duration.WithLabelValues("receiver").Observe(time.Since(t.start).Seconds())
}

// planAddrs returns the entries of addrs that name nodes of p (all of them when p cannot list
// its nodes): what a source puts in its headers, and what a receiver keeps of a header's and
// passes on. Cost: O(nodes of p).
func planAddrs(p Plan, addrs map[string]string) map[string]string {
	if len(addrs) == 0 {
		return nil
	}
	n, ok := p.(interface{ Nodes() []string })
	if !ok {
		return addrs
	}
	out := make(map[string]string, len(addrs))
	for _, name := range n.Nodes() {
		if a := addrs[name]; a != "" {
			out[name] = a
		}
	}
	return out
}

// checkPlan applies the plan limits of the engine's Config to a plan from the network. Cost:
// O(nodes of this agent's subtrees), bounded by MaxDepth levels.
func (e *Engine) checkPlan(p Plan) error {
	if n, ok := p.(interface{ Nodes() []string }); ok && e.cfg.MaxPlanNodes > 0 {
		if k := len(n.Nodes()); k > e.cfg.MaxPlanNodes {
			return fmt.Errorf("%d agents, at most %d", k, e.cfg.MaxPlanNodes)
		}
	}
	for s := range p.Stripes() {
		level := []string{e.cfg.Name}
		for depth := 0; len(level) > 0; depth++ {
			if e.cfg.MaxDepth > 0 && depth > e.cfg.MaxDepth {
				return fmt.Errorf("stripe %d goes more than %d levels below %s", s, e.cfg.MaxDepth, e.cfg.Name)
			}
			var next []string
			for _, n := range level {
				c := p.Children(n, s)
				if e.cfg.MaxFanout > 0 && len(c) > e.cfg.MaxFanout {
					return fmt.Errorf("%s has %d children in stripe %d, at most %d", n, len(c), s, e.cfg.MaxFanout)
				}
				next = append(next, c...)
			}
			level = next
		}
	}
	return nil
}

// LocalChunk serves chunk i of digest from a complete object, or from a transfer in progress
// that has verified it (a parent serves its children's re-fetches before it completes).
func (e *Engine) LocalChunk(digest string, i int) ([]byte, error) {
	data, err := e.store.ReadChunk(digest, i)
	if err == nil {
		return data, nil
	}
	e.mu.Lock()
	var ts []*receiver
	for _, t := range e.transfers {
		if t.man.Digest() == digest {
			ts = append(ts, t)
		}
	}
	e.mu.Unlock()
	for _, t := range ts {
		t.mu.Lock()
		ok := bitGet(t.held, i)
		t.mu.Unlock()
		if ok {
			if d, perr := t.partial.ReadChunk(i); perr == nil {
				return d, nil
			}
		}
	}
	return nil, fmt.Errorf("%w: %s chunk %d: %w", ErrUnknownDigest, digest, i, err)
}

// Receiving returns the manifest of an object this agent is receiving right now, if any.
func (e *Engine) Receiving(digest string) (Manifest, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range e.transfers {
		if t.man.Digest() == digest {
			return t.man, true
		}
	}
	return nil, false
}

// TransferStatus is one push in progress on the agent.
type TransferStatus struct {
	ID       string
	Digest   string
	Size     int64  // bytes of the object
	Role     string // "source", "relay" (a receiver with children) or "receiver"
	Held     int    // receiver: chunks verified; source: receivers answered
	Total    int    // receiver: chunks of the object; source: receivers
	Parents  []string
	Children []string
	Started  time.Time
}

// Transfers returns the pushes in progress, sorted by id. Cost: O(transfers + plan edges of
// this agent).
func (e *Engine) Transfers() []TransferStatus {
	var out []TransferStatus
	e.mu.Lock()
	for id, t := range e.transfers {
		t.mu.Lock()
		ts := TransferStatus{ID: id, Digest: t.man.Digest(), Size: t.man.Size(), Role: "receiver", Held: t.nheld, Total: t.man.NumChunks(), Started: t.start}
		for s := range t.plan.Stripes() {
			ts.Children = append(ts.Children, t.plan.Children(e.cfg.Name, s)...)
		}
		ts.Parents = append(ts.Parents, t.parents...)
		ts.Children = dedupSorted(ts.Children)
		ts.Parents = dedupSorted(ts.Parents)
		if len(ts.Children) > 0 {
			ts.Role = "relay"
		}
		t.mu.Unlock()
		out = append(out, ts)
	}
	for id, s := range e.sources {
		s.mu.Lock()
		ts := TransferStatus{ID: id, Digest: s.digest, Role: "source", Total: len(s.results), Started: s.start, Children: s.children}
		for _, r := range s.results {
			if r.OK || r.Err != "" {
				ts.Held++
			}
		}
		s.mu.Unlock()
		out = append(out, ts)
	}
	e.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func dedupSorted(s []string) []string {
	sort.Strings(s)
	o := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			o = append(o, x)
		}
	}
	return o
}

// ParseRate parses a byte rate such as "1G", "500M", "64KiB" or "1000" (bytes per second).
// Suffixes K, M, G, T are powers of 1000; Ki, Mi, Gi, Ti powers of 1024; an optional trailing
// "B" or "B/s" is ignored. "0" or "" means no cap.
func ParseRate(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, nil
	}
	t = strings.TrimSuffix(t, "/s")
	t = strings.TrimSuffix(t, "B")
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"k", 1e3}} {
		if strings.HasSuffix(t, u.suf) {
			t, mult = strings.TrimSuffix(t, u.suf), u.m
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || f*float64(mult) > 1<<62 {
		return 0, fmt.Errorf("transfer: rate %q is not a byte rate like 1G or 500MiB", s)
	}
	return int64(f * float64(mult)), nil
}
