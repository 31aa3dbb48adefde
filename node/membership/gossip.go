package membership

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Errors of membership.
var (
	// ErrNameTaken: another live agent already uses this agent's name.
	ErrNameTaken = errors.New("membership: agent name already in the cluster")
	// ErrUnknownMember: gossip knows no member of that name (or it has no gRPC address).
	ErrUnknownMember = errors.New("membership: unknown member")
	// ErrMemberGone is the cause of a [Gossip.Watch] context cancelled because gossip
	// declared the member dead or gone.
	ErrMemberGone = errors.New("membership: member gone")
)

// Member is one agent of the cluster as gossip sees it.
type Member struct {
	Name       string
	Addr       string // gRPC address
	GossipAddr string
	Labels     map[string]string
	Channels   []string
	State      string // "alive", "dead" (failed), or "left" (announced its leave)
}

// IsAlive reports whether the member is alive (an empty state counts as alive).
func (m Member) IsAlive() bool { return m.State == "" || m.State == "alive" }

// State is what gossip carries beside membership for another part of the agent (the channel
// table): messages broadcast by other members, and whole states exchanged at joins and
// periodic push/pull. memberlist calls these from its own goroutines; they must not block.
type State interface {
	NotifyMsg(msg []byte)
	LocalState(join bool) []byte
	MergeRemoteState(buf []byte, join bool)
}

// Config configures an agent's membership.
type Config struct {
	Name      string   // the agent's unique name in the cluster
	Meta      Meta     // what the agent gossips about itself
	Bind      string   // host:port memberlist binds (UDP and TCP); port 0 picks one
	Advertise string   // host:port others reach (behind NAT); empty: the bound address
	Join      []string // seeds' gossip addresses; empty starts a new cluster
	State     State    // optional delegate for the gossip state beside membership
	// Keys encrypt and authenticate every gossip packet and stream (AES-GCM, memberlist's
	// keyring); the first encrypts, any of them decrypts. A peer without a key is not
	// admitted: its packets are dropped. Empty: plaintext gossip.
	Keys [][]byte
	Log  *slog.Logger // nil: discarded
	// Filter, a test hook, drops gossip to and from the peers (gossip addresses) it blocks.
	Filter func(peer string) bool
	// Tune, a test hook, adjusts memberlist's configuration (faster failure detection).
	Tune func(*memberlist.Config)
	// Hide, a test hook, leaves the members it names out of what Members and Member return,
	// as if gossip had not brought them yet.
	Hide func(name string) bool
	// OnChange, when not nil, is called for every change gossip brings: a member joining (or
	// coming back), updating its metadata, or gone. It is called from memberlist's goroutines
	// with its lock held, in the order of the changes, and must not block.
	OnChange func(Change)
}

// Change is one membership change, given to Config.OnChange.
type Change struct {
	// Kind is "join" (a new member, or one back from dead), "update" (new metadata) or
	// "gone" (left or failed: memberlist does not tell them apart).
	Kind   string
	Member Member
}

// Gossip is an agent's membership over hashicorp/memberlist. All methods are safe for
// concurrent use.
type Gossip struct {
	cfg  Config
	ml   *memberlist.Memberlist
	meta []byte
	// leaving is the metadata announcing a leave, once Leave began.
	leaving atomic.Pointer[[]byte]
	queue   *memberlist.TransmitLimitedQueue
	addr    string // our gossip address
	log     *slog.Logger

	gossipInterval time.Duration // memberlist's, for the leave propagation delay

	mu       sync.Mutex
	conflict string // address of another agent that uses our name
	// view is this agent's copy of the membership, kept by the event callbacks: memberlist's
	// own Node values change under its lock, so they are copied while it is held.
	view map[string]Member

	watches watches

	// stopped is closed by Shutdown and Leave: Rejoin then returns (its joins would bring
	// back a member that left, or whose gossip stopped, as a frozen agent's does).
	stopped  chan struct{}
	stopOnce sync.Once

	// synced, a test hook, is called with the address of each settling exchange's peer.
	synced func(addr string)
}

