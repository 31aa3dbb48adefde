package transfer

import (
	"context"
	"sort"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Outgoing is a push prepared at its source: the manifest its receivers get (with the parity
// chunks' hashes when the plan codes parity) and how the source reads its chunks.
type Outgoing struct {
	Manifest Manifest
	plan     Plan
	lay      layout
	read     func(i int) ([]byte, error) // a data chunk
	parity   *groupCache                 // parity chunks (nil: none)
}

// Prepare prepares a push of the complete object man from this agent's store down plan p.
// With parity, the parity chunks travel verified like data: their hashes go in the
// manifest, which costs one read and one encode of the whole object before the first chunk
// is sent; otherwise Prepare costs nothing.
func (e *Engine) Prepare(man Manifest, p Plan) (*Outgoing, error) {
	lay := newLayout(p, man.NumChunks())
	digest := man.Digest()
	o := &Outgoing{Manifest: man, plan: p, lay: lay, read: func(i int) ([]byte, error) { return e.store.ReadChunk(digest, i) }}
	if lay.m > 0 {
		c, err := newCoder(lay, int(man.Proto().GetChunkSize()))
		if err != nil {
			return nil, err
		}
		if o.Manifest, err = parityManifest(man, c, o.read); err != nil {
			return nil, err
		}
		o.parity = newGroupCache(c, o.read)
	}
	return o, nil
}

// Push describes one push from this agent.
type Push struct {
	ID      string // transfer id, the same on every stream of the push
	PlanRaw []byte // the plan's wire form, sent in every header
	// Addrs are members' addresses by name; those of the plan's nodes go in every header
	// (Header.Addrs): a relay whose gossip does not know a child yet dials it there. nil:
	// relays wait for gossip.
	Addrs     map[string]string
	Receivers []string    // who must answer
	RateLimit int64       // cap on every sender of this push, bytes per second (0: none)
	Progress  func(Event) // receives progress and results as they arrive (nil: none)
	Meta      Meta        // what every receiver records when it commits
}

// Push sends o to its plan's receivers and returns when every receiver has answered, with
// one result per receiver, sorted by name (a receiver the plan cannot reach fails). It opens
// one stream per child of this agent in each stripe; broken streams are repaired as the
// package doc says. Memory: a forwarder reads one chunk at a time per child stream. Push
// ends early, its receivers failed, when ctx or the agent's lifetime ends.
func (e *Engine) Push(ctx context.Context, o *Outgoing, p Push) Report {
	man := o.Manifest
	rep := Report{Transfer: p.ID, Digest: man.Digest(), Size: man.Size(), Chunks: man.NumChunks()}
	st := &tally{digest: man.Digest(), start: time.Now(), results: map[string]Result{}, progress: map[string]int{}, total: man.NumChunks(), cb: p.Progress}
	for _, d := range p.Receivers {
		st.results[d] = Result{Receiver: d}
	}
	e.m.active.Inc()
	e.mu.Lock()
	e.sources[p.ID] = st
	e.mu.Unlock()
	defer func() {
		e.m.active.Dec()
		e.mu.Lock()
		delete(e.sources, p.ID)
		e.mu.Unlock()
	}()
	e.log.Info("push", "transfer", p.ID, "digest", man.Digest(), "size", man.Size(), "receivers", len(p.Receivers), "stripes", o.plan.Stripes())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(e.ctx, cancel)
	defer stop()
	src := &source{e: e, ctx: ctx, st: st, plan: o.plan, lay: o.lay, read: o.read, parity: o.parity, limiter: NewLimiter(p.RateLimit),
		hdr: Header{Transfer: p.ID, Manifest: man, Plan: p.PlanRaw, Addrs: planAddrs(o.plan, p.Addrs), Parent: e.cfg.Name, Source: e.cfg.Name, Rate: p.RateLimit, Meta: p.Meta}}
	if o.plan.Stripes() > 1 {
		src.bal = newBalance()
	}
	var fwds []*forwarder
	for s := 0; s < o.plan.Stripes(); s++ {
		for _, c := range o.plan.Children(e.cfg.Name, s) {
			st.children = append(st.children, c)
			fwds = append(fwds, src.startForwarder(s, c, 0, true))
		}
	}
	if src.bal != nil {
		src.bal.allJoined()
	}
	for _, f := range fwds {
		<-f.done
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, d := range p.Receivers {
		r := st.results[d]
		if !r.OK && r.Err == "" {
			r.Err = "transfer: no result from receiver (not in the plan's reach)"
		}
		rep.Receivers = append(rep.Receivers, r)
	}
	sort.Slice(rep.Receivers, func(i, j int) bool { return rep.Receivers[i].Receiver < rep.Receivers[j].Receiver })
	rep.Elapsed = time.Since(st.start)
	result := "verified"
	if rep.Failed() > 0 {
		result = "failed"
	}
	e.m.transfers.WithLabelValues("source", result).Inc()
	e.m.duration.WithLabelValues("source").Observe(rep.Elapsed.Seconds())
	return rep
}

// tally is the source's state for one push: the results gathered from every
// receiver, deduplicated (a forest reports each receiver once per stripe).
type tally struct {
	digest   string
	children []string
	mu       sync.Mutex
	start    time.Time
	results  map[string]Result
	progress map[string]int
	total    int
	cb       func(Event)
}

// report records a message of child's subtree: a result is vouched for by child.
func (st *tally) report(child string, m UpMsg) {
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
			AlreadyHeld: m.AlreadyHeld, Duplicates: m.Duplicates, BytesIn: m.BytesIn, Decoded: m.Decoded, Via: child, Hook: m.Hook}
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

// source feeds the source's forwarders from its store: every chunk of a stripe, at once.
type source struct {
	e       *Engine
	ctx     context.Context // the push's
	st      *tally
	plan    Plan
	lay     layout
	read    func(i int) ([]byte, error) // a data chunk
	parity  *groupCache                 // parity chunks (nil: none)
	limiter *rate.Limiter
	hdr     Header   // Child and Stripe unset
	bal     *balance // paces the first streams of different stripes (nil: one stripe)
}

func (h *source) overlay() Plan { return h.plan }

// backfill is empty: the source's forwarders start with every chunk of their stripe.
func (h *source) backfill(int) []int { return nil }
func (h *source) total() int         { return h.lay.total() }

func (h *source) adopt(s int, child string, attempt int) *forwarder {
	return h.startForwarder(s, child, attempt, false)
}

// startForwarder starts a forwarder of stripe s to child; paced, it joins the push's balance
// (the first stream of each stripe: a repair's is never held back, nor waited for).
func (h *source) startForwarder(s int, child string, attempt int, paced bool) *forwarder {
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
	f := newForwarder(h.e, hdr, h.lay.chunks(s), read, subtreeOf(h.plan, child, s), func(m UpMsg) { h.st.report(child, m) })
	f.limiter, f.host, f.attempt = h.limiter, h, attempt
	if paced && h.bal != nil {
		f.pace = h.bal
		h.bal.join(f, len(f.backlog), int(h.hdr.Manifest.Proto().GetChunkSize()))
	}
	if br, ok := h.e.store.(BufReader); ok {
		digest := h.hdr.Manifest.Digest()
		f.readBuf = func(i int) (*Buf, error) {
			if h.lay.isParity(i) {
				return nil, nil
			}
			return br.ReadChunkBuf(digest, i)
		}
	}
	f.finish()
	f.start(h.ctx)
	return f
}
