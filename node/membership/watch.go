package membership

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// The queries the forwarding engine asks of a view, written once over any member list.

// lister is what the queries need of a view.
type lister interface {
	Member(name string) (Member, bool)
}

func alive(v lister, name string) bool {
	m, ok := v.Member(name)
	return ok && m.IsAlive()
}

func dead(v lister, name string) bool {
	m, ok := v.Member(name)
	return ok && (m.State == "dead" || m.State == "left")
}

func addrOf(v lister, name string) (string, error) {
	m, ok := v.Member(name)
	if !ok {
		return "", fmt.Errorf("%w: %s", ErrUnknownMember, name)
	}
	if m.Addr == "" {
		return "", fmt.Errorf("%w: %s has no gRPC address", ErrUnknownMember, name)
	}
	return m.Addr, nil
}

// waitAddr resolves name, polling every 20 ms for at most timeout while gossip has not
// brought it.
func waitAddr(ctx context.Context, v lister, name string, timeout time.Duration) (string, error) {
	addr, err := addrOf(v, name)
	if err == nil {
		return addr, nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return "", err
		case <-tick.C:
			if addr, err = addrOf(v, name); err == nil {
				return addr, nil
			}
		}
	}
}

// Alive reports whether gossip lists the member name as alive.
func (g *Gossip) Alive(name string) bool { return alive(g, name) }

// Dead reports whether gossip has declared the member name dead (or gone). An unknown member
// is not dead: gossip may not have brought it yet.
func (g *Gossip) Dead(name string) bool { return dead(g, name) }

// Addr resolves a member name to its gRPC address ([ErrUnknownMember] if gossip does not
// know it).
func (g *Gossip) Addr(name string) (string, error) { return addrOf(g, name) }

// WaitAddr resolves a member name, waiting up to timeout for gossip to bring it (the source
// of a push may know a member before a relay does).
func (g *Gossip) WaitAddr(ctx context.Context, name string, timeout time.Duration) (string, error) {
	return waitAddr(ctx, g, name, timeout)
}

// Watch returns a context that is cancelled, with a cause wrapping [ErrMemberGone], when
// gossip declares the member name dead or gone (at once if it already has), or when ctx
// ends; and a function to stop watching, which must be called.
func (g *Gossip) Watch(ctx context.Context, name string) (context.Context, func()) {
	return g.watches.watch(ctx, name, g.Dead(name))
}

// watches are the contexts to cancel when a member goes.
type watches struct {
	mu   sync.Mutex
	next uint64
	by   map[string]map[uint64]context.CancelCauseFunc
}

func goneErr(name string) error {
	return fmt.Errorf("%w: %s left or failed (gossip)", ErrMemberGone, name)
}

func (w *watches) watch(ctx context.Context, name string, deadNow bool) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	w.mu.Lock()
	w.next++
	id := w.next
	if w.by == nil {
		w.by = map[string]map[uint64]context.CancelCauseFunc{}
	}
	if w.by[name] == nil {
		w.by[name] = map[uint64]context.CancelCauseFunc{}
	}
	w.by[name][id] = cancel
	w.mu.Unlock()
	if deadNow { // declared dead before the watch began: no later event will come
		cancel(goneErr(name))
	}
	return ctx, func() {
		w.mu.Lock()
		delete(w.by[name], id)
		if len(w.by[name]) == 0 {
			delete(w.by, name)
		}
		w.mu.Unlock()
		cancel(nil)
	}
}

// gone cancels the watches of a member that gossip declared dead or gone.
func (w *watches) gone(name string) {
	w.mu.Lock()
	var cancels []context.CancelCauseFunc
	for _, c := range w.by[name] {
		cancels = append(cancels, c)
	}
	w.mu.Unlock()
	for _, c := range cancels {
		c(goneErr(name))
	}
}

// Known reports whether the member is known, alive or not.
func (g *Gossip) Known(name string) bool {
	_, ok := g.Member(name)
	return ok
}
