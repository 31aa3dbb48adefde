package transfer

import (
	"context"
	"fmt"
	"time"
)

// deliver verifies and writes chunk i, fetching it again from the parent (then the source)
// when its hash does not match, and hands it to the stripe's forwarders. With parity, it
// then decodes the chunk's group if that group has enough pieces.
//
// buf, when set, is the pooled buffer holding data: whatever keeps data beyond the call (a
// forwarder's queue, the parity kept for decoding) takes its own reference to it, so the
// caller frees its own once deliver returns. Without buf, data is the garbage collector's.
func (t *receiver) deliver(ctx context.Context, hdr Header, i int, data []byte, buf *Buf) error {
	return t.deliverOne(ctx, hdr, i, &data, buf)
}

// deliverOne is deliver; *pdata is the chunk's bytes as accepted (a refetch replaces them).
func (t *receiver) deliverOne(ctx context.Context, hdr Header, i int, pdata *[]byte, buf *Buf) error {
	data := *pdata
	e := t.e
	e.m.BytesIn.Add(float64(len(data)))
	t.mu.Lock()
	dup := bitGet(t.held, i)
	t.bytesIn += int64(len(data))
	if dup {
		t.dups++
	}
	t.mu.Unlock()
	if dup {
		e.m.chunksDup.Inc()
		return nil
	}
	if t.lay.isParity(i) {
		return t.deliverParity(ctx, i, data, buf)
	}
	err := t.partial.WriteChunk(i, data)
	for attempt := 0; err != nil && isHashMismatch(err) && attempt < 4; attempt++ {
		e.m.chunksBad.Inc()
		from := hdr.Parent
		if attempt%2 == 1 {
			from = hdr.Source
		}
		e.log.Warn("chunk rejected, fetching again", "transfer", t.id, "chunk", i, "from", from, "err", err)
		var fetched []byte
		fetched, ferr := e.net.FetchChunk(ctx, from, t.man.Digest(), i)
		if ferr != nil {
			err = fmt.Errorf("%w (refetch from %s: %v)", err, from, ferr)
			continue
		}
		e.m.refetchChunks.Inc()
		data, buf = fetched, nil
		*pdata = data
		err = t.partial.WriteChunk(i, data)
	}
	if err != nil {
		return fmt.Errorf("transfer: chunk %d: %w", i, err)
	}
	e.m.chunksIn.Inc()
	if err := t.accept(ctx, i, data, buf); err != nil {
		return err
	}
	if t.code != nil {
		t.decodeBehind(ctx, t.lay.group(i))
	}
	return nil
}

// deliverParity verifies parity chunk i against the manifest, keeps it while its group is
// incomplete (with a reference to buf, when set), forwards it and decodes the group if it
// can. A parity chunk that fails verification is dropped (counted, logged): the group
// completes from its other pieces.
func (t *receiver) deliverParity(ctx context.Context, i int, data []byte, buf *Buf) error {
	if err := t.smf.VerifyChunk(i, data); err != nil {
		t.e.m.chunksBad.Inc()
		t.e.log.Warn("parity chunk rejected", "transfer", t.id, "chunk", i, "err", err)
		return nil
	}
	t.e.m.chunksIn.Inc()
	g := t.lay.group(i)
	t.mu.Lock()
	if !t.groupDoneLocked(g) && !isClosed(t.done) {
		t.parity[i] = keptPiece{data, buf.Ref()}
	}
	t.mu.Unlock()
	if err := t.accept(ctx, i, data, buf); err != nil {
		return err
	}
	t.decodeBehind(ctx, g)
	return nil
}

// keptPiece is a parity chunk kept for decoding: its bytes, and a reference to the pooled
// buffer holding them (nil: the garbage collector's).
type keptPiece struct {
	data []byte
	buf  *Buf
}

// accept records verified chunk i as held and hands it to the forwarders of its tree (once:
// a chunk that arrives twice, or is decoded and received, is forwarded once). The last data
// chunk commits the object. Forwarders that queue data take a reference to buf (see
// enqueue).
func (t *receiver) accept(ctx context.Context, i int, data []byte, buf *Buf) error {
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
	var err error
	for _, f := range fwds {
		if ferr := f.enqueue(ctx, i, data, buf); ferr != nil && err == nil {
			err = ferr
		}
	}
	// The object is whole: commit it even when the stream that brought the last chunk is
	// ending (its context cancelled), or the receiver would hold everything and stall.
	if complete {
		t.commit()
	}
	return err
}

