package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/treecast/treecast/node/membership"
)

// queued is one verified chunk waiting to be sent to a child.
type queued struct {
	index int
	data  []byte
	buf   *Buf // holds data (the queue's reference), or nil
}

// forwarder sends one stripe of a transfer to one child over one Push stream and relays the
// child's subtree messages (progress, results) to report. Its queue is bounded, and a full
// queue never blocks the relay: the chunks that do not fit are remembered by index and read
// back from the store when the child has caught up. So a slow or stalled child slows only its
// own subtree, never its siblings or the path above, and a forwarder holds at most cap(queue)+1
// chunks in memory.
//
// When the stream breaks before every receiver of the subtree answered, the forwarder repairs
// it (see repair): the child's subtree is re-attached to this agent, and the forwarder ends
// only when the replacements have ended.
type forwarder struct {
	e         *Engine
	heard     atomic.Int64 // unix nanoseconds of the stream's last sign of life (see liveUp)
	hdr       Header       // header to send (Child, Stripe set)
	backlog   []int        // chunks of the stripe held when the forwarder started, sent first
	read      func(i int) ([]byte, error)
	frameSize int                       // of the chunks it sends whole
	readBuf   func(i int) (*Buf, error) // reads a stored chunk into a pooled buffer; nil, or (nil, nil) for a chunk it cannot: use read
	limiter   *rate.Limiter             // the push's own cap on this sender (nil: none)
	pace      *balance                  // paces it against the source's other stripes (nil: none)
	acked     atomic.Pointer[Unacked]   // the open stream, when it tells its unacknowledged bytes
	queue     chan queued
	lagMu     sync.Mutex
	lagging   []int         // chunks that did not fit in the queue, to read back from the store
	lagged    chan struct{} // signals lagging (capacity 1)
	report    func(UpMsg)
	subtree   []string    // receivers below this child in this stripe, the child included
	host      forwardHost // the transfer that feeds it; adopts orphans on repair (nil: no repair)
	attempt   int         // how many times in a row this child's stream was opened again
	finished  chan struct{}
	finOnce   sync.Once
	aborted   chan struct{} // closed when the host failed: the stream is cut, not closed
	abOnce    sync.Once
	stopped   chan struct{} // closed when the stream is over: enqueue no longer blocks
	done      chan struct{} // closed when the stream and any repair are over
	sent      int           // chunks sent (for tests and metrics)
	skipped   int           // chunks the child already held
	sentBits  []byte        // chunks sent on the stream
	resultOK  map[string]bool
	// inSubtree are the receivers this child may report for.
	inSubtree map[string]bool
	sending   atomic.Int64 // when the send in progress began (unix ns), 0 when none
	// opened is closed when the first stream to the child answered its header (the child and,
	// by the setup wave, its subtree are ready for data) or failed to.
	opened   chan struct{}
	openOnce sync.Once

	// Cut-through (cut.go): frames of the chunks being passed on as they arrive. Under lagMu:
	frames     chan Frame
	cutReady   bool         // the stream is open and the backlog sent
	cutPending int          // chunks taken for cut-through whose last frame is not sent yet (at most 2)
	cutIdx     map[int]bool // chunks taken for cut-through and not yet verified here
	heldAt     []byte       // the child's holding answer
}

// forwardHost is what feeds forwarders: a receiver's transfer, or the source's push. A repair
// asks it for new forwarders.
type forwardHost interface {
	// overlay is the plan the host forwards by.
	overlay() Plan
	// adopt starts a forwarder of stripe s to child (and child's subtree in the plan), fed
	// with the host's chunks of the stripe; attempt counts consecutive re-opens of child.
	adopt(s int, child string, attempt int) *forwarder
	// backfill lists the chunks of stripe s the host can send now (held, or encoded again
	// from held data), and total the chunk indexes of the object, parity included.
	backfill(s int) []int
	total() int
}

// Repair policy: a child whose stream broke is opened again, after reopenBackoff doubling up
// to maxBackoff, while gossip still lists it alive, so that a transient break, a dial that
// timed out on a saturated link, or a quick restart resumes where it stopped. The data plane
// is evidence of life too: a stream that delivered chunks before it broke starts the count
// again. After maxReopen fruitless attempts in a row (about 6 s), or when gossip declared the
// child gone and for suspectGrace neither gossip nor the child's stream showed it alive, it
// is reported failed and its children are re-attached to this agent. A leaf of the stripe
// (no children to re-attach) that gossip declared gone gets refuteWindow more for gossip to
// list it alive again, and its stream is then opened again.
const (
	maxReopen     = 6
	reopenBackoff = 100 * time.Millisecond
	maxBackoff    = 3200 * time.Millisecond
	suspectGrace  = time.Second
	refuteWindow  = 10 * time.Second
)

