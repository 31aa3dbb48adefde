package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/treecast/treecast/node/store"
)

// receiver is a receiver's state for one push: the partial object, the chunks verified, and
// the forwarders to its children. One Push stream per stripe feeds it (a forest gives a
// receiver one parent per stripe). A stripe whose stream breaks is orphaned, not failed: its
// forwarders and the chunks verified stay, and the parent's repair re-attaches it with a new
// stream (see [forwarder.repair]). The transfer ends when no stream, forwarder or orphan
// waiter holds it any more.
type receiver struct {
	e       *Engine
	id      string
	man     Manifest
	plan    Plan
	planRaw []byte
	addrs   map[string]string // the plan's nodes' addresses from the header (Header.Addrs)
	source  string
	meta    Meta // what to record at commit
	start   time.Time
	partial Partial       // set before begun is closed (nil if beginning failed)
	begun   chan struct{} // closed once the store began the object, or failed to
	// beginErr is why the store could not begin the object (read after begun).
	beginErr error
	limiter  *rate.Limiter // the push's cap on this agent's sending (nil: none)
	rate     int64
	lay      layout         // which tree carries which chunk
	code     *coder         // Reed-Solomon parity of the push (nil: none)
	recode   *groupCache    // parity of complete groups, encoded again for children that need it
	smf      store.Manifest // the manifest, with parity hashes, for verifying parity chunks

	mu       sync.Mutex
	parity   map[int]keptPiece // parity chunks of groups not yet complete
	decoding map[int]bool      // groups being decoded
	held     []byte            // chunks verified, data and parity (including those held before)
	nheld    int
	parents  []string                 // parents of the incoming streams, in order of arrival
	claims   map[int]*claim           // the stream feeding each stripe (nil: none, or orphaned)
	claimed  chan struct{}            // closed (and replaced) whenever a stripe is claimed
	fwd      map[int][]*forwarder     // forwarders of each stripe, adopted ones included
	started  map[int]bool             // stripes whose forwarders were started
	ended    map[int]bool             // stripes whose forwarders were told no more chunks come
	finals   map[int]map[string]UpMsg // results of each stripe's subtree, replayed to a new parent
	refs     int
	done     chan struct{} // closed when committed or failed
	err      error
	lastProg int
	npreheld int   // chunks held before the transfer reached this agent
	dups     int   // chunks received although already held
	decoded  int   // data chunks rebuilt from parity
	bytesIn  int64 // chunk bytes received on this transfer's streams

	hookOnce sync.Once
	hook     *Hook // what Deps.Committed returned
}

// begin has the store begin the object, for a transfer whose attach left it to be begun
// while the first stream's children are dialled (see Engine.attach); a failure fails the
// transfer. Chunks held already (another transfer of the object began it meanwhile) count
// as held before the push reached this agent.
func (t *receiver) begin() {
	part, err := t.e.store.Begin(t.man)
	t.mu.Lock()
	if err != nil {
		t.beginErr = fmt.Errorf("transfer: begin %s: %w", t.man.Digest(), err)
	} else {
		t.partial = part
		t.addHeldLocked(part.Held())
		t.npreheld = t.nheld
	}
	all := err == nil && t.nheld == t.man.NumChunks()
	t.mu.Unlock()
	close(t.begun)
	switch {
	case t.beginErr != nil:
		t.fail(t.beginErr)
	case all: // that other transfer completed it: nothing will come to write
		t.commit()
	}
}

// addHeldLocked counts the data chunks idx as held (others are ignored).
func (t *receiver) addHeldLocked(idx []int) {
	n := t.man.NumChunks()
	for _, i := range idx {
		if i >= 0 && i < n && !bitGet(t.held, i) {
			bitSet(t.held, i)
			t.nheld++
		}
	}
}

// claim is the incoming stream that currently feeds one stripe of a transfer.
type claim struct {
	sink     *upSink
	parent   string
	received chan struct{} // closed when the stream's chunks are all verified (or it ended)
	once     sync.Once
}

func (c *claim) doneReceiving() { c.once.Do(func() { close(c.received) }) }

// claimHandover bounds how long a stream that re-attaches a stripe waits for the stream it
// replaces to end.
const claimHandover = 2 * time.Second

