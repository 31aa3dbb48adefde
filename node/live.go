package node

import (
	"sync"
	"time"

	"github.com/treecast/treecast/node/channel"
	"github.com/treecast/treecast/node/events"
	"github.com/treecast/treecast/node/membership"
	"github.com/treecast/treecast/node/transfer"
	"github.com/treecast/treecast/scheduler"
	"github.com/treecast/treecast/tree"
)

// What the agent tells its event bus (package node/events), served on its HTTP address as
// /events and drawn by the live page. Every event is a JSON object with "id", "type" and
// "time"; the types and their fields are those of the payload types below (the README has
// the table).

// progressEvery is the least time between two progress events of one receiver: a push of
// thousands of chunks makes a few events a second per receiver, not one per chunk.
const progressEvery = 250 * time.Millisecond

// recentPushes is how many pushes the "hello" event of a new stream recalls.
const recentPushes = 8

// live is the agent's event bus and what a new stream's "hello" needs: the recent pushes.
type live struct {
	bus  *events.Bus
	self string

	mu     sync.Mutex
	pushes []*pushLog // oldest first, at most recentPushes
}

func newLive(self string) *live {
	return &live{bus: events.New(events.Options{}), self: self}
}

// publish publishes an event; payloads are this file's types, which always encode.
func (l *live) publish(typ string, payload any) {
	_, _ = l.bus.Publish(typ, payload)
}