// groupDoneLocked reports whether every data chunk of group g is held.
func (t *receiver) groupDoneLocked(g int) bool {
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
func (t *receiver) hasLocked(i int) bool {
	return bitGet(t.held, i) || t.lay.isParity(i) && t.groupDoneLocked(t.lay.group(i))
}

// holdingLocked is the bitmap a new parent is answered with: every chunk hasLocked.
func (t *receiver) holdingLocked() []byte {
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

// progressLocked returns a progress message every 5% of the object (and at completion).
func (t *receiver) progressLocked(force bool) *UpMsg {
	n := t.man.NumChunks()
	step := n / 20
	if step < 1 {
		step = 1
	}
	if !force && t.nheld-t.lastProg < step {
		return nil
	}
	t.lastProg = t.nheld
	return &UpMsg{Receiver: t.e.cfg.Name, Held: t.nheld, Total: n}
}

func (t *receiver) sendUpAll(m UpMsg) {
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
func (t *receiver) commit() {
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
		t.err = fmt.Errorf("transfer: commit: %w", err)
		t.e.m.errors.WithLabelValues("commit").Inc()
	}
	t.dropAllParityLocked()
	t.e.log.Debug("object committed", "transfer", t.id, "since_start", time.Since(t.start), "err", err)
	close(t.done)
}

// fail ends the transfer with err (the first error wins) and discards the partial object.
func (t *receiver) fail(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-t.done:
		return
	default:
	}
	t.err = err
	close(t.done)
	t.dropAllParityLocked()
	t.e.m.errors.WithLabelValues("receive").Inc()
	t.e.log.Warn("transfer failed", "transfer", t.id, "err", err)
	// Cut the streams to the children: they wait, keeping what they verified, for this
	// agent's parent to re-attach them.
	for _, fwds := range t.fwd {
		for _, f := range fwds {
			f.abort()
		}
	}
}

// startForwarders starts the forwarders of stripe s, one per child of this agent in s, the
// first time the stripe is claimed, and returns them, and whether this call started them.
func (t *receiver) startForwarders(s int) ([]*forwarder, bool) {
	t.mu.Lock()
	if t.started[s] {
		fwds := append([]*forwarder(nil), t.fwd[s]...)
		t.mu.Unlock()
		return fwds, false
	}
	t.started[s] = true
	t.mu.Unlock()
	var fwds []*forwarder
	for _, c := range t.plan.Children(t.e.cfg.Name, s) {
		fwds = append(fwds, t.adopt(s, c, 0))
	}
	return fwds, true
}

// awaitSubtree waits until every forwarder of fwds has its stream open (the child answered
// its header), or failed to open it, at most d: the setup wave. A relay answers its parent's
// header only then, so a stripe's streams are all opened, hop by hop, before its first chunk
// leaves the source, while the links are idle. Opened under load instead, each hop's TCP and
// TLS handshakes wait behind the queues of links already full of the stripe's data (three
// round trips of tens of milliseconds each on a busy path), and the receivers deep in the
// tree start, and so end, that much later than the source's uplink allows. d bounds what a
// child that accepts a connection but does not answer costs its parent's subtree.
func awaitSubtree(ctx context.Context, fwds []*forwarder, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for _, f := range fwds {
		select {
		case <-f.opened:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// adopt starts a forwarder of stripe s to child and its subtree: it first sends the chunks of
// the stripe this agent holds, then each chunk as it is verified. Repairs use it to
// re-attach an orphaned subtree here.
func (t *receiver) adopt(s int, child string, attempt int) *forwarder {
	hdr := Header{Transfer: t.id, Manifest: t.man, Plan: t.planRaw, Addrs: t.addrs, Child: child, Parent: t.e.cfg.Name, Source: t.source, Stripe: s, Rate: t.rate, Meta: t.meta}
	t.mu.Lock()
	var backlog []int
	for _, i := range t.lay.chunks(s) {
		if t.hasLocked(i) {
			backlog = append(backlog, i)
		}
	}
	// Chunks verified from now on reach the forwarder through its queue (deliver reads
	// t.fwd under the same lock that marks them held).
	f := newForwarder(t.e, hdr, backlog, t.readChunk, subtreeOf(t.plan, child, s), func(m UpMsg) { t.reportUp(s, m) })
	f.limiter, f.host, f.attempt = t.limiter, t, attempt
	t.fwd[s] = append(t.fwd[s], f)
	ended := t.ended[s]
	t.mu.Unlock()
	if ended {
		f.finish()
	}
	f.start(t.e.ctx)
	return f
}

// backfill implements forwardHost: the chunks of stripe s held or encodable.
func (t *receiver) backfill(s int) []int {
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

func (t *receiver) total() int { return t.lay.total() }

// overlay implements forwardHost.
func (t *receiver) overlay() Plan { return t.plan }

// reportUp sends a message of stripe s's subtree up the stripe's stream, remembering results
// for a parent that re-attaches the stripe later.
func (t *receiver) reportUp(s int, m UpMsg) {
	t.mu.Lock()
	if m.Final {
		if t.finals[s] == nil {
			t.finals[s] = map[string]UpMsg{}
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
func (t *receiver) endStripe(s int) {
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

func (t *receiver) readChunk(i int) ([]byte, error) {
	if t.lay.isParity(i) {
		t.mu.Lock()
		p, ok := t.parity[i]
		var d []byte
		if ok { // a copy: the piece may be dropped (its buffer reused) once the lock is let go
			d = append([]byte(nil), p.data...)
		}
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
	return t.e.store.ReadChunk(t.man.Digest(), i)
}
