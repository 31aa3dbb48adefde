package node

import (
	"fmt"
	"sort"
)

// ObjectStatus is one object of the agent's store, complete or being received.
type ObjectStatus struct {
	Digest   string
	Size     int64
	Chunks   int
	Held     int // chunks verified
	Complete bool
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
		st.Objects = append(st.Objects, o)
	}
	st.Transfers = a.engine.Transfers()
	for _, t := range st.Transfers {
		if t.Role != "source" && !seen[t.Digest] {
			seen[t.Digest] = true
			st.Objects = append(st.Objects, ObjectStatus{Digest: t.Digest, Size: t.Size, Chunks: t.Total, Held: t.Held})
		}
	}
	sort.Slice(st.Objects, func(i, j int) bool { return st.Objects[i].Digest < st.Objects[j].Digest })
	return st, nil
}