// memberEvent is member_join, member_update and member_gone.
type memberEvent struct {
	Name     string            `json:"name"`
	Addr     string            `json:"addr,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Channels []string          `json:"channels,omitempty"`
	State    string            `json:"state"`
}

func memberPayload(m membership.Member) memberEvent {
	st := m.State
	if st == "" {
		st = "alive"
	}
	return memberEvent{Name: m.Name, Addr: m.Addr, Labels: m.Labels, Channels: m.Channels, State: st}
}

// member publishes a gossip change (called by membership with its lock held: no blocking).
func (l *live) member(c membership.Change) {
	l.publish("member_"+c.Kind, memberPayload(c.Member))
}

// pushStart is the push_start event: the plan of a push this agent sends.
type pushStart struct {
	Transfer  string            `json:"transfer"`
	Source    string            `json:"source"`
	Digest    string            `json:"digest"`
	Size      int64             `json:"size"`
	Chunks    int               `json:"chunks"`
	ChunkSize int               `json:"chunk_size"`
	Strategy  string            `json:"strategy"`
	Auto      bool              `json:"auto,omitempty"`
	Stripes   int               `json:"stripes"` // data stripes
	Parity    int               `json:"parity"`  // parity trees
	Depth     int               `json:"depth"`
	Receivers []string          `json:"receivers"`
	Trees     []liveTree        `json:"trees"`
	Nodes     []liveNode        `json:"nodes"`
	Topology  liveCopies        `json:"topology"`
	Summary   scheduler.Summary `json:"summary"`
}

// liveTree is one tree (stripe) of a plan: its parent->child arcs, breadth first.
type liveTree struct {
	Stripe int         `json:"stripe"`
	Parity bool        `json:"parity,omitempty"`
	Arcs   [][2]string `json:"arcs"`
}

// liveNode is an agent of a plan with its topology labels (dc, pod, rack).
type liveNode struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

// liveCopies are the plan's copies per arc of the topology inferred from the labels.
type liveCopies struct {
	Hosts      int       `json:"hosts"`
	Switches   int       `json:"switches"`
	Max        float64   `json:"max"`
	MaxSwitch  float64   `json:"max_switch"`
	MaxHost    float64   `json:"max_host"`
	Total      float64   `json:"total"`
	LowerBound float64   `json:"lower_bound"`
	Arcs       []liveArc `json:"arcs"` // the arcs that carry anything
}

type liveArc struct {
	From   string  `json:"from"`
	To     string  `json:"to"`
	Copies float64 `json:"copies"`
}

// progressEvent is the progress event: chunks a receiver has verified.
type progressEvent struct {
	Transfer  string  `json:"transfer"`
	Receiver  string  `json:"receiver"`
	Held      int     `json:"held"`
	Total     int     `json:"total"`
	ElapsedMS float64 `json:"elapsed_ms"`
}

// resultEvent is the result event: a receiver's verdict.
type resultEvent struct {
	Transfer  string  `json:"transfer"`
	Receiver  string  `json:"receiver"`
	OK        bool    `json:"ok"`
	Err       string  `json:"err,omitempty"`
	ElapsedMS float64 `json:"elapsed_ms"`
}

// reattachEvent is the reattach event: the source's account of a receiver re-attached
// under a new parent in a stripe after Failed failed. The source infers it from the plan and
// the results by the engine's rule (an orphan goes to its nearest live ancestor): the
// repairing agent itself publishes the repair event.
type reattachEvent struct {
	Transfer string `json:"transfer"`
	Stripe   int    `json:"stripe"`
	Child    string `json:"child"`
	Parent   string `json:"parent"`
	Failed   string `json:"failed"`
	Inferred bool   `json:"inferred"`
}

// repairEvent is the repair event: a repair this agent made (transfer.Repair).
type repairEvent struct {
	Transfer string   `json:"transfer"`
	Stripe   int      `json:"stripe"`
	Child    string   `json:"child"`
	Parent   string   `json:"parent"`
	Reopen   bool     `json:"reopen"`
	Attempt  int      `json:"attempt,omitempty"`
	Orphans  []string `json:"orphans,omitempty"`
	Cause    string   `json:"cause"`
}

func (l *live) repair(r transfer.Repair) {
	l.publish("repair", repairEvent{Transfer: r.Transfer, Stripe: r.Stripe, Child: r.Child, Parent: r.Parent, Reopen: r.Reopen,
		Attempt: r.Attempt, Orphans: r.Orphans, Cause: r.Cause})
}

// pushDone is the push_done event: the report of a push this agent sent.
type pushDone struct {
	Transfer  string       `json:"transfer"`
	Digest    string       `json:"digest"`
	Size      int64        `json:"size"`
	ElapsedMS float64      `json:"elapsed_ms"`
	Verified  int          `json:"verified"`
	Failed    int          `json:"failed"`
	Receivers []liveResult `json:"receivers"`
}

type liveResult struct {
	Receiver    string  `json:"receiver"`
	OK          bool    `json:"ok"`
	Err         string  `json:"err,omitempty"`
	ElapsedMS   float64 `json:"elapsed_ms"`
	Via         string  `json:"via,omitempty"`
	BytesIn     int64   `json:"bytes_in"`
	AlreadyHeld int     `json:"already_held"`
	Duplicates  int     `json:"duplicates"`
	Decoded     int     `json:"decoded"`
}

// channelEvent is the channel_version event: a version this agent published.
type channelEvent struct {
	Channel string `json:"channel"`
	Digest  string `json:"digest"`
	Version uint64 `json:"version"`
	Size    int64  `json:"size"`
	Origin  string `json:"origin"`
	By      string `json:"by,omitempty"`
}

func (l *live) channelVersion(v channel.Version) {
	l.publish("channel_version", channelEvent{Channel: v.Channel, Digest: v.Digest, Version: v.Version, Size: v.Size, Origin: v.Origin, By: v.By})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// pushLog is one push this agent sends, as the live view follows it.
type pushLog struct {
	l     *live
	start pushStart
	w     *scheduler.Wire

	mu       sync.Mutex
	parent   []map[string]string // per stripe: who feeds each node now
	failed   map[string]bool
	final    map[string]resultEvent
	held     map[string]int
	lastSent map[string]time.Time
	attached []reattachEvent
	done     *pushDone
}

// beginPush publishes push_start for a push about to send its first chunk and returns the
// log that follows it. Cost: one copy accounting of the plan, O(plan arcs × path length).
func (l *live) beginPush(id string, man transfer.Manifest, full *scheduler.Plan, w *scheduler.Wire, dsts []string, members []Member) *pushLog {
	g := full.Graph
	ps := pushStart{Transfer: id, Source: l.self, Digest: man.Digest(), Size: man.Size(), Chunks: man.NumChunks(),
		ChunkSize: int(man.Proto().GetChunkSize()), Strategy: string(full.Strategy), Auto: full.Auto, Stripes: full.DataStripes,
		Parity: full.Parity, Depth: full.Depth(), Receivers: dsts, Summary: full.Summary()}
	labels := map[string]map[string]string{}
	for _, m := range members {
		labels[m.Name] = m.Labels
	}
	pl := &pushLog{l: l, w: w, failed: map[string]bool{}, final: map[string]resultEvent{}, held: map[string]int{}, lastSent: map[string]time.Time{}}
	for s := 0; s < w.Stripes(); s++ {
		t := liveTree{Stripe: s, Parity: s >= full.DataStripes, Arcs: [][2]string{}}
		par := map[string]string{}
		q := []string{l.self}
		for k := 0; k < len(q); k++ {
			for _, c := range w.Children(q[k], s) {
				t.Arcs = append(t.Arcs, [2]string{q[k], c})
				par[c] = q[k]
				q = append(q, c)
			}
		}
		ps.Trees = append(ps.Trees, t)
		pl.parent = append(pl.parent, par)
	}
	for _, n := range append([]string{l.self}, dsts...) {
		ps.Nodes = append(ps.Nodes, liveNode{Name: n, Labels: labels[n]})
	}
	c := full.Copies()
	lb, _ := full.LowerBound()
	ps.Topology = liveCopies{Hosts: len(g.Hosts()), Switches: g.NumNodes() - len(g.Hosts()), Max: c.Max, MaxSwitch: c.MaxSwitch,
		MaxHost: c.MaxHost, Total: c.Total, LowerBound: lb, Arcs: []liveArc{}}
	for a, v := range c.PerArc {
		if v > 0 {
			arc := g.Arc(tree.ArcID(a))
			ps.Topology.Arcs = append(ps.Topology.Arcs, liveArc{From: g.NodeName(arc.From), To: g.NodeName(arc.To), Copies: v})
		}
	}
	pl.start = ps
	l.mu.Lock()
	l.pushes = append(l.pushes, pl)
	if len(l.pushes) > recentPushes {
		l.pushes = l.pushes[1:]
	}
	l.mu.Unlock()
	l.publish("push_start", ps)
	return pl
}

// progress returns the push's progress callback: it publishes each receiver's progress (at
// most every progressEvery) and result, infers the re-attachments a failed relay's parent
// makes, and calls next (the caller's own callback, may be nil).
func (pl *pushLog) progress(next func(Event)) func(Event) {
	return func(ev Event) {
		pl.observe(ev)
		if next != nil {
			next(ev)
		}
	}
}

func (pl *pushLog) observe(ev Event) {
	id := pl.start.Transfer
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if ev.Held > pl.held[ev.Receiver] {
		pl.held[ev.Receiver] = ev.Held
	}
	if !ev.Final {
		now := time.Now()
		if now.Sub(pl.lastSent[ev.Receiver]) < progressEvery {
			return
		}
		pl.lastSent[ev.Receiver] = now
		pl.l.publish("progress", progressEvent{Transfer: id, Receiver: ev.Receiver, Held: ev.Held, Total: ev.Total, ElapsedMS: ms(ev.Elapsed)})
		return
	}
	r := resultEvent{Transfer: id, Receiver: ev.Receiver, OK: ev.OK, Err: ev.Err, ElapsedMS: ms(ev.Elapsed)}
	pl.final[ev.Receiver] = r
	pl.l.publish("result", r)
	if ev.OK || pl.failed[ev.Receiver] {
		return
	}
	pl.failed[ev.Receiver] = true
	// The failed receiver's parent in each stripe re-attaches its children that have no
	// verdict yet to the nearest ancestor that has not failed.
	for s, par := range pl.parent {
		up := par[ev.Receiver]
		for up != "" && pl.failed[up] {
			up = par[up]
		}
		if up == "" {
			continue
		}
		for _, c := range pl.w.Children(ev.Receiver, s) {
			if _, done := pl.final[c]; done || par[c] != ev.Receiver {
				continue
			}
			par[c] = up
			ra := reattachEvent{Transfer: id, Stripe: s, Child: c, Parent: up, Failed: ev.Receiver, Inferred: true}
			pl.attached = append(pl.attached, ra)
			pl.l.publish("reattach", ra)
		}
	}
}

// end publishes push_done with the report.
func (pl *pushLog) end(rep Report) {
	d := &pushDone{Transfer: pl.start.Transfer, Digest: rep.Digest, Size: rep.Size, ElapsedMS: ms(rep.Elapsed), Receivers: []liveResult{}}
	for _, r := range rep.Receivers {
		if r.OK {
			d.Verified++
		} else {
			d.Failed++
		}
		d.Receivers = append(d.Receivers, liveResult{Receiver: r.Receiver, OK: r.OK, Err: r.Err, ElapsedMS: ms(r.Elapsed), Via: r.Via,
			BytesIn: r.BytesIn, AlreadyHeld: r.AlreadyHeld, Duplicates: r.Duplicates, Decoded: r.Decoded})
	}
	pl.mu.Lock()
	pl.done = d
	pl.mu.Unlock()
	pl.l.publish("push_done", d)
}

// helloEvent is the first event of every stream (no id): the agent, its members as gossip
// sees them, and its recent pushes with their state, so that a page opened mid-push draws it.
type helloEvent struct {
	Agent   string        `json:"agent"`
	LastID  uint64        `json:"last_id"`
	Members []memberEvent `json:"members"`
	Pushes  []helloPush   `json:"pushes"`
}

type helloPush struct {
	Start    pushStart       `json:"start"`
	Held     map[string]int  `json:"held"`
	Results  []resultEvent   `json:"results"`
	Reattach []reattachEvent `json:"reattach"`
	Done     *pushDone       `json:"done,omitempty"`
	Running  bool            `json:"running"`
}

func (l *live) hello(members []Member) any {
	h := helloEvent{Agent: l.self, LastID: l.bus.Last(), Members: []memberEvent{}, Pushes: []helloPush{}}
	for _, m := range members {
		h.Members = append(h.Members, memberPayload(m))
	}
	l.mu.Lock()
	pushes := append([]*pushLog(nil), l.pushes...)
	l.mu.Unlock()
	for _, pl := range pushes {
		pl.mu.Lock()
		hp := helloPush{Start: pl.start, Held: map[string]int{}, Results: []resultEvent{}, Reattach: append([]reattachEvent{}, pl.attached...),
			Done: pl.done, Running: pl.done == nil}
		for k, v := range pl.held {
			hp.Held[k] = v
		}
		for _, r := range pl.final {
			hp.Results = append(hp.Results, r)
		}
		pl.mu.Unlock()
		h.Pushes = append(h.Pushes, hp)
	}
	return h
}