func newForwarder(e *Engine, hdr Header, backlog []int, read func(int) ([]byte, error), subtree []string, report func(UpMsg)) *forwarder {
	f := &forwarder{
		e: e, hdr: hdr, backlog: backlog, read: read, report: report, subtree: subtree,
		queue:     make(chan queued, e.cfg.QueueChunks),
		lagged:    make(chan struct{}, 1),
		finished:  make(chan struct{}),
		aborted:   make(chan struct{}),
		stopped:   make(chan struct{}),
		done:      make(chan struct{}),
		opened:    make(chan struct{}),
		resultOK:  map[string]bool{},
		inSubtree: map[string]bool{},
		frames:    make(chan Frame, maxCutPending*framesPerChunk(hdr.Manifest)+2),
		cutIdx:    map[int]bool{},
		frameSize: frameSizeFor(int(hdr.Manifest.Proto().GetChunkSize())),
	}
	for _, r := range subtree {
		f.inSubtree[r] = true
	}
	return f
}

// errSendTimeout ends the stream of a child that took nothing for Config.SendTimeout.
var errSendTimeout = errors.New("transfer: the child took nothing within the send timeout (it stopped reading)")

// readStored reads chunk i back from the host's store, into a pooled buffer (returned, for the
// caller to free) where the store can.
func (f *forwarder) readStored(i int) ([]byte, *Buf, error) {
	var b *Buf
	var err error
	if f.readBuf != nil {
		b, err = f.readBuf(i)
	}
	switch {
	case err != nil:
		return nil, nil, err
	case b != nil:
		return b.B, b, nil
	}
	data, err := f.read(i)
	return data, nil, err
}

// unacked returns the bytes the forwarder's open stream sent that its child has not
// acknowledged yet, when the stream tells them (see Unacked).
func (f *forwarder) unacked() (int, bool) {
	if u := f.acked.Load(); u != nil {
		return (*u).Unacked()
	}
	return 0, false
}

// sendTimed runs one send, marking it in progress for watchSends.
func (f *forwarder) sendTimed(send func() error) error {
	f.sending.Store(time.Now().UnixNano())
	err := send()
	f.sending.Store(0)
	return err
}

// watchSends cancels the stream with errSendTimeout when one send has been blocked for d
// (the child's flow-control window stayed full: it stopped reading). It returns a function
// that stops watching.
func (f *forwarder) watchSends(ctx context.Context, cancel context.CancelCauseFunc, d time.Duration) func() {
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(max(d/4, time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-tick.C:
				if t := f.sending.Load(); t != 0 && now.UnixNano()-t > int64(d) {
					cancel(errSendTimeout)
					return
				}
			}
		}
	}()
	return func() { close(done) }
}

// framesPerChunk is how many frames a chunk of m takes at most.
func framesPerChunk(m Manifest) int {
	cs := int(m.Proto().GetChunkSize())
	return max(1, (cs+FrameSize-1)/FrameSize)
}

// enqueue hands a verified chunk to the forwarder. It never blocks: when the queue is full
// (the child is slower than the parent) it records the index, and the forwarder reads the
// chunk back from the store later. A forwarder whose stream is over takes nothing. When buf
// holds data, the queue takes a reference of its own, dropped once the chunk is sent (or the
// stream is over); without buf, data is the garbage collector's.
func (f *forwarder) enqueue(ctx context.Context, i int, data []byte, buf *Buf) error {
	if f.cutTaken(i) {
		return ctx.Err()
	}
	f.lagMu.Lock()
	// Under lagMu, so that drain, which holds it, sees every chunk queued before the stop.
	if isClosed(f.stopped) {
		f.lagMu.Unlock()
		return nil
	}
	select {
	case f.queue <- queued{i, data, buf.Ref()}:
		f.e.m.addQueued(len(data))
		f.lagMu.Unlock()
	default:
		buf.Free()
		f.lagging = append(f.lagging, i)
		f.lagMu.Unlock()
		select {
		case f.lagged <- struct{}{}:
		default:
		}
	}
	return ctx.Err()
}