// New creates the agent's memberlist and binds its port; it joins nothing yet (see
// [Gossip.Join]). On loopback addresses it uses memberlist's local profile, otherwise the LAN
// profile. Errors: the metadata does not fit ([ErrMetaTooLarge]), the address is bad or taken.
func New(cfg Config) (*Gossip, error) {
	meta, err := cfg.Meta.Encode()
	if err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(cfg.Bind)
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
	mc.Name = cfg.Name
	// Gossip messages are small (metadata is at most 512 bytes): LZW on every packet costs
	// more CPU (a fresh dictionary each time) than the bytes it saves.
	mc.EnableCompression = false
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
	if adv := cfg.Advertise; adv != "" {
		ah, ap, err := net.SplitHostPort(adv)
		if err != nil {
			return nil, err
		}
		mc.AdvertiseAddr = ah
		mc.AdvertisePort, _ = strconv.Atoi(ap)
	}
	lg := cfg.Log
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	g := &Gossip{cfg: cfg, meta: meta, log: lg, view: map[string]Member{}, gossipInterval: mc.GossipInterval, stopped: make(chan struct{})}
	g.queue = &memberlist.TransmitLimitedQueue{NumNodes: func() int { return len(g.Members()) }, RetransmitMult: mc.RetransmitMult}
	mc.Delegate = delegate{g}
	mc.Conflict = delegate{g}
	mc.Events = delegate{g}
	mc.Logger = log.New(io.Discard, "", 0)
	if len(cfg.Keys) > 0 {
		kr, err := memberlist.NewKeyring(cfg.Keys, cfg.Keys[0])
		if err != nil {
			return nil, fmt.Errorf("membership: gossip keys: %w", err)
		}
		mc.Keyring = kr
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
	if cfg.Tune != nil {
		cfg.Tune(mc)
	}
	if cfg.Filter != nil {
		ft, err := newFilterTransport(mc.BindAddr, mc.BindPort, cfg.Filter)
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
	return g, nil
}

// Join joins the seeds of Config.Join (nothing when there are none), trying again with
// backoff (100 ms doubling up to 2 s) until a seed answers or ctx ends, and checks that no
// other live agent uses this agent's name ([ErrNameTaken], final). On error the caller
// decides: go on alone ([Gossip.Rejoin] keeps trying) or shut the Gossip down. Cost: one
// push/pull exchange with each seed that answers.
func (g *Gossip) Join(ctx context.Context) error {
	if len(g.cfg.Join) > 0 {
		backoff := 100 * time.Millisecond
		for {
			_, err := g.ml.Join(g.cfg.Join)
			if err == nil {
				break
			}
			g.log.Debug("join seeds", "seeds", g.cfg.Join, "err", err, "retry_in", backoff)
			timer := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				timer.Stop()
				return fmt.Errorf("join %v: %w (gave up: %w)", g.cfg.Join, err, context.Cause(ctx))
			case <-timer.C:
			}
			backoff = min(2*backoff, 2*time.Second)
		}
	}
	// Another agent with our name would make pushes ambiguous: refuse to run.
	g.mu.Lock()
	if m, ok := g.view[g.cfg.Name]; ok && m.GossipAddr != g.addr && m.State == "alive" && g.conflict == "" {
		g.conflict = fmt.Sprintf("%s is used by %s", m.Name, m.GossipAddr)
	}
	conflict := g.conflict
	g.mu.Unlock()
	if conflict != "" {
		return fmt.Errorf("%w: %s", ErrNameTaken, conflict)
	}
	return nil
}

// Rejoin joins again the seeds of Config.Join that are not alive members (healing a
// partition, a seed's restart, or a start when no seed answered yet): every interval, and,
// while no other member is alive, every second doubling up to interval. Each round it also
// reaches out to up to rejoinDead members it holds dead (not left), in turn: when a
// partition heals, a member each side declared dead hears it in the exchange and refutes it
// at once, where otherwise the two sides' dead records waited for gossip to carry the
// suspicion to it (seconds, sometimes a minute). A member that is really gone costs a
// refused or timed-out connection per round.
//
// The first settleRounds rounds once another member is alive (1, 3 and 7 s after the start)
// also exchange the whole state with a random alive member that is not a seed: agents
// started together join in a storm, in which an agent misses some of the joins' broadcasts
// and would learn those members only at memberlist's own next exchange (30 s, 60 s above
// 32 members; 64 agents started at once took 67-76 s to list each other in half of the
// runs). Cost: settleRounds state exchanges per agent start, spread over the members. It
// blocks until ctx ends, or the gossip is shut down or left: run it in a goroutine.
func (g *Gossip) Rejoin(ctx context.Context, interval time.Duration) {
	wait := min(time.Second, interval)
	turn := 0 // which dead members deadTurn reaches next
	settle, settleWait := settleRounds, min(2*time.Second, interval)
	var reaching, settling atomic.Bool
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.stopped:
			return
		case <-timer.C:
		}
		alive := map[string]bool{}
		others := 0
		for _, m := range g.Members() {
			if m.State == "alive" {
				alive[m.GossipAddr] = true
				if m.Name != g.cfg.Name {
					others++
				}
			}
		}
		var missing []string
		for _, s := range g.cfg.Join {
			if !alive[s] {
				missing = append(missing, s)
			}
		}
		if len(missing) > 0 {
			if _, err := g.ml.Join(missing); err != nil {
				g.log.Debug("rejoin seeds", "seeds", missing, "err", err)
			} else if others == 0 {
				g.log.Info("joined the cluster", "seeds", missing)
			}
		}
		if others > 0 && !reaching.Load() {
			if dead := g.deadTurn(&turn); len(dead) > 0 {
				// On its own goroutine: a member whose host is gone may take the dial
				// timeout to fail, and the seeds must not wait for it.
				reaching.Store(true)
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer reaching.Store(false)
					if _, err := g.ml.Join(dead); err != nil {
						g.log.Debug("reach dead members", "addrs", dead, "err", err)
					}
				}()
			}
		}
		if others > 0 && settle > 0 {
			settle--
			if peer := g.settlePeer(); peer != "" && !settling.Load() {
				settling.Store(true)
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer settling.Store(false)
					if _, err := g.ml.Join([]string{peer}); err != nil {
						g.log.Debug("settle exchange", "addr", peer, "err", err)
					}
					if g.synced != nil {
						g.synced(peer)
					}
				}()
			}
		}
		switch {
		case others == 0 && len(missing) > 0:
			wait = min(2*wait, interval) // alone: keep trying soon
		case others > 0 && settle > 0:
			wait, settleWait = settleWait, min(2*settleWait, interval)
		default:
			wait = interval
		}
		timer.Reset(wait)
	}
}

