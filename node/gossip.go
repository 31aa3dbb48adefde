package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// gossip is the agent's membership: hashicorp/memberlist carrying each agent's gRPC address,
// labels and channels in its node metadata (at most 512 bytes).
type gossip struct {
	ml   *memberlist.Memberlist
	meta []byte

	mu       sync.Mutex
	conflict string // address of another agent that uses our name

	gone func(name string) // called when a member leaves or is declared dead

	// view is this agent's copy of the membership, kept by the event callbacks: memberlist's
	// own Node values change under its lock, so they are copied while it is held.
	view map[string]Member
	addr string // our gossip address

	gossipInterval time.Duration // memberlist's, for the leave propagation delay

	ch *channels // the channel table, gossiped by broadcasts and push/pull state
}

// NotifyJoin, NotifyUpdate and NotifyLeave implement memberlist.EventDelegate; memberlist
// calls them with its node lock held, so n may be read here.
func (g *gossip) NotifyJoin(n *memberlist.Node)   { g.record(n, "alive") }
func (g *gossip) NotifyUpdate(n *memberlist.Node) { g.record(n, "alive") }
func (g *gossip) NotifyLeave(n *memberlist.Node) {
	// memberlist does not say here whether the node left or failed (Node.State is stale).
	g.record(n, "dead")
	if g.gone != nil {
		g.gone(n.Name)
	}
}

func (g *gossip) record(n *memberlist.Node, state string) {
	meta, err := decodeMeta(n.Meta)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		delete(g.view, n.Name) // not a treecast agent, or a corrupt announcement
		return
	}
	g.view[n.Name] = Member{Name: n.Name, Addr: meta.Addr, GossipAddr: n.Address(), Labels: meta.Labels,
		Channels: meta.Channels, State: state}
}

// NotifyConflict records that another node claims our name (memberlist.ConflictDelegate).
func (g *gossip) NotifyConflict(existing, other *memberlist.Node) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.conflict = fmt.Sprintf("%s is used by %s and %s", other.Name, existing.Address(), other.Address())
}

// gossipMeta is the node metadata every agent gossips.
type gossipMeta struct {
	Addr     string            `json:"g"`
	Labels   map[string]string `json:"l,omitempty"`
	Channels []string          `json:"c,omitempty"`
}

func (g *gossip) NodeMeta(limit int) []byte { return g.meta }
func (g *gossip) NotifyMsg(b []byte)        { g.ch.notifyMsg(b) }
func (g *gossip) GetBroadcasts(overhead, limit int) [][]byte {
	return g.ch.getBroadcasts(overhead, limit)
}
func (g *gossip) LocalState(join bool) []byte            { return g.ch.localState() }
func (g *gossip) MergeRemoteState(buf []byte, join bool) { g.ch.mergeRemote(buf) }