// isClosed reports whether ch is closed (without waiting).
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// takeLagging returns and clears the chunks that overflowed the queue.
func (f *forwarder) takeLagging() []int {
	f.lagMu.Lock()
	defer f.lagMu.Unlock()
	out := f.lagging
	f.lagging = nil
	return out
}

// markOpened records that the first stream to the child answered, or will not. Idempotent.
func (f *forwarder) markOpened() { f.openOnce.Do(func() { close(f.opened) }) }

// finish tells the forwarder no more chunks will come. Idempotent.
func (f *forwarder) finish() { f.finOnce.Do(func() { close(f.finished) }) }

// abort cuts the stream instead of closing it: the host failed, so the child must not take
// the stream's end for the end of the stripe. The child keeps what it verified and waits for
// a new parent, which the host's own parent provides (it re-attaches a failed relay's
// children). Idempotent.
func (f *forwarder) abort() { f.abOnce.Do(func() { close(f.aborted) }) }

// errAborted ends the stream of an aborted forwarder.
var errAborted = errors.New("transfer: the relay failed; stream cut for a repair")

// start runs the forwarder in a goroutine owned by the agent. On an agent that is stopping it
// ends at once, its subtree unreported.
func (f *forwarder) start(ctx context.Context) {
	if !f.e.goFunc(func() { f.run(ctx) }) {
		f.markOpened()
		close(f.stopped)
		close(f.done)
	}
}

// drain empties the queue and the cut-through frames of a forwarder whose stream is over
// (f.stopped is closed), dropping their buffers' references: nothing is added after it.
func (f *forwarder) drain() {
	f.lagMu.Lock()
	defer f.lagMu.Unlock()
	f.cutPending = 0
	for {
		select {
		case q := <-f.queue:
			f.e.m.addQueued(-len(q.data))
			q.buf.Free()
		case fr := <-f.frames:
			fr.Buf.Free()
		default:
			return
		}
	}
}

func (f *forwarder) stream(ctx context.Context) (err error) {
	wctx, stop := f.e.members.Watch(ctx, f.hdr.Child)
	defer stop()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// When gossip declares the child gone the stream is cut, unless the member shows up
	// alive again or its stream shows it alive (see stillAlive): a host too busy, or behind
	// links too full, to answer gossip's probes in time keeps its stream undisturbed.
	stopWatch := context.AfterFunc(wctx, func() {
		cause := context.Cause(wctx)
		if errors.Is(cause, membership.ErrMemberGone) && f.stillAlive(ctx, f.hdr.Child) {
			return
		}
		cancel(cause)
	})
	defer stopWatch()
	defer func() {
		if cause := context.Cause(ctx); err != nil && errors.Is(cause, membership.ErrMemberGone) {
			err = cause
		}
	}()
	defer func() {
		if cause := context.Cause(ctx); err != nil && errors.Is(cause, errSendTimeout) {
			err = cause
		}
	}()
	if d := f.e.cfg.SendTimeout; d > 0 {
		defer f.watchSends(ctx, cancel, d)()
	}
	opened := time.Now()
	up, err := f.e.net.OpenPush(ctx, f.hdr.Child, f.hdr.Addrs[f.hdr.Child])
	if err != nil {
		return err
	}
	tOpen := time.Since(opened)
	if err := f.sendTimed(func() error { return up.SendHeader(f.hdr) }); err != nil {
		return fmt.Errorf("send header: %w", err)
	}
	tHdr := time.Since(opened)
	held, err := up.RecvHeld()
	if err != nil {
		return fmt.Errorf("header answer: %w", err)
	}
	f.heard.Store(time.Now().UnixNano())
	f.markOpened()
	if u, ok := up.(Unacked); ok {
		f.acked.Store(&u)
		defer f.acked.Store(nil)
	}
	up = liveUp{Upstream: up, heard: &f.heard}
	f.e.log.Debug("stream to child", "transfer", f.hdr.Transfer, "stripe", f.hdr.Stripe, "child", f.hdr.Child, "open", time.Since(opened), "dial", tOpen, "hdr", tHdr)
	// Messages from the child flow up concurrently with the chunks flowing down.
	upErr := make(chan error, 1)
	go func() { upErr <- f.relay(up) }()

	sendErr := f.send(ctx, up, held)
	if sendErr != nil && !errors.Is(sendErr, io.EOF) {
		cancel(nil)
		<-upErr
		return sendErr
	}
	if err := <-upErr; err != nil || sendErr == nil {
		return err
	}
	// io.EOF: the child ended the stream before this side was done with it. Its status was
	// OK (relay returned nil); a stream whose whole subtree reported success ended well (its
	// answer raced this side's close).
	if f.subtreeOK() {
		return nil
	}
	return sendErr
}

