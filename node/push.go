package node

import (
	"golang.org/x/time/rate"

	"github.com/treecast/treecast/node/store"

	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// transfer is a receiver's state for one push: the partial object, the chunks verified, and
// the forwarders to its children. One Push stream per stripe feeds it (a forest gives a
// receiver one parent per stripe). A stripe whose stream breaks is orphaned, not failed: its
// forwarders and the chunks verified stay, and the parent's repair re-attaches it with a new
// stream (see [forwarder.repair]). The transfer ends when no stream, forwarder or orphan
// waiter holds it any more.
type transfer struct {
	a       *Agent
	id      string
	man     manifest
	plan    plan
	planRaw []byte
	source  string
	start   time.Time
	partial partialObject
	limiter *rate.Limiter // the push's cap on this agent's sending (nil: none)
	rate    int64
	lay     layout         // which tree carries which chunk
	code    *coder         // Reed-Solomon parity of the push (nil: none)
	recode  *groupCache    // parity of complete groups, encoded again for children that need it
	smf     store.Manifest // the manifest, with parity hashes, for verifying parity chunks

	mu       sync.Mutex
	parity   map[int][]byte // parity chunks of groups not yet complete
	decoding map[int]bool   // groups being decoded
	held     []byte         // chunks verified, data and parity (including those held before)
	nheld    int
	parents  []string                 // parents of the incoming streams, in order of arrival
	claims   map[int]*claim           // the stream feeding each stripe (nil: none, or orphaned)
	claimed  chan struct{}            // closed (and replaced) whenever a stripe is claimed
	fwd      map[int][]*forwarder     // forwarders of each stripe, adopted ones included
	started  map[int]bool             // stripes whose forwarders were started
	ended    map[int]bool             // stripes whose forwarders were told no more chunks come
	finals   map[int]map[string]upMsg // results of each stripe's subtree, replayed to a new parent
	refs     int
	done     chan struct{} // closed when committed or failed
	err      error
	lastProg int
	npreheld int   // chunks held before the transfer reached this agent
	dups     int   // chunks received although already held
	decoded  int   // data chunks rebuilt from parity
	bytesIn  int64 // chunk bytes received on this transfer's streams
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

// upSink serialises messages sent up one incoming stream.
type upSink struct {
	mu   sync.Mutex
	down downstream
	dead bool
}

func (u *upSink) send(m upMsg) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.dead {
		return
	}
	if err := u.down.sendUp(m); err != nil {
		u.dead = true
	}
}

// receive serves one incoming Push stream whose header has been read: it attaches to (or
// creates) the transfer, answers with the chunks held, stores and forwards every chunk of the
// stream's stripe, then reports this receiver's result and its subtree's up the stream. It
// returns when the subtree of this stripe has answered, or with the stream's error.
//
// A stream that breaks (the parent died, or gave up on it) orphans the stripe: the receiver
// keeps what it verified and its forwarders, and waits up to Config.StallTimeout for a parent
// to re-attach the stripe; the new stream is answered with the chunks held and the subtree's
// results so far. A verification or protocol error fails the transfer.
func (a *Agent) receive(ctx context.Context, hdr pushHeader, down downstream) error {
	if hdr.Child != a.cfg.Name {
		return fmt.Errorf("%w: stream for %q reached %q", ErrBadHeader, hdr.Child, a.cfg.Name)
	}
	t, err := a.attach(hdr)
	if err != nil {
		return err
	}
	defer a.detach(t)
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
	if old := t.claims[s]; old != nil && t.a.isAlive(old.parent) {
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
	heldNow := t.holdingLocked()
	replay := make([]upMsg, 0, len(t.finals[s]))
	for _, m := range t.finals[s] {
		replay = append(replay, m)
	}
	t.mu.Unlock()

	fwds := t.startForwarders(s)
	err = down.sendHeld(heldNow)
	for _, m := range replay {
		if err == nil {
			err = down.sendUp(m)
		}
	}
	sink.mu.Unlock()
	locked = false
	if err != nil {
		if t.orphan(s, c) {
			return err
		}
		return t.finishStripe(ctx, s, c, fwds, err)
	}

	recvErr := t.receiveStripe(ctx, hdr, down)
	c.doneReceiving()
	if recvErr == nil && t.code != nil {
		t.sweep(ctx) // this tree is complete: the groups still missing data wait only for slower ones
	}
	if errors.Is(recvErr, ErrParentLost) && t.orphan(s, c) {
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
func (t *transfer) finishStripe(ctx context.Context, s int, c *claim, fwds []*forwarder, recvErr error) error {
	t.endStripe(s)
	if !t.waitDone(ctx) && t.orphan(s, c) {
		return fmt.Errorf("%w: while waiting for the other stripes", ErrParentLost)
	}
	t.mu.Lock()
	res := upMsg{Receiver: t.a.cfg.Name, Held: t.nheld, Total: t.man.NumChunks(), Final: true, OK: t.err == nil, Seconds: since(t.start),
		AlreadyHeld: t.npreheld, Duplicates: t.dups, BytesIn: t.bytesIn, Decoded: t.decoded}
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
func (t *transfer) orphan(s int, c *claim) bool {
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
	t.a.log.Info("stripe orphaned, waiting for a parent", "transfer", t.id, "stripe", s, "lost", c.parent)
	t.a.retain(t)
	if !t.a.goFunc(func() {
		defer t.a.detach(t)
		t.awaitParent(s)
	}) { // the agent is stopping
		t.fail(ErrClosed)
		t.endStripe(s)
		t.a.detach(t)
	}
	return true
}

// awaitParent waits until stripe s is claimed again. When the transfer ends meanwhile, or
// nobody re-attaches the stripe within Config.StallTimeout, or the agent stops, it ends the
// stripe's forwarders itself (failing the transfer unless it completed).
func (t *transfer) awaitParent(s int) {
	if t.code != nil { // the orphaned tree's pieces will not come: decode what can be
		t.sweep(t.a.ctx)
	}
	timer := time.NewTimer(t.a.cfg.StallTimeout)
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
			t.fail(fmt.Errorf("%w: no parent re-attached stripe %d within %v", ErrStalled, s, t.a.cfg.StallTimeout))
		case <-t.a.ctx.Done():
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

// receiveStripe reads chunks until the parent closes its side, then checks that every chunk
// of the stripe is held.
func (t *transfer) receiveStripe(ctx context.Context, hdr pushHeader, down downstream) error {
	n := t.lay.total()
	// Two stages: this goroutine reads the stream while a worker verifies, writes and
	// forwards, so network reads overlap hashing and disk writes. At most cap(work)+2 chunks
	// of the stream are in memory here.
	work := make(chan queued, 2)
	var workErr error
	workDone, stop := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(workDone)
		for q := range work {
			if workErr != nil {
				continue // drain: the reader stops at its next chunk
			}
			if workErr = t.deliver(ctx, hdr, q.index, q.data); workErr != nil {
				close(stop)
			}
		}
	}()
	failed := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	var err error
	for {
		i, data, rerr := down.recvChunk()
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			err = fmt.Errorf("%w: stream from %s (stripe %d): %w", ErrParentLost, hdr.Parent, hdr.Stripe, rerr)
			break
		}
		if i < 0 || i >= n || t.lay.tree(i) != hdr.Stripe {
			err = fmt.Errorf("%w: chunk %d is not in stripe %d of %d chunks", ErrBadHeader, i, hdr.Stripe, n)
			break
		}
		if failed() {
			break
		}
		work <- queued{i, data}
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

// deliver verifies and writes chunk i, fetching it again from the parent (then the source)
// when its hash does not match, and hands it to the stripe's forwarders. With parity, it
// then decodes the chunk's group if that group has enough pieces.
func (t *transfer) deliver(ctx context.Context, hdr pushHeader, i int, data []byte) error {
	a := t.a
	a.m.bytesIn.Add(float64(len(data)))
	t.mu.Lock()
	dup := bitGet(t.held, i)
	t.bytesIn += int64(len(data))
	if dup {
		t.dups++
	}
	t.mu.Unlock()
	if dup {
		a.m.chunksDup.Inc()
		return nil
	}
	if t.lay.isParity(i) {
		return t.deliverParity(ctx, i, data)
	}
	err := t.partial.WriteChunk(i, data)
	for attempt := 0; err != nil && isHashMismatch(err) && attempt < 4; attempt++ {
		a.m.chunksBad.Inc()
		from := hdr.Parent
		if attempt%2 == 1 {
			from = hdr.Source
		}
		a.log.Warn("chunk rejected, fetching again", "transfer", t.id, "chunk", i, "from", from, "err", err)
		var fetched []byte
		fetched, ferr := a.fetchChunk(ctx, from, t.man.Digest(), i)
		if ferr != nil {
			err = fmt.Errorf("%w (refetch from %s: %v)", err, from, ferr)
			continue
		}
		a.m.refetchChunks.Inc()
		data = fetched
		err = t.partial.WriteChunk(i, data)
	}
	if err != nil {
		return fmt.Errorf("node: chunk %d: %w", i, err)
	}
	a.m.chunksIn.Inc()
	if err := t.accept(ctx, i, data); err != nil {
		return err
	}
	if t.code != nil {
		t.decodeBehind(ctx, t.lay.group(i))
	}
	return nil
}

// deliverParity verifies parity chunk i against the manifest, keeps it while its group is
// incomplete, forwards it and decodes the group if it can. A parity chunk that fails
// verification is dropped (counted, logged): the group completes from its other pieces.
func (t *transfer) deliverParity(ctx context.Context, i int, data []byte) error {
	if err := t.smf.VerifyChunk(i, data); err != nil {
		t.a.m.chunksBad.Inc()
		t.a.log.Warn("parity chunk rejected", "transfer", t.id, "chunk", i, "err", err)
		return nil
	}
	t.a.m.chunksIn.Inc()
	g := t.lay.group(i)
	t.mu.Lock()
	if !t.groupDoneLocked(g) {
		t.parity[i] = data
	}
	t.mu.Unlock()
	if err := t.accept(ctx, i, data); err != nil {
		return err
	}
	t.decodeBehind(ctx, g)
	return nil
}

// accept records verified chunk i as held and hands it to the forwarders of its tree (once:
// a chunk that arrives twice, or is decoded and received, is forwarded once). The last data
// chunk commits the object.
func (t *transfer) accept(ctx context.Context, i int, data []byte) error {
	t.mu.Lock()
	if bitGet(t.held, i) {
		t.mu.Unlock()
		return nil
	}
	bitSet(t.held, i)
	complete := false
	if !t.lay.isParity(i) {
		t.nheld++
		complete = t.nheld == t.man.NumChunks()
	}
	fwds := t.fwd[t.lay.tree(i)]
	prog := t.progressLocked(complete)
	t.mu.Unlock()
	if prog != nil {
		t.sendUpAll(*prog)
	}
	for _, f := range fwds {
		if err := f.enqueue(ctx, i, data); err != nil {
			return err
		}
	}
	if complete {
		t.commit()
	}
	return nil
}

// groupDoneLocked reports whether every data chunk of group g is held.
func (t *transfer) groupDoneLocked(g int) bool {
	lo, hi := t.lay.dataOf(g)
	for i := lo; i < hi; i++ {
		if !bitGet(t.held, i) {
			return false
		}
	}
	return true
}

// hasLocked reports whether chunk i is here or can be made here: held, or a parity chunk of
// a complete group (encoded again from the data when needed).
func (t *transfer) hasLocked(i int) bool {
	return bitGet(t.held, i) || t.lay.isParity(i) && t.groupDoneLocked(t.lay.group(i))
}

// holdingLocked is the bitmap a new parent is answered with: every chunk hasLocked.
func (t *transfer) holdingLocked() []byte {
	b := bitClone(t.held)
	for g := range t.lay.groups() {
		if t.groupDoneLocked(g) {
			for j := range t.lay.m {
				bitSet(b, t.lay.n+g*t.lay.m+j)
			}
		}
	}
	return b
}

// decodeLag is how many groups a tree's piece may trail the group now arriving before the
// receiver stops waiting for it and decodes. It bounds the parity chunks held in memory to
// about decodeLag*M.
const decodeLag = 8

// decodeBehind decodes group g if a tree that owes it a piece is orphaned, and group
// g-decodeLag whatever its trees: a piece that far behind the others is late (a slow or
// stalled parent).
func (t *transfer) decodeBehind(ctx context.Context, g int) {
	t.decode(ctx, g, false)
	if h := g - decodeLag; h >= 0 {
		t.decode(ctx, h, true)
	}
}

// sweep decodes every group that can be: when a tree is orphaned, or has delivered all its
// pieces (the groups still missing data then wait only for slower trees). Cost O(groups).
func (t *transfer) sweep(ctx context.Context) {
	for g := range t.lay.groups() {
		t.decode(ctx, g, true)
	}
}

// decode rebuilds the missing data chunks of group g once it holds K of its pieces, when
// force is set or a tree that owes the group a missing piece is orphaned (otherwise the piece
// is on its way, and decoding would only make it a duplicate). Decoded chunks are verified
// against the manifest like received ones, written, and forwarded down their own tree, so the
// subtree below a broken tree keeps receiving. A decoded chunk that fails verification is
// dropped (counted, logged): its own tree may still bring it. Cost: K chunk reads and one
// Reed-Solomon reconstruction.
func (t *transfer) decode(ctx context.Context, g int, force bool) {
	l := t.lay
	lo, hi := l.dataOf(g)
	t.mu.Lock()
	if t.decoding[g] || t.groupDoneLocked(g) {
		if t.groupDoneLocked(g) {
			t.dropParityLocked(g)
		}
		t.mu.Unlock()
		return
	}
	have := l.k - (hi - lo) // a short group's missing pieces are zeros
	var missing []int
	for i := lo; i < hi; i++ {
		if bitGet(t.held, i) {
			have++
		} else {
			missing = append(missing, i)
		}
	}
	par := make([][]byte, l.m)
	for j := range l.m {
		if d, ok := t.parity[l.n+g*l.m+j]; ok {
			par[j] = d
			have++
		}
	}
	orphaned := false
	for _, i := range missing {
		s := l.tree(i)
		orphaned = orphaned || t.started[s] && t.claims[s] == nil
	}
	if have < l.k || !force && !orphaned {
		t.mu.Unlock()
		return
	}
	t.decoding[g] = true
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.decoding[g] = false
		if t.groupDoneLocked(g) {
			t.dropParityLocked(g)
		}
		t.mu.Unlock()
	}()

	miss := map[int]bool{}
	for _, i := range missing {
		miss[i] = true
	}
	sh, err := t.code.shards(g, func(i int) ([]byte, error) {
		if miss[i] {
			return nil, nil
		}
		return t.partial.ReadChunk(i)
	})
	if err != nil {
		t.a.log.Warn("decode: reading group", "transfer", t.id, "group", g, "err", err)
		return
	}
	copy(sh[l.k:], par)
	if err := t.code.enc.ReconstructData(sh); err != nil {
		t.a.log.Warn("decode failed", "transfer", t.id, "group", g, "err", err)
		return
	}
	for _, i := range missing {
		data := sh[i-lo][:t.smf.ChunkLen(i)]
		if err := t.partial.WriteChunk(i, data); err != nil {
			t.a.m.chunksBad.Inc()
			t.a.log.Warn("decoded chunk rejected", "transfer", t.id, "chunk", i, "err", err)
			continue
		}
		t.a.m.chunksDecoded.Inc()
		t.mu.Lock()
		t.decoded++
		t.mu.Unlock()
		if err := t.accept(ctx, i, data); err != nil {
			return
		}
	}
}

// dropParityLocked forgets group g's parity chunks: the group is complete, and its parity can
// be encoded again from the data if a child still needs it.
func (t *transfer) dropParityLocked(g int) {
	for j := range t.lay.m {
		delete(t.parity, t.lay.n+g*t.lay.m+j)
	}
}

// progressLocked returns a progress message every 5% of the object (and at completion).
func (t *transfer) progressLocked(force bool) *upMsg {
	n := t.man.NumChunks()
	step := n / 20
	if step < 1 {
		step = 1
	}
	if !force && t.nheld-t.lastProg < step {
		return nil
	}
	t.lastProg = t.nheld
	return &upMsg{Receiver: t.a.cfg.Name, Held: t.nheld, Total: n}
}

func (t *transfer) sendUpAll(m upMsg) {
	t.mu.Lock()
	sinks := make([]*upSink, 0, len(t.claims))
	for _, c := range t.claims {
		if c != nil {
			sinks = append(sinks, c.sink)
		}
	}
	t.mu.Unlock()
	for _, u := range sinks {
		u.send(m)
	}
}

// commit makes the object visible once every chunk is verified.
func (t *transfer) commit() {
	err := t.partial.Commit()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return
	}
	select {
	case <-t.done:
		return
	default:
	}
	if err != nil {
		t.err = fmt.Errorf("node: commit: %w", err)
		t.a.m.errors.WithLabelValues("commit").Inc()
	}
	close(t.done)
}

// fail ends the transfer with err (the first error wins) and discards the partial object.
func (t *transfer) fail(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-t.done:
		return
	default:
	}
	t.err = err
	close(t.done)
	t.a.m.errors.WithLabelValues("receive").Inc()
	t.a.log.Warn("transfer failed", "transfer", t.id, "err", err)
	// Cut the streams to the children: they wait, keeping what they verified, for this
	// agent's parent to re-attach them.
	for _, fwds := range t.fwd {
		for _, f := range fwds {
			f.abort()
		}
	}
}

// startForwarders starts the forwarders of stripe s, one per child of this agent in s, the
// first time the stripe is claimed, and returns them.
func (t *transfer) startForwarders(s int) []*forwarder {
	t.mu.Lock()
	if t.started[s] {
		fwds := append([]*forwarder(nil), t.fwd[s]...)
		t.mu.Unlock()
		return fwds
	}
	t.started[s] = true
	t.mu.Unlock()
	var fwds []*forwarder
	for _, c := range t.plan.Children(t.a.cfg.Name, s) {
		fwds = append(fwds, t.adopt(s, c, 0))
	}
	return fwds
}

// adopt starts a forwarder of stripe s to child and its subtree: it first sends the chunks of
// the stripe this agent holds, then each chunk as it is verified. Repairs use it to
// re-attach an orphaned subtree here.
func (t *transfer) adopt(s int, child string, attempt int) *forwarder {
	hdr := pushHeader{Transfer: t.id, Manifest: t.man, Plan: t.planRaw, Child: child, Parent: t.a.cfg.Name, Source: t.source, Stripe: s, Rate: t.rate}
	t.mu.Lock()
	var backlog []int
	for _, i := range t.lay.chunks(s) {
		if t.hasLocked(i) {
			backlog = append(backlog, i)
		}
	}
	// Chunks verified from now on reach the forwarder through its queue (deliver reads
	// t.fwd under the same lock that marks them held).
	f := newForwarder(t.a, hdr, backlog, t.readChunk, subtreeOf(t.plan, child, s), func(m upMsg) { t.reportUp(s, m) })
	f.limiter, f.host, f.attempt = t.limiter, t, attempt
	t.fwd[s] = append(t.fwd[s], f)
	ended := t.ended[s]
	t.mu.Unlock()
	if ended {
		f.finish()
	}
	f.start(t.a.ctx)
	return f
}

// backfill implements forwardHost: the chunks of stripe s held or encodable.
func (t *transfer) backfill(s int) []int {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []int
	for _, i := range t.lay.chunks(s) {
		if t.hasLocked(i) {
			out = append(out, i)
		}
	}
	return out
}

func (t *transfer) total() int { return t.lay.total() }

// overlay implements forwardHost.
func (t *transfer) overlay() plan { return t.plan }

// reportUp sends a message of stripe s's subtree up the stripe's stream, remembering results
// for a parent that re-attaches the stripe later.
func (t *transfer) reportUp(s int, m upMsg) {
	t.mu.Lock()
	if m.Final {
		if t.finals[s] == nil {
			t.finals[s] = map[string]upMsg{}
		}
		if prev, ok := t.finals[s][m.Receiver]; !ok || !prev.OK {
			t.finals[s][m.Receiver] = m
		}
	}
	c := t.claims[s]
	t.mu.Unlock()
	if c != nil {
		c.sink.send(m)
	}
}

// endStripe tells the stripe's forwarders that no more chunks come. Idempotent.
func (t *transfer) endStripe(s int) {
	t.mu.Lock()
	if t.ended[s] {
		t.mu.Unlock()
		return
	}
	t.ended[s] = true
	fwds := append([]*forwarder(nil), t.fwd[s]...)
	t.mu.Unlock()
	for _, f := range fwds {
		f.finish()
	}
}

func (t *transfer) readChunk(i int) ([]byte, error) {
	if t.lay.isParity(i) {
		t.mu.Lock()
		d, ok := t.parity[i]
		t.mu.Unlock()
		if ok {
			return d, nil
		}
		// A parity chunk of a complete group: encode it again (once for the group's M pieces).
		return t.recode.chunk(i)
	}
	if data, err := t.partial.ReadChunk(i); err == nil {
		return data, nil
	}
	return t.a.store.ReadChunk(t.man.Digest(), i)
}

// attach returns the receiver transfer of hdr, creating it on the first stream: the plan is
// decoded, the manifest checked and the partial object begun (answering what is held).
func (a *Agent) attach(hdr pushHeader) (*transfer, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, ErrClosed
	}
	if t, ok := a.transfers[hdr.Transfer]; ok {
		if t.man.Digest() != hdr.Manifest.Digest() {
			return nil, fmt.Errorf("%w: transfer %s carries %s, not %s", ErrBadHeader, hdr.Transfer, hdr.Manifest.Digest(), t.man.Digest())
		}
		t.refs++
		return t, nil
	}
	if hdr.Transfer == "" {
		return nil, fmt.Errorf("%w: no transfer id", ErrBadHeader)
	}
	p, err := decodePlan(hdr.Plan)
	if err != nil {
		return nil, fmt.Errorf("%w: plan: %w", ErrBadHeader, err)
	}
	if hdr.Stripe < 0 || hdr.Stripe >= p.Stripes() {
		return nil, fmt.Errorf("%w: stripe %d of %d", ErrBadHeader, hdr.Stripe, p.Stripes())
	}
	n := hdr.Manifest.NumChunks()
	lay := newLayout(p, n)
	smf, err := store.ManifestFromProto(hdr.Manifest.proto())
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
	part, err := a.store.Begin(hdr.Manifest)
	if err != nil {
		return nil, fmt.Errorf("node: begin %s: %w", hdr.Manifest.Digest(), err)
	}
	t := &transfer{
		a: a, id: hdr.Transfer, man: hdr.Manifest, plan: p, planRaw: hdr.Plan, source: hdr.Source,
		start: time.Now(), partial: part, rate: hdr.Rate, limiter: newLimiter(hdr.Rate),
		lay: lay, code: code, smf: smf, parity: map[int][]byte{}, decoding: map[int]bool{},
		held: newBitmap(lay.total()), claims: map[int]*claim{}, claimed: make(chan struct{}), fwd: map[int][]*forwarder{},
		started: map[int]bool{}, ended: map[int]bool{}, finals: map[int]map[string]upMsg{},
		refs: 1, done: make(chan struct{}),
	}
	if code != nil {
		t.recode = newGroupCache(code, t.readChunk)
	}
	for _, i := range part.Held() {
		if i >= 0 && i < n && !bitGet(t.held, i) {
			bitSet(t.held, i)
			t.nheld++
		}
	}
	t.npreheld = t.nheld
	a.transfers[t.id] = t
	a.m.active.Inc()
	if t.nheld == n {
		// Everything was already here (a resumed or repeated push): commit at once.
		t.commit()
	}
	return t, nil
}

// retain takes one more reference on a transfer (an orphaned stripe's waiter).
func (a *Agent) retain(t *transfer) {
	a.mu.Lock()
	t.refs++
	a.mu.Unlock()
}

// detach drops one stream's reference; the last one ends the transfer, discarding the partial
// object unless it was committed.
func (a *Agent) detach(t *transfer) {
	a.mu.Lock()
	t.refs--
	last := t.refs == 0
	if last {
		delete(a.transfers, t.id)
		a.m.active.Dec()
	}
	a.mu.Unlock()
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
	if cerr := t.partial.Close(); cerr != nil {
		a.log.Warn("close partial", "transfer", t.id, "err", cerr)
	}
	a.m.transfers.WithLabelValues("receiver", result).Inc()
	a.m.duration.WithLabelValues("receiver").Observe(time.Since(t.start).Seconds())
}

// waitDone waits until the transfer is committed or failed, and reports true; it returns false
// when ctx ends first (the stream broke: the transfer goes on). A transfer that makes no
// progress for Config.StallTimeout (a stripe whose parent never came, or stopped sending)
// fails.
func (t *transfer) waitDone(ctx context.Context) bool {
	tick := time.NewTicker(t.a.cfg.StallTimeout / 4)
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
			} else if now.Sub(lastAt) >= t.a.cfg.StallTimeout {
				t.fail(fmt.Errorf("%w: no chunk for %v with %d of %d held", ErrStalled, t.a.cfg.StallTimeout, n, t.man.NumChunks()))
				return true
			}
		}
	}
}