// subtreeSetupWait bounds how long a receiver's first stream of a stripe waits for its own
// children's streams to open before it answers its parent (see awaitSubtree).
const subtreeSetupWait = 2 * time.Second

// upSink serialises messages sent up one incoming stream.
type upSink struct {
	mu   sync.Mutex
	down Downstream
	dead bool
}

func (u *upSink) send(m UpMsg) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.dead {
		return
	}
	if err := u.down.SendUp(m); err != nil {
		u.dead = true
	}
}

// Receive serves one incoming Push stream whose header has been read: it attaches to (or
// creates) the transfer, answers with the chunks held, stores and forwards every chunk of the
// stream's stripe, then reports this receiver's result and its subtree's up the stream. It
// returns when the subtree of this stripe has answered, or with the stream's error.
//
// A stream that breaks (the parent died, or gave up on it) orphans the stripe: the receiver
// keeps what it verified and its forwarders, and waits up to Config.StallTimeout for a parent
// to re-attach the stripe; the new stream is answered with the chunks held and the subtree's
// results so far. A verification or protocol error fails the transfer.
func (e *Engine) Receive(ctx context.Context, hdr Header, down Downstream) error {
	if hdr.Child != e.cfg.Name {
		return fmt.Errorf("%w: stream for %q reached %q", ErrBadHeader, hdr.Child, e.cfg.Name)
	}
	t, err := e.attach(hdr)
	if err != nil {
		return err
	}
	defer e.detach(t)
	s := hdr.Stripe
	sink := &upSink{down: down}
	sink.mu.Lock() // nothing goes up before the holding answer
	locked := true
	defer func() { // the stream ends with this handler: nothing more may be sent on it
		if !locked {
			sink.mu.Lock()
		}
		sink.dead = true
		sink.mu.Unlock()
	}()
	c := &claim{sink: sink, parent: hdr.Parent, received: make(chan struct{})}
	defer c.doneReceiving()
	t.mu.Lock()
	// A parent re-attaching an orphaned stripe replaces the stream it lost. If that stream has
	// not noticed its end yet and its parent is not known dead, give it a moment to: the
	// chunks it is still verifying would otherwise be missing from the holding answer, and
	// sent again.
	if old := t.claims[s]; old != nil && t.e.members.Alive(old.parent) {
		t.mu.Unlock()
		timer := time.NewTimer(claimHandover)
		select {
		case <-old.received:
		case <-timer.C:
		}
		timer.Stop()
		t.mu.Lock()
	}
	t.claims[s] = c
	close(t.claimed)
	t.claimed = make(chan struct{})
	t.parents = append(t.parents, hdr.Parent)
	replay := make([]UpMsg, 0, len(t.finals[s]))
	for _, m := range t.finals[s] {
		replay = append(replay, m)
	}
	t.mu.Unlock()

	fwds, fresh := t.startForwarders(s)
	if fresh {
		awaitSubtree(ctx, fwds, subtreeSetupWait)
	}
	<-t.begun // no chunk can come before the holding answer, nor be written before this
	if t.beginErr != nil {
		// Refused before the holding answer, as when the store cannot begin at once (a full
		// disk): the parent reads the reason from the stream's status; the children's
		// streams are cut for a repair (fail cut those started before it).
		for _, f := range fwds {
			f.abort()
			<-f.done
		}
		return t.beginErr
	}
	t.mu.Lock()
	heldNow := t.holdingLocked() // once begun: with what the store held, and what came since
	t.mu.Unlock()
	t.e.log.Debug("stream from parent", "transfer", t.id, "stripe", s, "parent", hdr.Parent, "since_start", time.Since(t.start))
	err = down.SendHeld(heldNow)
	for _, m := range replay {
		if err == nil {
			err = down.SendUp(m)
		}
	}
	sink.mu.Unlock()
	locked = false
	if err != nil {
		if t.orphan(s, c, err) {
			return err
		}
		return t.finishStripe(ctx, s, c, fwds, err)
	}

	recvErr := t.receiveStripe(ctx, hdr, down)
	c.doneReceiving()
	if recvErr == nil && t.code != nil {
		t.sweep(ctx) // this tree is complete: the groups still missing data wait only for slower ones
	}
	if errors.Is(recvErr, ErrParentLost) && t.orphan(s, c, recvErr) {
		return recvErr
	}
	if recvErr != nil && !errors.Is(recvErr, ErrParentLost) {
		t.fail(recvErr)
	}
	return t.finishStripe(ctx, s, c, fwds, recvErr)
}

