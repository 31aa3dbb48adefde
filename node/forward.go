package node

import (
	"golang.org/x/time/rate"

	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// queued is one verified chunk waiting to be sent to a child.
type queued struct {
	index int
	data  []byte
}

// forwarder sends one stripe of a transfer to one child over one Push stream and relays the
// child's subtree messages (progress, results) to report. Its queue is bounded: when the child
// is slower than the parent, enqueue blocks, which stops the parent's reading of its own
// incoming stream, and gRPC flow control pushes back up the tree. A forwarder never holds more
// than cap(queue)+1 chunks.
type forwarder struct {
	a        *Agent
	hdr      pushHeader // header to send (Child, Stripe set)
	backlog  []int      // chunks of the stripe held before the transfer began, sent first
	read     func(i int) ([]byte, error)
	limiter  *rate.Limiter // the push's own cap on this sender (nil: none)
	queue    chan queued
	report   func(upMsg)
	subtree  []string // receivers below this child in this stripe, the child included
	done     chan struct{}
	sent     int // chunks sent (for tests and metrics)
	skipped  int // chunks the child already held
	resultOK map[string]bool
}

func newForwarder(a *Agent, hdr pushHeader, backlog []int, read func(int) ([]byte, error), subtree []string, report func(upMsg)) *forwarder {
	return &forwarder{
		a: a, hdr: hdr, backlog: backlog, read: read, report: report, subtree: subtree,
		queue:    make(chan queued, a.cfg.QueueChunks),
		done:     make(chan struct{}),
		resultOK: map[string]bool{},
	}
}

// enqueue hands a verified chunk to the forwarder, blocking while its queue is full. It
// returns early with ctx's error, or silently when the forwarder has ended (its child failed:
// the child's subtree is already reported failed).
func (f *forwarder) enqueue(ctx context.Context, i int, data []byte) error {
	f.a.m.addQueued(len(data))
	select {
	case f.queue <- queued{i, data}:
		return nil
	case <-f.done:
		f.a.m.addQueued(-len(data))
		return nil
	case <-ctx.Done():
		f.a.m.addQueued(-len(data))
		return ctx.Err()
	}
}

// finish tells the forwarder no more chunks will come.
func (f *forwarder) finish() { close(f.queue) }

// run drives the stream until the child ends it. Every receiver of the subtree gets a final
// result through report: its own, or a failure naming why the stream broke.
func (f *forwarder) run(ctx context.Context) {
	defer close(f.done)
	err := f.stream(ctx)
	if err != nil {
		f.a.m.errors.WithLabelValues("child").Inc()
		f.a.log.Warn("child stream failed", "transfer", f.hdr.Transfer, "child", f.hdr.Child, "stripe", f.hdr.Stripe, "err", err)
	}
	var orphans []string
	for _, r := range f.subtree {
		if _, ok := f.resultOK[r]; !ok {
			orphans = append(orphans, r)
		}
	}
	// Re-planning hook: a repairer may re-attach the orphaned receivers elsewhere (they keep
	// the chunks they verified) and report their results itself.
	if len(orphans) > 0 && f.a.repair != nil && f.a.repair(ctx, orphanSet{Transfer: f.hdr.Transfer, Child: f.hdr.Child,
		Stripe: f.hdr.Stripe, Receivers: orphans, Cause: err, Report: f.report}) {
		orphans = nil
	}
	// Otherwise receivers that did not report are failed, with the reason.
	for _, r := range orphans {
		reason := fmt.Errorf("%w: %s (stripe %d): no result", ErrChildFailed, f.hdr.Child, f.hdr.Stripe)
		if err != nil {
			reason = fmt.Errorf("%w: %s (stripe %d): %v", ErrChildFailed, f.hdr.Child, f.hdr.Stripe, err)
		}
		f.report(upMsg{Receiver: r, Final: true, Err: reason.Error()})
	}
	// Drain the queue so the producer never blocks on a dead child.
	for q := range f.queue {
		f.a.m.addQueued(-len(q.data))
	}
}

func (f *forwarder) stream(ctx context.Context) (err error) {
	ctx, stop := f.a.watchMember(ctx, f.hdr.Child)
	defer stop()
	defer func() {
		if cause := context.Cause(ctx); err != nil && errors.Is(cause, ErrMemberGone) {
			err = cause
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	up, err := f.a.openPush(ctx, f.hdr.Child)
	if err != nil {
		return err
	}
	if err := up.sendHeader(f.hdr); err != nil {
		return fmt.Errorf("send header: %w", err)
	}
	held, err := up.recvHeld()
	if err != nil {
		return fmt.Errorf("header answer: %w", err)
	}
	// Messages from the child flow up concurrently with the chunks flowing down.
	upErr := make(chan error, 1)
	go func() { upErr <- f.relay(up) }()

	sendErr := f.send(ctx, up, held)
	if sendErr != nil {
		cancel()
		<-upErr
		return sendErr
	}
	return <-upErr
}

func (f *forwarder) send(ctx context.Context, up upstream, held []byte) error {
	sendOne := func(i int, data []byte) error {
		if bitGet(held, i) {
			f.skipped++
			return nil
		}
		if err := f.a.waitRate(ctx, len(data)); err != nil {
			return err
		}
		if err := waitLimiter(ctx, f.limiter, len(data)); err != nil {
			return err
		}
		if f.a.cfg.corrupt != nil {
			data = f.a.cfg.corrupt(f.hdr.Child, i, data)
		}
		if err := up.sendChunk(i, data); err != nil {
			return fmt.Errorf("send chunk %d: %w", i, err)
		}
		f.sent++
		f.a.m.bytesOut.Add(float64(len(data)))
		f.a.m.chunksOut.Inc()
		return nil
	}
	for _, i := range f.backlog {
		if bitGet(held, i) {
			f.skipped++
			continue
		}
		data, err := f.read(i)
		if err != nil {
			return fmt.Errorf("read chunk %d: %w", i, err)
		}
		if err := sendOne(i, data); err != nil {
			return err
		}
	}
	for {
		select {
		case q, ok := <-f.queue:
			if !ok {
				return up.closeSend()
			}
			err := sendOne(q.index, q.data)
			f.a.m.addQueued(-len(q.data))
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (f *forwarder) relay(up upstream) error {
	for {
		m, err := up.recvUp()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if m.Final {
			f.resultOK[m.Receiver] = m.OK
		}
		f.report(m)
	}
}

// since returns seconds since t, for results.
func since(t time.Time) float64 { return time.Since(t).Seconds() }

// orphanSet describes receivers cut off by a broken child stream: the child and everything
// below it in one stripe that had not reported a result.
type orphanSet struct {
	Transfer  string
	Child     string
	Stripe    int
	Receivers []string
	Cause     error       // the stream's error; nil when it ended without their results
	Report    func(upMsg) // where their results must go (toward the source)
}
