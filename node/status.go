package node

import (
	"fmt"
	"sort"
	"time"
)

// ObjectStatus is one object of the agent's store, complete or being received.
type ObjectStatus struct {
	Digest   string
	Size     int64
	Chunks   int
	Held     int // chunks verified
	Complete bool
}

// TransferStatus is one push in progress on the agent.
type TransferStatus struct {
	ID       string
	Digest   string
	Role     string // "source", "relay" (a receiver with children) or "receiver"
	Held     int    // receiver: chunks verified; source: receivers answered
	Total    int    // receiver: chunks of the object; source: receivers
	Parents  []string
	Children []string
	Started  time.Time
}

// Status is a snapshot of an agent: its objects, transfers in progress and the members it
// sees.
type Status struct {
	Name      string
	Addr      string
	Objects   []ObjectStatus
	Transfers []TransferStatus
	Members   []Member
	Channels  []string // channels the agent subscribes to
	// ChannelTable lists the channels the agent subscribes to or knows a version of: the
	// latest version it knows, the one it holds, and a pending catch-up error.
	ChannelTable []ChannelStatus
}

// Status returns a snapshot of the agent. Cost: O(objects + transfers + members); it lists
// the store's directory.
func (a *Agent) Status() (Status, error) {
	st := Status{Name: a.cfg.Name, Addr: a.advertise, Members: a.Members(), Channels: a.cfg.Channels, ChannelTable: a.Channels()}
	objs, err := a.store.Objects()
	if err != nil {
		return st, fmt.Errorf("node: status: %w", err)
	}
	seen := map[string]bool{}
	for _, o := range objs {
		seen[o.Digest] = true
		st.Objects = append(st.Objects, ObjectStatus(o))
	}
	a.mu.Lock()
	for id, t := range a.transfers {
		t.mu.Lock()
		ts := TransferStatus{ID: id, Digest: t.man.Digest(), Role: "receiver", Held: t.nheld, Total: t.man.NumChunks(), Started: t.start}
		for s := range t.plan.Stripes() {
			ts.Children = append(ts.Children, t.plan.Children(a.cfg.Name, s)...)
		}
		ts.Parents = append(ts.Parents, t.parents...)
		ts.Children = dedupSorted(ts.Children)
		ts.Parents = dedupSorted(ts.Parents)
		if len(ts.Children) > 0 {
			ts.Role = "relay"
		}
		if !seen[ts.Digest] {
			seen[ts.Digest] = true
			st.Objects = append(st.Objects, ObjectStatus{Digest: ts.Digest, Size: t.man.Size(), Chunks: ts.Total, Held: ts.Held})
		}
		t.mu.Unlock()
		st.Transfers = append(st.Transfers, ts)
	}
	for id, s := range a.sources {
		s.mu.Lock()
		ts := TransferStatus{ID: id, Digest: s.digest, Role: "source", Total: len(s.results), Started: s.start, Children: s.children}
		for _, r := range s.results {
			if r.OK || r.Err != "" {
				ts.Held++
			}
		}
		s.mu.Unlock()
		st.Transfers = append(st.Transfers, ts)
	}
	a.mu.Unlock()
	sort.Slice(st.Objects, func(i, j int) bool { return st.Objects[i].Digest < st.Objects[j].Digest })
	sort.Slice(st.Transfers, func(i, j int) bool { return st.Transfers[i].ID < st.Transfers[j].ID })
	return st, nil
}

func dedupSorted(s []string) []string {
	sort.Strings(s)
	return dedup(s)
}
