package membership

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// memberlist's Shutdown does not wait for a probe in flight (it ends within a probe
	// interval by its own timeout).
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"))
}

// recorder is a State that keeps the messages it is given.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) NotifyMsg(b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, string(b))
}
func (r *recorder) LocalState(bool) []byte        { return nil }
func (r *recorder) MergeRemoteState([]byte, bool) {}
func (r *recorder) has(m string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range r.msgs {
		if x == m {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func start(t *testing.T, name string, join []string, st State) *Gossip {
	t.Helper()
	g, err := New(Config{Name: name, Meta: Meta{Addr: "127.0.0.1:1", Labels: map[string]string{"rack": "r1"}}, Bind: "127.0.0.1:0", Join: join, State: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Shutdown() })
	if err := g.Join(context.Background()); err != nil {
		t.Fatal(err)
	}
	return g
}

// TestGossipRealPath: two members over real memberlist on loopback see each other with their
// metadata; a reliable message reaches the other's State; a graceful leave cancels the
// watches on the leaver with ErrMemberGone; a second agent under a taken name is refused.
func TestGossipRealPath(t *testing.T) {
	rb := &recorder{}
	a := start(t, "a", nil, &recorder{})
	b := start(t, "b", []string{a.GossipAddr()}, rb)
	waitFor(t, "a to see b", func() bool { return a.Alive("b") })
	m, ok := a.Member("b")
	if !ok || m.Labels["rack"] != "r1" || m.Addr != "127.0.0.1:1" || m.GossipAddr != b.GossipAddr() {
		t.Fatalf("a sees b as %+v", m)
	}
	if addr, err := a.WaitAddr(context.Background(), "b", time.Second); err != nil || addr != "127.0.0.1:1" {
		t.Fatalf("WaitAddr(b) = %q, %v", addr, err)
	}
	if _, err := a.WaitAddr(context.Background(), "nobody", 50*time.Millisecond); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("WaitAddr(nobody): %v, want ErrUnknownMember", err)
	}

	if err := a.SendReliable(m, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to get the message", func() bool { return rb.has("hello") })

	dup, err := New(Config{Name: "b", Meta: Meta{Addr: "127.0.0.1:2"}, Bind: "127.0.0.1:0", Join: []string{a.GossipAddr()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := dup.Join(context.Background()); !errors.Is(err, ErrNameTaken) {
		t.Errorf("a second b joined: %v, want ErrNameTaken", err)
	}
	_ = dup.Shutdown()

	ctx, stop := a.Watch(context.Background(), "b")
	defer stop()
	if err := b.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
		if !errors.Is(context.Cause(ctx), ErrMemberGone) {
			t.Fatalf("watch ended with %v, want ErrMemberGone", context.Cause(ctx))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch on b did not fire after b left")
	}
	if a.Alive("b") || !a.Dead("b") {
		t.Fatal("b still alive after leaving")
	}
	// A watch begun after the death fires at once.
	ctx2, stop2 := a.Watch(context.Background(), "b")
	defer stop2()
	if ctx2.Err() == nil {
		t.Fatal("a watch on a dead member did not fire at once")
	}
}

// TestJoinBeforeSeed: an agent whose seed is not up yet starts alone, and its rejoin loop
// joins the seed once it comes up.
func TestJoinBeforeSeed(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seedAddr := l.Addr().String()
	l.Close()
	b, err := New(Config{Name: "b", Meta: Meta{Addr: "127.0.0.1:1"}, Bind: "127.0.0.1:0", Join: []string{seedAddr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Shutdown() })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err = b.Join(ctx)
	cancel()
	if err == nil || errors.Is(err, ErrNameTaken) {
		t.Fatalf("join with no seed up: %v, want a join error", err)
	}
	rctx, rcancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Rejoin(rctx, 30*time.Second) }()
	t.Cleanup(func() { rcancel(); <-done })
	a, err := New(Config{Name: "a", Meta: Meta{Addr: "127.0.0.1:2"}, Bind: seedAddr})
	if err != nil {
		t.Skipf("seed port %s taken meanwhile: %v", seedAddr, err)
	}
	t.Cleanup(func() { _ = a.Shutdown() })
	waitFor(t, "b to join the late seed", func() bool { return b.Alive("a") && a.Alive("b") })
}

// TestRejoinSettles: in its first rounds after joining, Rejoin exchanges the whole state with
// a random alive member that is not a seed (agents started together miss some of the joins'
// broadcasts), and the seed is not one of them.
func TestRejoinSettles(t *testing.T) {
	a := start(t, "a", nil, nil)
	d := start(t, "d", []string{a.GossipAddr()}, nil)
	b := start(t, "b", []string{a.GossipAddr()}, nil)
	waitFor(t, "b to see d", func() bool { return b.Alive("d") })
	var mu sync.Mutex
	var peers []string
	b.synced = func(addr string) {
		mu.Lock()
		defer mu.Unlock()
		peers = append(peers, addr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Rejoin(ctx, 30*time.Second) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "two settling exchanges", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(peers) >= 2
	})
	mu.Lock()
	for _, p := range peers {
		if p != d.GossipAddr() {
			t.Errorf("settling exchange with %s, want d (%s): the seed a (%s) gave its state at the join", p, d.GossipAddr(), a.GossipAddr())
		}
	}
	mu.Unlock()
	// Once its gossip is shut down (a frozen agent's is), Rejoin joins nothing more: it
	// returns, which the exchanges of a member whose gossip stopped would otherwise revive.
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Rejoin still runs after Shutdown")
	}
}

func TestMetaTooLarge(t *testing.T) {
	_, err := New(Config{Name: "x", Meta: Meta{Addr: "127.0.0.1:1", Labels: map[string]string{"k": strings.Repeat("v", 600)}}, Bind: "127.0.0.1:0"})
	if !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("600-byte label: %v, want ErrMetaTooLarge", err)
	}
}

func TestStaticWatch(t *testing.T) {
	s := NewStatic(Member{Name: "a", Addr: "x", State: "alive"})
	ctx, stop := s.Watch(context.Background(), "a")
	defer stop()
	if !s.Alive("a") || ctx.Err() != nil {
		t.Fatal("a not alive, or its watch fired")
	}
	s.SetState("a", "dead")
	if ctx.Err() == nil || !errors.Is(context.Cause(ctx), ErrMemberGone) || s.Alive("a") {
		t.Fatalf("after a died: alive=%v, watch cause %v", s.Alive("a"), context.Cause(ctx))
	}
}

// Rejoin reaches the members it holds dead (not those that left, not itself) a few a round,
// in turn, so that every one is reached within a few rounds.
func TestDeadTurn(t *testing.T) {
	g := &Gossip{cfg: Config{Name: "a"}, view: map[string]Member{
		"a": {Name: "a", GossipAddr: "10.0.0.1:7946", State: "dead"},
		"b": {Name: "b", GossipAddr: "10.0.0.2:7946", State: "dead"},
		"c": {Name: "c", GossipAddr: "10.0.0.3:7946", State: "alive"},
		"d": {Name: "d", GossipAddr: "10.0.0.4:7946", State: "left"},
		"e": {Name: "e", GossipAddr: "10.0.0.5:7946", State: "dead"},
		"f": {Name: "f", GossipAddr: "10.0.0.6:7946", State: "dead"},
	}}
	turn := 0
	var got []string
	for range 3 {
		got = append(got, fmt.Sprint(g.deadTurn(&turn)))
	}
	want := "[[10.0.0.2:7946 10.0.0.5:7946] [10.0.0.6:7946 10.0.0.2:7946] [10.0.0.5:7946 10.0.0.6:7946]]"
	if fmt.Sprint(got) != want {
		t.Fatalf("rounds %v, want %s", got, want)
	}
	if d := (&Gossip{cfg: Config{Name: "a"}, view: map[string]Member{}}).deadTurn(&turn); d != nil {
		t.Fatalf("no dead member: %v", d)
	}
}
