package node

import (
	"context"
	"fmt"
	"time"
)

// transport opens the engine's streams to other agents. The gRPC transport (service.go) is
// the real one; tests of the engine may plug an in-process one.
type transport interface {
	// openPush opens a Push stream to the agent at addr.
	openPush(ctx context.Context, addr string) (upstream, error)
	// fetch reads chunk i of the object digest from the agent at addr.
	fetch(ctx context.Context, addr, digest string, i int) ([]byte, error)
}

// addrOf resolves a member name to its gRPC address.
func (a *Agent) addrOf(name string) (string, error) {
	for _, m := range a.members.Members() {
		if m.Name == name {
			if m.Addr == "" {
				return "", fmt.Errorf("%w: %s has no gRPC address", ErrUnknownMember, name)
			}
			return m.Addr, nil
		}
	}
	return "", fmt.Errorf("%w: %s", ErrUnknownMember, name)
}

// isAlive reports whether gossip lists the member name as alive.
func (a *Agent) isAlive(name string) bool {
	for _, m := range a.members.Members() {
		if m.Name == name {
			return m.State == "" || m.State == "alive"
		}
	}
	return false
}

// isDead reports whether gossip has declared the member name dead (or gone). An unknown
// member is not dead: gossip may not have brought it yet.
func (a *Agent) isDead(name string) bool {
	for _, m := range a.members.Members() {
		if m.Name == name {
			return m.State == "dead" || m.State == "left"
		}
	}
	return false
}

// waitAddr resolves a member name, waiting up to Config.DialTimeout for gossip to bring it
// (the source may know a member before a relay does).
func (a *Agent) waitAddr(ctx context.Context, name string) (string, error) {
	addr, err := a.addrOf(name)
	if err == nil {
		return addr, nil
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.DialTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return "", err
		case <-tick.C:
			if addr, err = a.addrOf(name); err == nil {
				return addr, nil
			}
		}
	}
}

// watchMember returns a context that is cancelled when gossip declares the member name dead
// or gone (or when ctx ends), and a function to stop watching.
func (a *Agent) watchMember(ctx context.Context, name string) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	a.mu.Lock()
	a.watchID++
	id := a.watchID
	if a.watches[name] == nil {
		a.watches[name] = map[uint64]context.CancelCauseFunc{}
	}
	a.watches[name][id] = cancel
	a.mu.Unlock()
	if a.isDead(name) { // declared dead before the watch began: no later event will come
		cancel(fmt.Errorf("%w: %s left or failed (gossip)", ErrMemberGone, name))
	}
	return ctx, func() {
		a.mu.Lock()
		delete(a.watches[name], id)
		if len(a.watches[name]) == 0 {
			delete(a.watches, name)
		}
		a.mu.Unlock()
		cancel(nil)
	}
}

// memberGone cancels the streams to a member that gossip declared dead or gone.
func (a *Agent) memberGone(name string) {
	a.mu.Lock()
	var cancels []context.CancelCauseFunc
	for _, c := range a.watches[name] {
		cancels = append(cancels, c)
	}
	a.mu.Unlock()
	for _, c := range cancels {
		c(fmt.Errorf("%w: %s left or failed (gossip)", ErrMemberGone, name))
	}
}

// openPush opens a Push stream to the member named child.
func (a *Agent) openPush(ctx context.Context, child string) (upstream, error) {
	addr, err := a.waitAddr(ctx, child)
	if err != nil {
		return nil, err
	}
	return a.tr.openPush(ctx, addr)
}

// fetchChunk fetches chunk i of digest from the member named from.
func (a *Agent) fetchChunk(ctx context.Context, from, digest string, i int) ([]byte, error) {
	addr, err := a.waitAddr(ctx, from)
	if err != nil {
		return nil, err
	}
	return a.tr.fetch(ctx, addr, digest, i)
}

// localChunk serves chunk i of digest from a complete object, or from a transfer in progress
// that has verified it (a parent serves its children's re-fetches before it completes).
func (a *Agent) localChunk(digest string, i int) ([]byte, error) {
	data, err := a.store.ReadChunk(digest, i)
	if err == nil {
		return data, nil
	}
	a.mu.Lock()
	var ts []*transfer
	for _, t := range a.transfers {
		if t.man.Digest() == digest {
			ts = append(ts, t)
		}
	}
	a.mu.Unlock()
	for _, t := range ts {
		t.mu.Lock()
		ok := bitGet(t.held, i)
		t.mu.Unlock()
		if ok {
			if d, perr := t.partial.ReadChunk(i); perr == nil {
				return d, nil
			}
		}
	}
	return nil, fmt.Errorf("%w: %s chunk %d: %w", ErrUnknownDigest, digest, i, err)
}
