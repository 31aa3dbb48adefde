package transfer

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/treecast/treecast/node/membership"
)

// run drives the stream until the child ends it. Every receiver of the subtree gets a final
// result through report: its own, or a failure naming why the stream broke and could not be
// repaired.
func (f *forwarder) run(ctx context.Context) {
	defer close(f.done)
	err := f.stream(ctx)
	f.markOpened()
	if f.pace != nil {
		f.pace.leave(f)
	}
	close(f.stopped)
	f.drain()
	select {
	case <-f.aborted: // this agent failed the transfer: its own parent repairs the subtree
		return
	default:
	}
	if f.e.ctx.Err() != nil { // this agent is stopping: its parent repairs the subtree
		return
	}
	if err != nil {
		f.e.m.errors.WithLabelValues("child").Inc()
		f.e.log.Warn("child stream failed", "transfer", f.hdr.Transfer, "child", f.hdr.Child, "stripe", f.hdr.Stripe, "err", err)
	}
	// Orphans: the receivers of the subtree without a result, and, when the stream broke, also
	// those reported failed (a relay below may have reported its own subtree failed just
	// before it died; they may well be alive, and the repair finds out).
	var orphans []string
	for _, r := range f.subtree {
		if ok, known := f.resultOK[r]; !known || !ok && err != nil {
			orphans = append(orphans, r)
		}
	}
	// Receivers of the subtree without a result are orphans whatever the stream's end: the
	// child failed (its stream broke, or it reported its own failure), or it stopped while
	// forwarding. Repair the subtree.
	if childOK, known := f.resultOK[f.hdr.Child]; err == nil && !known {
		err = fmt.Errorf("%s ended its stream without its result", f.hdr.Child)
	} else if err == nil && !childOK {
		err = fmt.Errorf("%s failed", f.hdr.Child)
	} else if err == nil && len(orphans) > 0 {
		err = fmt.Errorf("%s ended its stream without the results of %v", f.hdr.Child, orphans)
	}
	if len(orphans) > 0 && f.host != nil && ctx.Err() == nil {
		orphans = f.repair(ctx, err, orphans)
	}
	if f.e.ctx.Err() != nil { // stopped during the repair: its parent repairs the subtree
		return
	}
	// Receivers that did not report, and could not be re-attached, are failed, with the reason.
	for _, r := range orphans {
		reason := fmt.Errorf("%w: %s (stripe %d): no result", ErrChildFailed, f.hdr.Child, f.hdr.Stripe)
		if err != nil {
			reason = fmt.Errorf("%w: %s (stripe %d): %v", ErrChildFailed, f.hdr.Child, f.hdr.Stripe, err)
		}
		f.report(UpMsg{Receiver: r, Final: true, Err: reason.Error()})
	}
}

