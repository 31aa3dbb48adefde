package transfer

import (
	"context"
	"sync"
	"time"
)

// balance paces a push's first source forwarders of different stripes against each other:
// none sends before all their streams are open (start), and then none writes more than
// balanceSlack of its chunks ahead of what another's child has received, in proportion to
// their shares of the object, so that the stripes reach the children at the same rate. The
// stripes' streams share the source's uplink, and TCP shares it only roughly: unpaced, one
// stripe's stream was seen finishing a third of a second before the other's on a 100 Mbit/s
// testbed, and for that third of a second the uplink, and every receiver's downlink, ran at
// half rate while the last receivers waited for the lagging stripe. Pacing holds the stream
// that is ahead, which leaves its share of the uplink to the one behind.
//
// What a stream's child has received is what the stream wrote less what its socket has not
// had acknowledged yet ([Unacked]), in chunks. Counted on writes alone, the socket buffers
// hid the difference: on the same testbed the children's acknowledged bytes were 1.5 to 1.9
// MB apart through the push (about 0.3 MB when counted this way), and the lagging stripe's
// first relay then received at the uplink's full rate what it could pass on at half of it.
// A stream that cannot tell (gRPC's) counts what it wrote.
//
// A stream that made no progress for balanceStale (a child slow to open, a stream that
// broke and is being repaired) is not waited for: pacing never stalls a healthy stripe
// behind a broken one for longer than that. Cost: one lock, a scan of the stripes and one
// system call per other stripe for each chunk sent; a stream held back looks again every
// balancePoll.
type balance struct {
	joined    chan struct{} // closed when every first stream has joined
	startOnce sync.Once
	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every change
	members   map[*forwarder]*paced
}

// paced is one forwarder's progress: chunks of its backlog done (sent or skipped) of total.
type paced struct {
	stripe      int
	done, total int
	chunk       int       // bytes of a chunk, to count unacknowledged bytes in chunks
	last        time.Time // of the last progress, or of joining
}

const (
	balanceSlack = 2
	balanceStale = 250 * time.Millisecond
	// balancePoll is how often a stream held back looks again at what the others' children
	// acknowledged (acknowledgements come without an event of the push's).
	balancePoll = 2 * time.Millisecond
)

func newBalance() *balance {
	return &balance{joined: make(chan struct{}), changed: make(chan struct{}), members: map[*forwarder]*paced{}}
}

// allJoined tells start that every member has joined.
func (b *balance) allJoined() { close(b.joined) }

// join adds f, whose stream carries total chunks of chunk bytes.
func (b *balance) join(f *forwarder, total, chunk int) {
	b.mu.Lock()
	b.members[f] = &paced{stripe: f.hdr.Stripe, total: max(total, 1), chunk: max(chunk, 1), last: time.Now()}
	b.mu.Unlock()
}

// leave removes f (its stream ended) and wakes the others.
func (b *balance) leave(f *forwarder) {
	b.mu.Lock()
	delete(b.members, f)
	b.notifyLocked()
	b.mu.Unlock()
}

// advance records one more chunk of f's done.
func (b *balance) advance(f *forwarder) {
	b.mu.Lock()
	if p := b.members[f]; p != nil {
		p.done++
		p.last = time.Now()
		b.notifyLocked()
	}
	b.mu.Unlock()
}

func (b *balance) notifyLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// ahead reports whether f's next chunk would put it more than the slack ahead of what a
// live member's child received, whether that verdict counted unacknowledged bytes (which
// change without an event: look again after balancePoll), and the channel that signals the
// next change.
func (b *balance) ahead(f *forwarder, now time.Time) (ahead, poll bool, changed chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	me := b.members[f]
	if me == nil {
		return false, false, b.changed
	}
	for g, o := range b.members {
		if g == f || o.stripe == me.stripe || now.Sub(o.last) > balanceStale {
			continue
		}
		// (me.done+1-slack)/me.total > received/o.total: the slack counts f's own chunks.
		received := float64(o.done)
		un, known := g.unacked()
		if known {
			received -= float64(un) / float64(o.chunk)
		}
		if float64((me.done+1-balanceSlack)*o.total) > received*float64(me.total) {
			return true, known, b.changed
		}
	}
	return false, false, b.changed
}

// start waits, once per push, until every member's stream is open (see awaitSubtree), at
// most subtreeSetupWait: no stripe's data leaves the source while another stripe's streams
// are still opening, so those open on idle links and CPUs too.
func (b *balance) start(ctx context.Context) {
	b.startOnce.Do(func() {
		select {
		case <-b.joined:
		case <-ctx.Done():
			return
		}
		b.mu.Lock()
		fwds := make([]*forwarder, 0, len(b.members))
		for f := range b.members {
			fwds = append(fwds, f)
		}
		b.mu.Unlock()
		awaitSubtree(ctx, fwds, subtreeSetupWait)
	})
}

// wait holds f's next chunk until every first stream is open (start) and while f is ahead
// (see ahead), until ctx ends.
func (b *balance) wait(ctx context.Context, f *forwarder) error {
	b.start(ctx)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		ahead, poll, changed := b.ahead(f, time.Now())
		if !ahead {
			return nil
		}
		d := balanceStale
		if poll {
			d = balancePoll
		}
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-changed:
		case <-timer.C: // a member may have gone stale
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