// settleRounds is how many of Rejoin's first rounds exchange state with a random member.
const settleRounds = 3

// settlePeer returns the gossip address of a random alive member other than this agent and
// the seeds, or "" when there is none.
func (g *Gossip) settlePeer() string {
	seeds := map[string]bool{}
	for _, s := range g.cfg.Join {
		seeds[s] = true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var peers []string
	for _, m := range g.view {
		if m.State == "alive" && m.Name != g.cfg.Name && m.GossipAddr != "" && !seeds[m.GossipAddr] {
			peers = append(peers, m.GossipAddr)
		}
	}
	if len(peers) == 0 {
		return ""
	}
	return peers[rand.IntN(len(peers))]
}

// rejoinDead bounds the dead members one Rejoin round reaches out to.
const rejoinDead = 2

// deadTurn returns the gossip addresses of up to rejoinDead members held dead, the next ones
// after *turn in name order, and advances *turn.
func (g *Gossip) deadTurn(turn *int) []string {
	g.mu.Lock()
	var dead []Member
	for _, m := range g.view {
		if m.State == "dead" && m.Name != g.cfg.Name && m.GossipAddr != "" {
			dead = append(dead, m)
		}
	}
	g.mu.Unlock()
	if len(dead) == 0 {
		return nil
	}
	sort.Slice(dead, func(i, j int) bool { return dead[i].Name < dead[j].Name })
	var out []string
	for range min(rejoinDead, len(dead)) {
		out = append(out, dead[*turn%len(dead)].GossipAddr)
		*turn++
	}
	return out
}

// Members returns the members gossip knows (this agent included), alive and dead, in no
// particular order. Cost: O(members).
func (g *Gossip) Members() []Member {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Member, 0, len(g.view))
	for _, m := range g.view {
		if g.cfg.Hide == nil || !g.cfg.Hide(m.Name) {
			out = append(out, m)
		}
	}
	return out
}

// Member returns the member called name, if gossip knows it.
func (g *Gossip) Member(name string) (Member, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m, ok := g.view[name]
	if ok && g.cfg.Hide != nil && g.cfg.Hide(name) {
		return Member{}, false
	}
	return m, ok
}

// GossipAddr is the bound gossip address.
func (g *Gossip) GossipAddr() string { return g.addr }

// QueueBroadcast queues msg for gossip: it is retransmitted about RetransmitMult*log(N)
// times, piggybacked on memberlist's own messages. A later message with the same key replaces
// a queued one.
func (g *Gossip) QueueBroadcast(key string, msg []byte) {
	g.queue.QueueBroadcast(namedBroadcast{name: key, msg: msg})
}

// SendReliable sends msg to member m over gossip's TCP channel (memberlist SendReliable);
// the receiver's State gets it as NotifyMsg. Cost: one TCP connection.
func (g *Gossip) SendReliable(m Member, msg []byte) error {
	host, port, err := net.SplitHostPort(m.GossipAddr)
	if err != nil {
		return err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return fmt.Errorf("membership: gossip address %q is not an IP address", m.GossipAddr)
	}
	// A copy of the member's address: memberlist's own Node values change under its lock.
	return g.ml.SendReliable(&memberlist.Node{Name: m.Name, Addr: ip, Port: uint16(p)}, msg)
}

