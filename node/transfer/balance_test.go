package transfer

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// balanceMember is a forwarder of stripe s, its stream open, as far as balance needs one.
func balanceMember(s int) *forwarder {
	f := &forwarder{hdr: Header{Stripe: s}, opened: make(chan struct{})}
	f.markOpened()
	return f
}

// mustRelease fails the test unless w reports a nil error within 10 s; why says what would
// have held it.
func mustRelease(t *testing.T, w <-chan error, why string) {
	t.Helper()
	select {
	case err := <-w:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal(why)
	}
}

// startWait runs b.wait(f) in a goroutine and returns the channel of its result.
func startWait(b *balance, f *forwarder) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- b.wait(context.Background(), f) }()
	return ch
}

func TestBalance(t *testing.T) {
	b := newBalance()
	a, c, same := balanceMember(0), balanceMember(1), balanceMember(0)
	b.join(a, 10, 1)
	b.join(c, 20, 1) // twice as many chunks: it may send two for each of a's
	b.join(same, 10, 1)
	b.allJoined()
	// a may run balanceSlack chunks ahead of c's share, not more; a member of its own stripe
	// (another child of the source in stripe 0) never holds it back.
	for i := range balanceSlack {
		if ahead, _, _ := b.ahead(a, time.Now()); ahead {
			t.Fatalf("a held back at its chunk %d, within the slack", i+1)
		}
		b.advance(a)
	}
	if ahead, _, _ := b.ahead(a, time.Now()); !ahead {
		t.Fatal("a not held back past the slack")
	}
	if ahead, _, _ := b.ahead(same, time.Now()); ahead {
		t.Fatal("a stripe-0 member held back by stripe 0's progress")
	}
	w := startWait(b, a)
	// c's two chunks are one of a's: a's third chunk needs c at (3-2)*20/10 = 2 chunks.
	b.advance(c)
	select {
	case err := <-w:
		t.Fatalf("a released after c's first chunk (%v)", err)
	default:
	}
	b.advance(c)
	mustRelease(t, w, "a still held back once c caught up")

	// A member that leaves (its stream ended) holds nobody back.
	b.advance(a)
	b.advance(a)
	w = startWait(b, a)
	b.leave(c)
	mustRelease(t, w, "a still held back after c left")
}

// heldPair returns a balance of two stripes of 4 chunks each, all joined and open, the first
// (a) held back: it has sent the slack while the second (c) sent nothing.
func heldPair() (b *balance, a, c *forwarder) {
	b = newBalance()
	a, c = balanceMember(0), balanceMember(1)
	b.join(a, 4, 1)
	b.join(c, 4, 1)
	b.allJoined()
	for range balanceSlack {
		b.advance(a)
	}
	return b, a, c
}

// A member that makes no progress for balanceStale (a child slow to open, a stream being
// repaired) is not waited for; a member whose backlog is done never holds another back.
func TestBalanceStaleAndDone(t *testing.T) {
	b, a, c := heldPair()
	start := time.Now()
	mustRelease(t, startWait(b, a), "a held back by a stale member")
	if d := time.Since(start); d < balanceStale/2 {
		t.Fatalf("a released after %v, before c went stale", d)
	}
	for range 4 {
		b.advance(c)
	}
	b.advance(a)
	if ahead, _, _ := b.ahead(a, time.Now()); ahead {
		t.Fatal("a held back by a member that sent its whole backlog")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b2, x, _ := heldPair()
	if err := b2.wait(ctx, x); err == nil {
		t.Fatal("wait with an ended context returned nil while held back")
	}
}

// No stripe's data leaves before every first stream is open (or failed to open): a stripe
// whose streams are still opening holds the others' first chunk.
func TestBalanceStartGate(t *testing.T) {
	b := newBalance()
	a := balanceMember(0)
	slow := &forwarder{hdr: Header{Stripe: 1}, opened: make(chan struct{})}
	b.join(a, 4, 1)
	b.join(slow, 4, 1)
	w := startWait(b, a)
	b.allJoined()
	select {
	case err := <-w:
		t.Fatalf("a's first chunk went before stripe 1's stream opened (%v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	slow.markOpened()
	mustRelease(t, w, "a still held once every stream was open")
}

// fakeUnacked is a stream's count of unacknowledged bytes, set by the test.
type fakeUnacked struct{ n atomic.Int64 }

func (u *fakeUnacked) Unacked() (int, bool) { return int(u.n.Load()), true }

// Pacing counts what a member's child received: what it wrote less what its socket has not
// had acknowledged, in chunks. A member whose writes sit in its socket holds the others back
// until its child acknowledges them, and the member held back looks again without waiting
// for an event (acknowledgements bring none).
func TestBalanceUnacked(t *testing.T) {
	const chunk = 100
	b := newBalance()
	a, c := balanceMember(0), balanceMember(1)
	b.join(a, 10, chunk)
	b.join(c, 10, chunk)
	b.allJoined()
	sock := &fakeUnacked{}
	var u Unacked = sock
	c.acked.Store(&u)
	for range 4 {
		b.advance(c)
	}
	sock.n.Store(3 * chunk) // c wrote 4 chunks, its child acknowledged 1
	for range balanceSlack + 1 {
		b.advance(a)
	}
	// a's fourth chunk needs c's child at 4-2 = 2 chunks: it has 1.
	ahead, poll, _ := b.ahead(a, time.Now())
	if !ahead || !poll {
		t.Fatalf("ahead %v, poll %v: want a held back on c's unacknowledged bytes, looking again", ahead, poll)
	}
	w := startWait(b, a)
	select {
	case err := <-w:
		t.Fatalf("a released while c's child had 1 of 4 chunks (%v)", err)
	case <-time.After(20 * balancePoll):
	}
	sock.n.Store(2 * chunk) // acknowledged: no event of the balance's
	mustRelease(t, w, "a still held back once c's child acknowledged 2 chunks")

	// A stream that cannot tell counts what it wrote.
	c.acked.Store(nil)
	if ahead, _, _ := b.ahead(a, time.Now()); ahead {
		t.Fatal("a held back by c's 4 chunks written, without unacknowledged bytes to count")
	}
}