// finishStripe ends a stripe whose chunks all came (or whose transfer is over): it tells the
// forwarders, waits for the whole object (other stripes come on other streams), reports this
// receiver's result up the stream and waits for the subtree's results.
func (t *receiver) finishStripe(ctx context.Context, s int, c *claim, fwds []*forwarder, recvErr error) error {
	t.endStripe(s)
	if !t.waitDone(ctx) && t.orphan(s, c, context.Cause(ctx)) {
		return fmt.Errorf("%w: while waiting for the other stripes", ErrParentLost)
	}
	t.mu.Lock()
	ok := t.err == nil
	t.mu.Unlock()
	var hook *Hook
	if ok && t.e.onCommit != nil { // once, whichever stripe ends first; the others wait for it
		t.hookOnce.Do(func() { t.hook = t.e.onCommit(t.man.Digest(), t.meta) })
		hook = t.hook
	}
	t.mu.Lock()
	res := UpMsg{Receiver: t.e.cfg.Name, Held: t.nheld, Total: t.man.NumChunks(), Final: true, OK: t.err == nil, Seconds: since(t.start),
		AlreadyHeld: t.npreheld, Duplicates: t.dups, BytesIn: t.bytesIn, Decoded: t.decoded, Hook: hook}
	if t.err != nil {
		res.Err = t.err.Error()
	}
	t.mu.Unlock()
	c.sink.send(res)
	for _, f := range fwds {
		<-f.done
	}
	return recvErr
}

// orphan records that the stream of claim c no longer feeds stripe s. It returns false when
// the transfer is already over (the caller finishes the stripe itself). Otherwise a waiter
// keeps the transfer, its forwarders and its verified chunks until a parent re-attaches the
// stripe, or fails the transfer after Config.StallTimeout.
func (t *receiver) orphan(s int, c *claim, cause error) bool {
	t.mu.Lock()
	if t.claims[s] != c { // already re-attached: the new stream carries the stripe on
		t.mu.Unlock()
		return true
	}
	select {
	case <-t.done:
		t.mu.Unlock()
		return false
	default:
	}
	t.claims[s] = nil
	t.mu.Unlock()
	t.e.log.Info("stripe orphaned, waiting for a parent", "transfer", t.id, "stripe", s, "lost", c.parent, "cause", cause)
	t.e.retain(t)
	if !t.e.goFunc(func() {
		defer t.e.detach(t)
		t.awaitParent(s)
	}) { // the agent is stopping
		t.fail(ErrClosed)
		t.endStripe(s)
		t.e.detach(t)
	}
	return true
}

// awaitParent waits until stripe s is claimed again. When the transfer ends meanwhile, or
// nobody re-attaches the stripe within Config.StallTimeout, or the agent stops, it ends the
// stripe's forwarders itself (failing the transfer unless it completed).
func (t *receiver) awaitParent(s int) {
	if t.code != nil { // the orphaned tree's pieces will not come: decode what can be
		t.sweep(t.e.ctx)
	}
	timer := time.NewTimer(t.e.cfg.StallTimeout)
	defer timer.Stop()
	for {
		t.mu.Lock()
		reclaimed, ch := t.claims[s] != nil, t.claimed
		t.mu.Unlock()
		if reclaimed {
			return
		}
		select {
		case <-ch:
			continue
		case <-t.done:
		case <-timer.C:
			t.fail(fmt.Errorf("%w: no parent re-attached stripe %d within %v", ErrStalled, s, t.e.cfg.StallTimeout))
		case <-t.e.ctx.Done():
			t.fail(ErrClosed)
		}
		t.endStripe(s)
		t.mu.Lock()
		fwds := append([]*forwarder(nil), t.fwd[s]...)
		t.mu.Unlock()
		for _, f := range fwds {
			<-f.done
		}
		return
	}
}

// assembled is a whole chunk a stream carried, on its way to verification.
type assembled struct {
	index int
	data  []byte
	buf   *Buf // holds data (a reference of the work queue's), or nil
}

// assembly is a chunk a stream is carrying, as its frames arrive, and the forwarders it is
// cut through to.
type assembly struct {
	index   int
	buf     *Buf // the chunk's bytes so far are buf.B[:n]; nil while the chunk is one frame
	n       int
	cutters []*forwarder
}