func joinMembership(ctx context.Context, a *Agent) (memberView, error) {
	meta, err := json.Marshal(gossipMeta{Addr: a.advertise, Labels: a.cfg.Labels, Channels: a.cfg.Channels})
	if err != nil {
		return nil, err
	}
	if len(meta) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("%w: labels and channels take %d bytes of gossip metadata, more than %d", ErrConfig, len(meta), memberlist.MetaMaxSize)
	}
	host, port, err := net.SplitHostPort(a.cfg.GossipAddr)
	if err != nil {
		return nil, err
	}
	p, _ := strconv.Atoi(port)
	var mc *memberlist.Config
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		mc = memberlist.DefaultLocalConfig()
	} else {
		mc = memberlist.DefaultLANConfig()
	}
	mc.Name = a.cfg.Name
	// A restarted agent may come back on another address under its name once the old one
	// has been dead a while.
	mc.DeadNodeReclaimTime = 30 * time.Second
	if mc.ProbeInterval < time.Second { // the local profile
		mc.DeadNodeReclaimTime = time.Second
	}
	mc.BindAddr = host
	if host == "" {
		mc.BindAddr = "0.0.0.0"
	}
	mc.BindPort = p
	mc.AdvertisePort = p
	if adv := a.cfg.GossipAdvertise; adv != "" {
		ah, ap, err := net.SplitHostPort(adv)
		if err != nil {
			return nil, err
		}
		mc.AdvertiseAddr = ah
		mc.AdvertisePort, _ = strconv.Atoi(ap)
	}
	g := &gossip{meta: meta, gone: a.memberGone, view: map[string]Member{}, gossipInterval: mc.GossipInterval, ch: a.chans}
	a.chans.queue = &memberlist.TransmitLimitedQueue{NumNodes: func() int { return len(g.Members()) }, RetransmitMult: mc.RetransmitMult}
	mc.Delegate = g
	mc.Conflict = g
	mc.Events = g
	mc.Logger = log.New(io.Discard, "", 0)
	if a.cfg.gossipTune != nil {
		a.cfg.gossipTune(mc)
	}
	if a.cfg.gossipFilter != nil {
		ft, err := newFilterTransport(mc.BindAddr, mc.BindPort, a.cfg.gossipFilter)
		if err != nil {
			return nil, err
		}
		mc.Transport = ft
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, err
	}
	g.ml = ml
	local := ml.LocalNode()
	g.addr = net.JoinHostPort(local.Addr.String(), strconv.Itoa(int(local.Port)))
	if len(a.cfg.Join) > 0 {
		if _, err := ml.Join(a.cfg.Join); err != nil {
			_ = ml.Shutdown()
			return nil, fmt.Errorf("join %v: %w", a.cfg.Join, err)
		}
	}
	// Another agent with our name would make pushes ambiguous: refuse to run.
	g.mu.Lock()
	if m, ok := g.view[a.cfg.Name]; ok && m.GossipAddr != g.addr && m.State == "alive" && g.conflict == "" {
		g.conflict = fmt.Sprintf("%s is used by %s", m.Name, m.GossipAddr)
	}
	conflict := g.conflict
	g.mu.Unlock()
	if conflict != "" {
		_ = ml.Shutdown()
		return nil, fmt.Errorf("%w: %s", ErrNameTaken, conflict)
	}
	return g, nil
}

func (g *gossip) Members() []Member {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Member, 0, len(g.view))
	for _, m := range g.view {
		out = append(out, m)
	}
	return out
}

func (g *gossip) GossipAddr() string { return g.addr }

// Leave announces that this agent leaves and waits, at most timeout, until the announcement
// is handed to the network. memberlist reports the broadcast done as soon as it is queued for
// its last transmission, before the packet is written: an agent that shut down at once could
// close the socket under that write, and the others would then need the failure detector
// (seconds) to notice it gone. So Leave then waits two gossip intervals for the packets to go
// out (the propagation delay serf uses for the same reason), but only when others are alive.
func (g *gossip) Leave(timeout time.Duration) error {
	err := g.ml.Leave(timeout)
	if err == nil && g.ml.NumMembers() > 0 { // self counts no more: it has left
		time.Sleep(2 * g.gossipInterval)
	}
	return err
}
func (g *gossip) Shutdown() error { return g.ml.Shutdown() }

// rejoinLoop joins again, every RejoinInterval, the seeds that are not alive members.
func (a *Agent) rejoinLoop() {
	tick := time.NewTicker(a.cfg.RejoinInterval)
	defer tick.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-tick.C:
		}
		alive := map[string]bool{}
		for _, m := range a.members.Members() {
			if m.State == "alive" {
				alive[m.GossipAddr] = true
			}
		}
		var missing []string
		for _, s := range a.cfg.Join {
			if !alive[s] {
				missing = append(missing, s)
			}
		}
		if len(missing) == 0 {
			continue
		}
		if g, ok := a.members.(*gossip); ok {
			if _, err := g.ml.Join(missing); err != nil {
				a.log.Debug("rejoin seeds", "seeds", missing, "err", err)
			}
		}
	}
}

// decodeMeta parses another agent's gossip metadata (untrusted bytes from the network): JSON
// with a gRPC address that must be host:port; labels and channels as announced. Errors name
// the problem.
func decodeMeta(b []byte) (gossipMeta, error) {
	var m gossipMeta
	if len(b) > memberlist.MetaMaxSize {
		return m, fmt.Errorf("node: gossip metadata of %d bytes, more than %d", len(b), memberlist.MetaMaxSize)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("node: gossip metadata: %w", err)
	}
	if err := checkHostPort(m.Addr); err != nil {
		return m, fmt.Errorf("node: gossip metadata: gRPC address %q: %w", m.Addr, err)
	}
	return m, nil
}

var (
	_ memberView                  = (*gossip)(nil)
	_ memberlist.Delegate         = (*gossip)(nil)
	_ memberlist.EventDelegate    = (*gossip)(nil)
	_ memberlist.ConflictDelegate = (*gossip)(nil)
)