// Leave announces that this agent leaves and waits, at most timeout, until the announcement
// is handed to the network. memberlist reports the broadcast done as soon as it is queued for
// its last transmission, before the packet is written: an agent that shut down at once could
// close the socket under that write, and the others would then need the failure detector
// (seconds) to notice it gone. So Leave then waits two gossip intervals for the packets to go
// out (the propagation delay serf uses for the same reason), but only when others are alive.
func (g *Gossip) Leave(timeout time.Duration) error {
	g.stop()
	// Announce the leave in the metadata first, so that the others record "left", not
	// "dead", when the leave message comes (memberlist does not tell them apart).
	m := g.cfg.Meta
	m.Leaving = true
	if b, err := m.Encode(); err == nil {
		g.leaving.Store(&b)
		if err := g.ml.UpdateNode(timeout / 2); err != nil {
			g.log.Debug("gossip: leave announcement", "err", err)
		}
	}
	err := g.ml.Leave(timeout)
	if err == nil && g.ml.NumMembers() > 0 { // self counts no more: it has left
		time.Sleep(2 * g.gossipInterval)
	}
	return err
}

// Shutdown stops gossip at once (no leave announced). Idempotent.
func (g *Gossip) Shutdown() error {
	g.stop()
	return g.ml.Shutdown()
}

// stop tells Rejoin to return.
func (g *Gossip) stop() { g.stopOnce.Do(func() { close(g.stopped) }) }

// delegate implements memberlist's delegates for a Gossip.
type delegate struct{ g *Gossip }

// NotifyJoin, NotifyUpdate and NotifyLeave implement memberlist.EventDelegate; memberlist
// calls them with its node lock held, so n may be read here.
func (d delegate) NotifyJoin(n *memberlist.Node)   { d.g.record(n, "alive") }
func (d delegate) NotifyUpdate(n *memberlist.Node) { d.g.record(n, "alive") }
func (d delegate) NotifyLeave(n *memberlist.Node) {
	// memberlist does not say here whether the node left or failed (Node.State is stale):
	// a node that announced its leave in its metadata left.
	state := "dead"
	if m, err := DecodeMeta(n.Meta); err == nil && m.Leaving {
		state = "left"
	}
	d.g.record(n, state)
	d.g.watches.gone(n.Name)
}

// NotifyConflict records that another node claims our name (memberlist.ConflictDelegate).
func (d delegate) NotifyConflict(existing, other *memberlist.Node) {
	d.g.mu.Lock()
	defer d.g.mu.Unlock()
	d.g.conflict = fmt.Sprintf("%s is used by %s and %s", other.Name, existing.Address(), other.Address())
}

func (d delegate) NodeMeta(limit int) []byte {
	if b := d.g.leaving.Load(); b != nil {
		return *b
	}
	return d.g.meta
}
func (d delegate) NotifyMsg(b []byte) {
	if d.g.cfg.State != nil {
		d.g.cfg.State.NotifyMsg(b)
	}
}
func (d delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.g.queue.GetBroadcasts(overhead, limit)
}
func (d delegate) LocalState(join bool) []byte {
	if d.g.cfg.State == nil {
		return nil
	}
	return d.g.cfg.State.LocalState(join)
}
func (d delegate) MergeRemoteState(buf []byte, join bool) {
	if d.g.cfg.State != nil {
		d.g.cfg.State.MergeRemoteState(buf, join)
	}
}

func (g *Gossip) record(n *memberlist.Node, state string) {
	meta, err := DecodeMeta(n.Meta)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		delete(g.view, n.Name) // not a treecast agent, or a corrupt announcement
		return
	}
	prev, known := g.view[n.Name]
	m := Member{Name: n.Name, Addr: meta.Addr, GossipAddr: n.Address(), Labels: meta.Labels,
		Channels: meta.Channels, State: state}
	g.view[n.Name] = m
	if g.cfg.OnChange != nil {
		kind := "update"
		if state != "alive" {
			kind = "gone"
		} else if !known || !prev.IsAlive() {
			kind = "join"
		}
		g.cfg.OnChange(Change{Kind: kind, Member: m})
	}
}

// namedBroadcast is a gossip message that a newer one of the same name replaces in the queue.
type namedBroadcast struct {
	name string
	msg  []byte
}

func (b namedBroadcast) Invalidates(o memberlist.Broadcast) bool {
	ob, ok := o.(namedBroadcast)
	return ok && ob.name == b.name
}
func (b namedBroadcast) Name() string    { return b.name }
func (b namedBroadcast) Message() []byte { return b.msg }
func (b namedBroadcast) Finished()       {}

var (
	_ memberlist.Delegate         = delegate{}
	_ memberlist.EventDelegate    = delegate{}
	_ memberlist.ConflictDelegate = delegate{}
	_ memberlist.NamedBroadcast   = namedBroadcast{}
)