// offerCut offers the first frame of a chunk to the forwarders of stripe s and returns those
// that take it: each will pass the chunk's frames on as they arrive.
func (t *receiver) offerCut(s int, fr Frame) []*forwarder {
	t.mu.Lock()
	fwds := t.fwd[s]
	held := bitGet(t.held, fr.Index)
	t.mu.Unlock()
	if held {
		return nil // a duplicate: the forwarders had it
	}
	var out []*forwarder
	for _, f := range fwds {
		if f.offerCut(fr) {
			out = append(out, f)
		}
	}
	return out
}

// endCut ends the cut-through of a chunk: complete, or abandoned (its forwarders then send
// it whole once it is verified by other means).
func (t *receiver) endCut(a *assembly, complete bool) {
	if complete {
		return
	}
	for _, f := range a.cutters {
		f.abortCut(a.index)
	}
}

// deliverWorkers is how many chunks of one stream are verified and written at once: two, so
// that one chunk's disk write (synchronous: O_DIRECT) overlaps the next one's hash. On
// `treecast bench relay` without TLS the hop went from 397-432 to 500-544 MB/s; a third
// worker added little, and with TLS, where the reading goroutine's decryption bounds the
// hop, two made no difference.
const deliverWorkers = 2

// receiveStripe reads chunks until the parent closes its side, then checks that every chunk
// of the stripe is held. A chunk arrives as frames: each is passed on at once to the
// forwarders that took the chunk for cut-through, and the whole chunk is verified and written
// once its last frame is in.
func (t *receiver) receiveStripe(ctx context.Context, hdr Header, down Downstream) error {
	// Two stages: this goroutine reads the stream while deliverWorkers workers verify, write
	// and forward its chunks, a chunk each at a time, so that network reads overlap hashing
	// and one chunk's disk write overlaps the next one's hash (chunks of a stream may then
	// be held out of order, as repairs already make them). At most cap(work)+deliverWorkers+1
	// chunks of the stream are in memory here.
	// A chunk assembled from frames is in a pooled buffer, which goes back to the pool once
	// verified and written unless a forwarder queued it.
	work := make(chan assembled, 2)
	// The first worker's error is workErr, set once with stop closed; read after workDone.
	var (
		workErr  error
		workers  sync.WaitGroup
		stopOnce sync.Once
	)
	workDone, stop := make(chan struct{}), make(chan struct{})
	for range deliverWorkers {
		workers.Go(func() {
			for q := range work {
				if isClosed(stop) {
					q.buf.Free()
					continue // drain: the reader stops at its next chunk
				}
				err := t.deliver(ctx, hdr, q.index, q.data, q.buf)
				q.buf.Free() // whatever keeps the bytes took its own reference
				if err != nil {
					stopOnce.Do(func() { workErr = err; close(stop) })
				}
			}
		})
	}
	go func() { workers.Wait(); close(workDone) }()
	var err error
	var cur *assembly // the chunk the stream is carrying
	defer func() {
		if cur != nil { // the stream ended within a chunk: its cut-through is abandoned
			t.endCut(cur, false)
			cur.buf.Free()
		}
	}()
	if pd, ok := down.(PlacingDownstream); ok {
		pd.SetPlacer(t.newPlacer(hdr.Stripe))
	}
	for {
		fr, rerr := down.RecvFrame()
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			err = fmt.Errorf("%w: stream from %s (stripe %d): %w", ErrParentLost, hdr.Parent, hdr.Stripe, rerr)
			break
		}
		var q *assembled
		q, cur, err = t.takeFrame(hdr, fr, cur)
		fr.Buf.Free() // the frame's bytes are copied or referenced by now
		if err != nil {
			break
		}
		if q == nil {
			continue // more frames of the chunk to come
		}
		if isClosed(stop) {
			q.buf.Free()
			break
		}
		work <- *q
	}
	close(work)
	<-workDone
	if workErr != nil && ctx.Err() != nil && errors.Is(workErr, ctx.Err()) {
		// The stream ended while a chunk was being delivered: the parent is gone, and the
		// chunk is held (its forwarders send it at the latest before they close).
		return fmt.Errorf("%w: stream from %s (stripe %d): %w", ErrParentLost, hdr.Parent, hdr.Stripe, workErr)
	}
	if workErr != nil {
		return workErr
	}
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	missing := 0
	for _, i := range t.lay.chunks(hdr.Stripe) {
		if !t.hasLocked(i) {
			missing++
		}
	}
	if missing > 0 {
		return fmt.Errorf("%w: %d chunks of stripe %d missing from %s", ErrTruncated, missing, hdr.Stripe, hdr.Parent)
	}
	return nil
}

