package membership

import (
	"context"
	"sync"
	"time"
)

// Static is a fixed membership for tests of the parts of an agent that need members but no
// gossip (the forwarding engine over in-process streams). Addresses are whatever the test
// puts in Member.Addr. [Static.SetState] changes a member's state; declaring it "dead"
// cancels its watches as gossip would. The zero value is an empty view.
type Static struct {
	mu      sync.Mutex
	list    []Member
	watches watches
}

// NewStatic returns a view of members.
func NewStatic(members ...Member) *Static { return &Static{list: members} }

// Add adds members to the view.
func (s *Static) Add(members ...Member) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, members...)
}

// SetState sets a member's state ("alive", "dead"); "dead" cancels its watches.
func (s *Static) SetState(name, state string) {
	s.mu.Lock()
	for i := range s.list {
		if s.list[i].Name == name {
			s.list[i].State = state
		}
	}
	s.mu.Unlock()
	if state == "dead" || state == "left" {
		s.watches.gone(name)
	}
}

// Members returns a copy of the view.
func (s *Static) Members() []Member {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Member(nil), s.list...)
}

// Member returns the member called name.
func (s *Static) Member(name string) (Member, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.list {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

// Alive, Dead, WaitAddr and Watch behave as [Gossip]'s.
func (s *Static) Alive(name string) bool { return alive(s, name) }

// Dead reports whether the member is declared dead.
func (s *Static) Dead(name string) bool { return dead(s, name) }

// WaitAddr resolves name to its Addr, waiting up to timeout for it to be added.
func (s *Static) WaitAddr(ctx context.Context, name string, timeout time.Duration) (string, error) {
	return waitAddr(ctx, s, name, timeout)
}

// Watch returns a context cancelled when the member is declared dead.
func (s *Static) Watch(ctx context.Context, name string) (context.Context, func()) {
	return s.watches.watch(ctx, name, s.Dead(name))
}

// Known reports whether the member is known, alive or not.
func (s *Static) Known(name string) bool {
	_, ok := s.Member(name)
	return ok
}