// subtreeOK reports whether every receiver of the child's subtree reported success. Called
// once the stream's messages are read (relay returned).
func (f *forwarder) subtreeOK() bool {
	for _, r := range f.subtree {
		if !f.resultOK[r] {
			return false
		}
	}
	return true
}

func (f *forwarder) send(ctx context.Context, up Upstream, held []byte) error {
	f.sentBits = newBitmap(f.host.total())
	sendOne := func(i int, data []byte, buf *Buf) error {
		f.e.hang()
		if f.pace != nil {
			if err := f.pace.wait(ctx, f); err != nil {
				return err
			}
			defer f.pace.advance(f)
		}
		if bitGet(held, i) || bitGet(f.sentBits, i) {
			f.skipped++
			return nil
		}
		if err := f.e.waitRate(ctx, len(data)); err != nil {
			return err
		}
		if err := WaitLimiter(ctx, f.limiter, len(data)); err != nil {
			return err
		}
		if f.e.cfg.Corrupt != nil {
			data, buf = f.e.cfg.Corrupt(f.hdr.Child, i, data), nil
		}
		if err := f.sendWhole(up, i, data, buf); err != nil {
			return fmt.Errorf("send chunk %d: %w", i, err)
		}
		bitSet(f.sentBits, i)
		f.sent++
		f.e.m.BytesOut.Add(float64(len(data)))
		f.e.m.chunksOut.Inc()
		return nil
	}
	// sendStored reads listed chunks back from the host's store and sends those the child
	// neither holds nor was sent.
	sendStored := func(chunks []int) error {
		for _, i := range chunks {
			if bitGet(held, i) {
				f.skipped++
				if f.pace != nil {
					f.pace.advance(f)
				}
				continue
			}
			if bitGet(f.sentBits, i) {
				continue
			}
			data, buf, err := f.readStored(i)
			if err != nil {
				return fmt.Errorf("read chunk %d: %w", i, err)
			}
			err = sendOne(i, data, buf)
			buf.Free()
			if err != nil {
				return err
			}
		}
		return nil
	}
	if err := sendStored(f.backlog); err != nil {
		return err
	}
	f.cutMayStart(held)
	sendQueued := func(q queued) error {
		err := sendOne(q.index, q.data, q.buf)
		q.buf.Free()
		f.e.m.addQueued(-len(q.data))
		return err
	}
	for {
		select {
		case q := <-f.queue:
			if err := sendQueued(q); err != nil {
				return err
			}
		case fr := <-f.frames:
			if err := f.sendCut(ctx, up, fr); err != nil {
				return err
			}
		case <-f.lagged:
			if err := sendStored(f.takeLagging()); err != nil {
				return err
			}
		case <-f.aborted:
			return errAborted
		case <-f.finished:
			for { // what was queued or overflowed before the end, then close
				select {
				case q := <-f.queue:
					if err := sendQueued(q); err != nil {
						return err
					}
				case fr := <-f.frames:
					if err := f.sendCut(ctx, up, fr); err != nil {
						return err
					}
				default:
					if err := sendStored(f.takeLagging()); err != nil {
						return err
					}
					// Before closing, every chunk of the stripe the host can send that did
					// not go through the queue: parity of groups it completed by decoding
					// (never received), or chunks it decoded while its own stream of the
					// stripe was broken. So a stream closes only when the child has every
					// chunk its parent could give it.
					if err := sendStored(f.host.backfill(f.hdr.Stripe)); err != nil {
						return err
					}
					return up.CloseSend()
				}
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (f *forwarder) relay(up Upstream) error {
	for {
		m, err := up.RecvUp()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if !f.inSubtree[m.Receiver] {
			// A child vouches only for its own subtree of the plan.
			f.e.m.reportsRejected.Inc()
			f.e.log.Warn("report for a receiver outside the child's subtree ignored", "transfer", f.hdr.Transfer,
				"child", f.hdr.Child, "receiver", m.Receiver)
			continue
		}
		if m.Final {
			f.resultOK[m.Receiver] = m.OK
		}
		f.report(m)
	}
}