// takeFrame handles one frame of a stream whose chunk in progress is cur: it checks the frame,
// passes it to the chunk's cut-through forwarders (each takes its own reference), and copies it
// into the chunk's buffer, unless the stream's reader placed it there (Frame.Placed: the
// chunk's buffer is then the one the frame arrived in). It returns the chunk in progress
// afterwards, and the whole chunk when this frame completed it (holding a reference to its
// buffer). The caller keeps its reference to the frame's buffer.
func (t *receiver) takeFrame(hdr Header, fr Frame, cur *assembly) (*assembled, *assembly, error) {
	i := fr.Index
	if i < 0 || i >= t.lay.total() || t.lay.tree(i) != hdr.Stripe {
		return nil, cur, fmt.Errorf("%w: chunk %d is not in stripe %d of %d chunks", ErrBadHeader, i, hdr.Stripe, t.lay.total())
	}
	size := t.smf.ChunkLen(i)
	if fr.Offset < 0 || fr.Offset+len(fr.Data) > size {
		return nil, cur, fmt.Errorf("%w: frame at %d+%d past chunk %d's %d bytes", ErrBadHeader, fr.Offset, len(fr.Data), i, size)
	}
	switch {
	case fr.Offset == 0:
		if cur != nil { // the sender gave up the chunk it had begun
			t.endCut(cur, false)
			cur.buf.Free()
		}
		cur = &assembly{index: i}
		switch {
		case fr.More && fr.Placed && len(fr.Buf.B) == size: // the frame is in the chunk's buffer
			cur.buf = fr.Buf
			cur.buf.Ref()
		case fr.More:
			cur.buf = NewBuf(size)
		}
		cur.cutters = t.offerCut(hdr.Stripe, fr)
	case cur == nil || i != cur.index || fr.Offset != cur.n:
		return nil, cur, fmt.Errorf("%w: frame of chunk %d at offset %d does not continue the chunk the stream carries", ErrBadHeader, i, fr.Offset)
	default:
		for _, f := range cur.cutters {
			f.passCut(fr)
		}
	}
	q := &assembled{index: i, data: fr.Data, buf: fr.Buf}
	if cur.buf != nil {
		if fr.Placed && fr.Buf == cur.buf { // read into place at cur.n (the offset was checked)
			cur.n += len(fr.Data)
		} else {
			cur.n += copy(cur.buf.B[cur.n:], fr.Data)
		}
		q.data, q.buf = cur.buf.B[:cur.n], cur.buf
	}
	if fr.More {
		return nil, cur, nil
	}
	t.endCut(cur, true)
	if cur.buf == nil {
		q.buf.Ref() // the work queue's reference to the one frame's buffer
	}
	return q, nil, nil
}

// waitDone waits until the transfer is committed or failed, and reports true; it returns false
// when ctx ends first (the stream broke: the transfer goes on). A transfer that makes no
// progress for Config.StallTimeout (a stripe whose parent never came, or stopped sending)
// fails.
func (t *receiver) waitDone(ctx context.Context) bool {
	tick := time.NewTicker(t.e.cfg.StallTimeout / 4)
	defer tick.Stop()
	t.mu.Lock()
	last, lastAt := t.nheld, time.Now()
	t.mu.Unlock()
	for {
		select {
		case <-t.done:
			return true
		case <-ctx.Done():
			return false
		case now := <-tick.C:
			t.mu.Lock()
			n := t.nheld
			t.mu.Unlock()
			if n != last {
				last, lastAt = n, now
			} else if now.Sub(lastAt) >= t.e.cfg.StallTimeout {
				t.fail(fmt.Errorf("%w: no chunk for %v with %d of %d held", ErrStalled, t.e.cfg.StallTimeout, n, t.man.NumChunks()))
				return true
			}
		}
	}
}
