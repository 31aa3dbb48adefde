package node

import (
	"github.com/treecast/treecast/scheduler"
	"golang.org/x/time/rate"

	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Object names what to push: a file (Path, which must lie inside the agent's data directory)
// or an object the agent's store already holds (Digest, "sha256:...").
type Object struct {
	Path   string
	Digest string
}

// PushOptions tune one push. The zero value pushes with the tree strategy, fan-out 2, one
// stripe and the agent's chunk size.
type PushOptions struct {
	Strategy  string // chain, tree, forest or unicast ("" = tree)
	Fanout    int    // children per node in tree strategies (0 = 2)
	Stripes   int    // stripes of the forest strategy (0 = 2 for forest, else 1)
	Parity    int    // parity chunks per group (forest; reserved)
	ChunkSize int    // chunk size for a new object (0 = the agent's default)
	RateLimit int64  // cap on every sender of this push, bytes per second (0 = none)
	// Progress, when not nil, receives every progress event and every receiver's result as
	// they arrive. It is called from one goroutine at a time and must not block for long.
	Progress func(Event)
	// Plan, when not nil, receives a text rendering of the plan before any chunk is sent.
	Plan func(PlanInfo)
}

// PlanInfo describes the plan of a push, for display.
type PlanInfo struct {
	Transfer  string
	Digest    string
	Size      int64
	Chunks    int
	Strategy  string
	Stripes   int
	Receivers []string
	// Edges lists the plan's overlay edges, stripe by stripe, breadth first.
	Edges []PlanEdge
	// Plan is the scheduler's plan on the topology inferred from the members' labels: its
	// Copies, Depth and LowerBound describe the push's cost.
	Plan *scheduler.Plan

	manifest manifest
	raw      []byte
}

// PlanEdge is one overlay edge: Parent sends stripe Stripe to Child.
type PlanEdge struct {
	Stripe        int
	Parent, Child string
}

// sourceTransfer is the source's state for one push: the results gathered from every
// receiver, deduplicated (a forest reports each receiver once per stripe).
type sourceTransfer struct {
	digest   string
	children []string
	mu       sync.Mutex
	start    time.Time
	results  map[string]Result
	progress map[string]int
	total    int
	cb       func(Event)
}

func (st *sourceTransfer) report(m upMsg) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, known := st.results[m.Receiver]; !known {
		// Only receivers of the plan are tracked; anything else is ignored.
		return
	}
	ev := Event{Receiver: m.Receiver, Held: m.Held, Total: st.total, Elapsed: time.Since(st.start)}
	if m.Final {
		prev := st.results[m.Receiver]
		if prev.OK || prev.Err != "" && !m.OK {
			return // first verdict wins, verified over failed
		}
		st.results[m.Receiver] = Result{Receiver: m.Receiver, OK: m.OK, Err: m.Err, Elapsed: time.Since(st.start),
			AlreadyHeld: m.AlreadyHeld, Duplicates: m.Duplicates, BytesIn: m.BytesIn, Decoded: m.Decoded}
		ev.Final, ev.OK, ev.Err = true, m.OK, m.Err
		if m.OK {
			ev.Held = st.total
		}
	} else if m.Held <= st.progress[m.Receiver] {
		return
	}
	if ev.Held > st.progress[m.Receiver] {
		st.progress[m.Receiver] = ev.Held
	}
	if st.cb != nil {
		st.cb(ev)
	}
}

// Push delivers an object to every agent the target selects and returns when each receiver
// has answered: the report holds one result per receiver (verified, or the error). target is
// a node name list ("a,b"), a label selector ("rack=r1", "pod=p2,dc=east"), "channel:NAME" or
// "all"; the source itself is never a receiver. The object is stored first if given by path
// (hashing it costs one read of the file). Push returns an error only when the push could not
// start (unknown digest, path outside the data dir, target matching no node, no plan); a
// receiver's failure is in the report, not the error. Memory stays bounded by the plan's
// fan-out times a few chunks whatever the object size. A "channel:NAME" target publishes the
// object as the channel's latest version ([Agent.Publish]).
func (a *Agent) Push(ctx context.Context, obj Object, target string, opts PushOptions) (Report, error) {
	if ch, ok := strings.CutPrefix(strings.TrimSpace(target), "channel:"); ok {
		return a.Publish(ctx, ch, obj, opts)
	}
	return a.push(ctx, obj, target, opts)
}

// push is Push without the channel bookkeeping.
func (a *Agent) push(ctx context.Context, obj Object, target string, opts PushOptions) (Report, error) {
	if a.isClosed() {
		return Report{}, ErrClosed
	}
	man, err := a.resolveObject(obj, opts.ChunkSize)
	if err != nil {
		return Report{}, err
	}
	members := a.members.Members()
	dsts, err := selectTargets(members, target, a.cfg.Name)
	if err != nil {
		return Report{}, err
	}
	full, p, raw, err := buildFullPlan(members, a.cfg.Name, dsts, opts)
	if err != nil {
		return Report{}, fmt.Errorf("node: plan: %w", err)
	}
	lay := newLayout(p, man.NumChunks())
	digest := man.Digest()
	read := func(i int) ([]byte, error) { return a.store.ReadChunk(digest, i) }
	var parity *groupCache
	if lay.m > 0 {
		// Parity chunks travel verified like data: their hashes go in the manifest, which
		// costs one encode of the whole object before the first chunk is sent.
		c, err := newCoder(lay, int(man.proto().GetChunkSize()))
		if err != nil {
			return Report{}, err
		}
		if man, err = parityManifest(man, c, read); err != nil {
			return Report{}, err
		}
		parity = newGroupCache(c, read)
	}
	id := newTransferID()
	rep := Report{Transfer: id, Digest: man.Digest(), Size: man.Size(), Chunks: man.NumChunks()}
	if opts.Plan != nil {
		info := PlanInfo{Transfer: id, Digest: man.Digest(), Size: man.Size(), Chunks: man.NumChunks(), Strategy: opts.Strategy,
			Stripes: p.Stripes(), Receivers: dsts, Plan: full, manifest: man, raw: raw}
		for s := 0; s < p.Stripes(); s++ {
			q := []string{a.cfg.Name}
			for k := 0; k < len(q); k++ {
				for _, c := range p.Children(q[k], s) {
					info.Edges = append(info.Edges, PlanEdge{Stripe: s, Parent: q[k], Child: c})
					q = append(q, c)
				}
			}
		}
		opts.Plan(info)
	}
	st := &sourceTransfer{digest: man.Digest(), start: time.Now(), results: map[string]Result{}, progress: map[string]int{}, total: man.NumChunks(), cb: opts.Progress}
	for _, d := range dsts {
		st.results[d] = Result{Receiver: d}
	}
	a.m.active.Inc()
	a.mu.Lock()
	a.sources[id] = st
	a.mu.Unlock()
	defer func() {
		a.m.active.Dec()
		a.mu.Lock()
		delete(a.sources, id)
		a.mu.Unlock()
	}()
	a.log.Info("push", "transfer", id, "digest", man.Digest(), "size", man.Size(), "receivers", len(dsts), "stripes", p.Stripes())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(a.ctx, cancel)
	defer stop()
	src := &sourceHost{a: a, ctx: ctx, st: st, plan: p, lay: lay, read: read, parity: parity, limiter: newLimiter(opts.RateLimit),
		hdr: pushHeader{Transfer: id, Manifest: man, Plan: raw, Parent: a.cfg.Name, Source: a.cfg.Name, Rate: opts.RateLimit}}
	var fwds []*forwarder
	for s := 0; s < p.Stripes(); s++ {
		for _, c := range p.Children(a.cfg.Name, s) {
			st.children = append(st.children, c)
			fwds = append(fwds, src.adopt(s, c, 0))
		}
	}
	for _, f := range fwds {
		<-f.done
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, d := range dsts {
		r := st.results[d]
		if !r.OK && r.Err == "" {
			r.Err = "node: no result from receiver (not in the plan's reach)"
		}
		rep.Receivers = append(rep.Receivers, r)
	}
	sort.Slice(rep.Receivers, func(i, j int) bool { return rep.Receivers[i].Receiver < rep.Receivers[j].Receiver })
	rep.Elapsed = time.Since(st.start)
	result := "verified"
	if rep.Failed() > 0 {
		result = "failed"
	}
	a.m.transfers.WithLabelValues("source", result).Inc()
	a.m.duration.WithLabelValues("source").Observe(rep.Elapsed.Seconds())
	return rep, nil
}

// sourceHost feeds the source's forwarders from its store: every chunk of a stripe, at once.
type sourceHost struct {
	a       *Agent
	ctx     context.Context // the push's
	st      *sourceTransfer
	plan    plan
	lay     layout
	read    func(i int) ([]byte, error) // a data chunk
	parity  *groupCache                 // parity chunks (nil: none)
	limiter *rate.Limiter
	hdr     pushHeader // Child and Stripe unset
}

func (h *sourceHost) overlay() plan { return h.plan }

// backfill is empty: the source's forwarders start with every chunk of their stripe.
func (h *sourceHost) backfill(int) []int { return nil }
func (h *sourceHost) total() int         { return h.lay.total() }

func (h *sourceHost) adopt(s int, child string, attempt int) *forwarder {
	hdr := h.hdr
	hdr.Child, hdr.Stripe = child, s
	read := h.read
	if h.parity != nil {
		read = func(i int) ([]byte, error) {
			if h.lay.isParity(i) {
				return h.parity.chunk(i)
			}
			return h.read(i)
		}
	}
	f := newForwarder(h.a, hdr, h.lay.chunks(s), read, subtreeOf(h.plan, child, s), h.st.report)
	f.limiter, f.host, f.attempt = h.limiter, h, attempt
	f.finish()
	f.start(h.ctx)
	return f
}

// resolveObject returns the manifest of obj, storing the file first when given by path.
func (a *Agent) resolveObject(obj Object, chunkSize int) (manifest, error) {
	if obj.Digest != "" {
		m, err := a.store.Stat(obj.Digest)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrUnknownDigest, obj.Digest, err)
		}
		return m, nil
	}
	if obj.Path == "" {
		return nil, errors.New("node: push needs a path or a digest")
	}
	if chunkSize <= 0 {
		chunkSize = a.cfg.ChunkSize
	}
	if chunkSize > MaxChunkSize {
		return nil, fmt.Errorf("%w: chunk size %d above %d", ErrConfig, chunkSize, MaxChunkSize)
	}
	m, err := a.store.Import(obj.Path, chunkSize)
	if errors.Is(err, ErrOutsideData) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("node: store %s: %w", obj.Path, err)
	}
	return m, nil
}

func (a *Agent) isClosed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.closed
}

func newTransferID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Put stores the file at path (inside the data directory) in the agent's store, cut in chunks
// of chunkSize bytes (0: the agent's default), and returns its digest. Cost: one read of the
// file and one write of its chunks.
func (a *Agent) Put(path string, chunkSize int) (string, error) {
	m, err := a.resolveObject(Object{Path: path}, chunkSize)
	if err != nil {
		return "", err
	}
	return m.Digest(), nil
}