// repair re-attaches the receivers orphaned when the stream to the child broke with cause:
// the child itself again while gossip lists it alive (see maxReopen),
// else the child is reported failed and each of its children in the stripe is re-attached
// to this agent, its subtree unchanged (the rule of scheduler.Replan: an orphan goes to its
// nearest live ancestor, and healthy subtrees stay as they are). Receivers keep the chunks
// they verified: the new streams' header exchange skips them. repair returns the receivers it
// could not cover, after the replacement forwarders have ended (they report their own
// subtrees' results, failures included).
func (f *forwarder) repair(ctx context.Context, cause error, orphans []string) []string {
	s, child := f.hdr.Stripe, f.hdr.Child
	var next []*forwarder
	_, reported := f.resultOK[child]                        // a child that reported its failure is not retried
	reported = reported || errors.Is(cause, errSendTimeout) // nor one that stopped reading
	attempt := f.attempt
	if f.sent > 0 { // the stream made progress: the child was alive and reading
		attempt = 0
	}
	// (A member gossip declared gone had suspectGrace to refute it before its stream was cut.)
	alive := f.e.members.Alive(child)
	if !alive && !reported && attempt < maxReopen && errors.Is(cause, membership.ErrMemberGone) &&
		len(f.host.overlay().Children(child, s)) == 0 {
		// A leaf of the stripe that gossip gave up on may be alive and only starved (of CPU,
		// or of the links its probes share with the data): nobody waits on it, so give gossip
		// refuteWindow to list it alive again, then reopen its stream, instead of failing it
		// and leaving it to wait for a parent until it stalls.
		alive = f.waitAlive(ctx, child, refuteWindow)
	}
	if !reported && attempt < maxReopen && alive {
		timer := time.NewTimer(min(reopenBackoff<<attempt, maxBackoff))
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return orphans
		}
		f.e.log.Info("reopening child stream", "transfer", f.hdr.Transfer, "child", child, "stripe", s, "attempt", attempt+1, "cause", cause)
		f.e.repaired(Repair{Transfer: f.hdr.Transfer, Stripe: s, Child: child, Parent: f.e.cfg.Name, Reopen: true, Attempt: attempt + 1, Cause: fmt.Sprint(cause)})
		next = append(next, f.host.adopt(s, child, attempt+1))
	} else {
		if _, ok := f.resultOK[child]; !ok {
			f.report(UpMsg{Receiver: child, Final: true,
				Err: fmt.Sprintf("%v: %s (stripe %d): %v", ErrChildFailed, child, s, cause)})
		}
		grand := f.host.overlay().Children(child, s)
		f.e.m.repairs.Inc()
		f.e.log.Warn("re-attaching orphaned subtree", "transfer", f.hdr.Transfer, "failed", child, "stripe", s, "orphans", grand)
		f.e.repaired(Repair{Transfer: f.hdr.Transfer, Stripe: s, Child: child, Parent: f.e.cfg.Name, Orphans: grand, Cause: fmt.Sprint(cause)})
		for _, g := range grand {
			if !f.e.members.Known(g) && f.hdr.Addrs[g] == "" {
				// Not a member of the cluster that this agent or the source knows (a plan
				// naming strangers): its subtree fails at once instead of costing a dial
				// timeout per level.
				for _, r := range subtreeOf(f.host.overlay(), g, s) {
					f.report(UpMsg{Receiver: r, Final: true, Err: fmt.Sprintf("%v: %s (stripe %d): not a member of the cluster", ErrChildFailed, g, s)})
				}
				continue
			}
			next = append(next, f.host.adopt(s, g, 0))
		}
	}
	for _, n := range next {
		<-n.done
	}
	return nil
}

// waitAlive waits up to d for gossip to list the member alive, and reports whether it did.
// Polls every 100 ms.
func (f *forwarder) waitAlive(ctx context.Context, name string, d time.Duration) bool {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
		if f.e.members.Alive(name) {
			return true
		}
	}
	return false
}

// Repair is one repair an agent made of a broken stream to its child Child in stripe Stripe:
// the stream opened again (Reopen, while gossip lists the child alive), or the child given
// up as failed and each of its children in the stripe (Orphans, their subtrees unchanged)
// re-attached under Parent, this agent.
type Repair struct {
	Transfer string
	Stripe   int
	Child    string
	Parent   string
	Reopen   bool
	Attempt  int      // of a reopening: 1, 2, ...
	Orphans  []string // of a re-attachment
	Cause    string   // why the stream ended
}

// repaired tells the agent's hook of r.
func (e *Engine) repaired(r Repair) {
	if e.repairs != nil {
		e.repairs(r)
	}
}

// liveUp is a child's stream that records, in heard, when it last showed the child alive: a
// frame the child's flow control let through, or a message from it.
type liveUp struct {
	Upstream
	heard *atomic.Int64
}

func (u liveUp) SendFrame(fr Frame) error {
	err := u.Upstream.SendFrame(fr)
	if err == nil {
		u.heard.Store(time.Now().UnixNano())
	}
	return err
}

func (u liveUp) RecvUp() (UpMsg, error) {
	m, err := u.Upstream.RecvUp()
	if err == nil {
		u.heard.Store(time.Now().UnixNano())
	}
	return m, err
}

// stillAlive decides, once gossip has declared the child gone, whether its stream is kept:
// it is while gossip lists the member alive again, or the stream itself shows the child alive
// (a frame taken or a message sent within the last suspectGrace: gossip's probes travel the
// same saturated links as the data, and are lost there first). It returns false, and the
// stream is cut, once the member has been neither for suspectGrace; true when the stream
// ends meanwhile. Polls every 50 ms.
func (f *forwarder) stillAlive(ctx context.Context, name string) bool {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	since := time.Now()
	logged := false
	for {
		if f.e.members.Alive(name) {
			return true
		}
		now := time.Now()
		if now.Sub(time.Unix(0, f.heard.Load())) < suspectGrace {
			if !logged {
				f.e.log.Info("gossip declared a child gone, its stream shows it alive: kept", "transfer", f.hdr.Transfer, "child", name, "stripe", f.hdr.Stripe)
				logged = true
			}
			since = now
		} else if now.Sub(since) >= suspectGrace {
			return false
		}
		select {
		case <-ctx.Done():
			return true
		case <-tick.C:
		}
	}
}
