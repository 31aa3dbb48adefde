package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/treecast/treecast/node/store"
)

// Channels: a publish makes an object a channel's latest version; every agent keeps a table
// of the latest version of every channel, spread by gossip; subscribers catch up in the
// background (catchup.go).

// ErrChannelState is wrapped by every error of decoding a channel table or update received
// from gossip (untrusted bytes): the error names the field at fault.
var ErrChannelState = errors.New("node: bad channel state")

// ChannelVersion is one version of a channel: the object a publish made the channel's latest.
type ChannelVersion struct {
	Channel string `json:"c"`
	Digest  string `json:"d"`
	// Version orders the versions of a channel: the publisher's clock in nanoseconds when the
	// publish started, or one more than the newest version it knew if its clock is behind
	// (a Lamport clock), so a publish always supersedes what its publisher had seen.
	Version uint64 `json:"v"`
	Size    int64  `json:"s"`
	Origin  string `json:"o"` // the agent that published it
}

// newer reports whether v supersedes w: a higher version, ties broken by the larger digest
// (so every agent picks the same winner whatever the order it hears of them).
func (v ChannelVersion) newer(w ChannelVersion) bool {
	if v.Version != w.Version {
		return v.Version > w.Version
	}
	return v.Digest > w.Digest
}

// Limits on the channel state accepted from gossip.
const (
	maxChannels     = 1024 // channels in a table
	maxChannelName  = 128  // bytes of a channel or origin name
	channelMsgKind  = 'c'  // first byte of a gossip message carrying one channel version
	channelFileName = "channels.json"
)

// validChannelName reports whether s may name a channel (as Config.Validate requires).
func validChannelName(s string) bool {
	return s != "" && len(s) <= maxChannelName && !strings.ContainsAny(s, " \t\n,=:")
}

// check validates a version received from the network.
func (v ChannelVersion) check() error {
	if !validChannelName(v.Channel) {
		return fmt.Errorf("%w: channel name %q", ErrChannelState, v.Channel)
	}
	if _, err := store.ParseDigest(v.Digest); err != nil {
		return fmt.Errorf("%w: channel %s: digest %q: %w", ErrChannelState, v.Channel, v.Digest, err)
	}
	if v.Size < 0 {
		return fmt.Errorf("%w: channel %s: size %d", ErrChannelState, v.Channel, v.Size)
	}
	if len(v.Origin) > maxChannelName {
		return fmt.Errorf("%w: channel %s: origin of %d bytes", ErrChannelState, v.Channel, len(v.Origin))
	}
	return nil
}

// channelState is the table as gossip carries it (push/pull) and as the agent persists it.
type channelState struct {
	Latest []ChannelVersion `json:"l"`
	Held   []ChannelVersion `json:"h,omitempty"` // persisted only: what this agent holds
}

// decodeChannelState parses a table from gossip or disk: at most maxChannels entries, each
// valid. Cost: O(len(b)).
func decodeChannelState(b []byte) (channelState, error) {
	var s channelState
	if err := json.Unmarshal(b, &s); err != nil {
		return channelState{}, fmt.Errorf("%w: %w", ErrChannelState, err)
	}
	if len(s.Latest) > maxChannels || len(s.Held) > maxChannels {
		return channelState{}, fmt.Errorf("%w: %d channels, at most %d", ErrChannelState, max(len(s.Latest), len(s.Held)), maxChannels)
	}
	for _, list := range [][]ChannelVersion{s.Latest, s.Held} {
		for _, v := range list {
			if err := v.check(); err != nil {
				return channelState{}, err
			}
		}
	}
	return s, nil
}

// decodeChannelMsg parses a gossip message carrying one channel version.
func decodeChannelMsg(b []byte) (ChannelVersion, error) {
	if len(b) == 0 || b[0] != channelMsgKind {
		return ChannelVersion{}, fmt.Errorf("%w: message kind %q", ErrChannelState, b[:min(len(b), 1)])
	}
	var v ChannelVersion
	if err := json.Unmarshal(b[1:], &v); err != nil {
		return ChannelVersion{}, fmt.Errorf("%w: %w", ErrChannelState, err)
	}
	return v, v.check()
}

func encodeChannelMsg(v ChannelVersion) []byte {
	b, _ := json.Marshal(v) // plain fields: cannot fail
	return append([]byte{channelMsgKind}, b...)
}

// channelBroadcast is one version queued for gossip; a newer version of the same channel
// replaces it in the queue.
type channelBroadcast struct {
	v   ChannelVersion
	msg []byte
}

func (b channelBroadcast) Invalidates(o memberlist.Broadcast) bool {
	ob, ok := o.(channelBroadcast)
	return ok && ob.v.Channel == b.v.Channel
}
func (b channelBroadcast) Name() string    { return "channel:" + b.v.Channel }
func (b channelBroadcast) Message() []byte { return b.msg }
func (b channelBroadcast) Finished()       {}

// channels is an agent's channel table and catch-up state. The table merges by highest
// version ([ChannelVersion.newer]), so the order in which updates arrive does not matter and
// an older version never replaces a newer one. Memberlist calls the gossip methods from its
// own goroutines; they only touch memory (the catch-up loop does the I/O).
type channels struct {
	subscribed map[string]bool
	path       string // the persisted table
	wake       chan struct{}
	queue      *memberlist.TransmitLimitedQueue // nil until gossip starts

	mu      sync.Mutex
	latest  map[string]ChannelVersion
	learned map[string]time.Time
	held    map[string]ChannelVersion // newest version of each channel held complete here
	retry   map[string]*catchupRetry  // subscribed channels whose catch-up failed
	dirty   bool                      // the table changed since it was saved

	catchups    *prometheus.CounterVec
	catchupByte prometheus.Counter
	scans       prometheus.Counter
}

func newChannels(cfg Config, reg prometheus.Registerer) *channels {
	c := &channels{
		subscribed: map[string]bool{},
		path:       filepath.Join(cfg.DataDir, channelFileName),
		wake:       make(chan struct{}, 1),
		latest:     map[string]ChannelVersion{},
		learned:    map[string]time.Time{},
		held:       map[string]ChannelVersion{},
		retry:      map[string]*catchupRetry{},
		catchups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "treecast_catchups_total", Help: "Channel catch-ups (background fetches of a channel's latest version), by result.",
		}, []string{"result"}),
		catchupByte: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "treecast_catchup_bytes_total", Help: "Chunk bytes fetched by channel catch-ups.",
		}),
		scans: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "treecast_channel_scans_total", Help: "Passes of the channel catch-up loop over the channel table.",
		}),
	}
	for _, ch := range cfg.Channels {
		c.subscribed[ch] = true
	}
	reg.MustRegister(c.catchups, c.catchupByte, c.scans)
	return c
}

// load merges the table saved by a previous run (a missing file is an empty table). A corrupt
// file is reported and ignored: gossip brings the table back.
func (c *channels) load() error {
	b, err := os.ReadFile(c.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("node: channel table %s: %w", c.path, err)
	}
	s, err := decodeChannelState(b)
	if err != nil {
		return fmt.Errorf("node: channel table %s: %w", c.path, err)
	}
	c.merge(s.Latest)
	c.mu.Lock()
	for _, v := range s.Held {
		if old, ok := c.held[v.Channel]; !ok || v.newer(old) {
			c.held[v.Channel] = v
		}
	}
	c.mu.Unlock()
	return nil
}

// save writes the table if it changed (temporary file, fsync, rename). Cost: O(channels).
func (c *channels) save() error {
	c.mu.Lock()
	if !c.dirty {
		c.mu.Unlock()
		return nil
	}
	s := channelState{Latest: sortedVersions(c.latest), Held: sortedVersions(c.held)}
	c.dirty = false
	c.mu.Unlock()
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := store.WriteFileAtomic(c.path, b); err != nil {
		c.mu.Lock()
		c.dirty = true
		c.mu.Unlock()
		return fmt.Errorf("node: save channel table %s: %w", c.path, err)
	}
	return nil
}

func sortedVersions(m map[string]ChannelVersion) []ChannelVersion {
	out := make([]ChannelVersion, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Channel < out[j].Channel })
	return out
}

// merge takes the versions newer than the table's and returns them. A change wakes the
// catch-up loop. Cost: O(len(vs)).
func (c *channels) merge(vs []ChannelVersion) []ChannelVersion {
	var changed []ChannelVersion
	c.mu.Lock()
	for _, v := range vs {
		old, ok := c.latest[v.Channel]
		if ok && !v.newer(old) {
			continue
		}
		if !ok && len(c.latest) >= maxChannels {
			continue
		}
		c.latest[v.Channel] = v
		c.learned[v.Channel] = time.Now()
		delete(c.retry, v.Channel) // a new version: try at once
		c.dirty = true
		changed = append(changed, v)
	}
	c.mu.Unlock()
	if len(changed) > 0 {
		c.poke()
	}
	return changed
}

// poke wakes the catch-up loop (without blocking).
func (c *channels) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// broadcast queues versions for gossip (each is retransmitted about RetransmitMult*log(N)
// times; a newer version of a channel replaces a queued older one).
func (c *channels) broadcast(vs []ChannelVersion) {
	if c.queue == nil {
		return
	}
	for _, v := range vs {
		c.queue.QueueBroadcast(channelBroadcast{v: v, msg: encodeChannelMsg(v)})
	}
}

// next returns the version a publish of digest on channel by origin gets: the publisher's
// clock at start, or one more than the newest version known, whichever is higher.
func (c *channels) next(channel, digest, origin string, size int64, start time.Time) ChannelVersion {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := ChannelVersion{Channel: channel, Digest: digest, Size: size, Origin: origin, Version: uint64(max(start.UnixNano(), 1))}
	if old, ok := c.latest[channel]; ok && old.Version >= v.Version {
		v.Version = old.Version + 1
	}
	return v
}

// The gossip side (memberlist.Delegate, called by gossip.go).

// localState is the table for a push/pull exchange. Cost: O(channels) bytes.
func (c *channels) localState() []byte {
	c.mu.Lock()
	s := channelState{Latest: sortedVersions(c.latest)}
	c.mu.Unlock()
	b, _ := json.Marshal(s)
	return b
}

// mergeRemote merges another agent's table (push/pull); bad state is dropped whole.
func (c *channels) mergeRemote(buf []byte) {
	if len(buf) == 0 {
		return
	}
	s, err := decodeChannelState(buf)
	if err != nil {
		return
	}
	// What was new here is news to others too: pass it on, as anti-entropy alone would take
	// a push/pull interval per hop.
	c.broadcast(c.merge(s.Latest))
}

// notifyMsg merges a gossiped version and passes it on when it was news.
func (c *channels) notifyMsg(b []byte) {
	v, err := decodeChannelMsg(b)
	if err != nil {
		return
	}
	c.broadcast(c.merge([]ChannelVersion{v}))
}

func (c *channels) getBroadcasts(overhead, limit int) [][]byte {
	if c.queue == nil {
		return nil
	}
	return c.queue.GetBroadcasts(overhead, limit)
}

// ChannelStatus is one channel as an agent sees it.
type ChannelStatus struct {
	Name       string
	Subscribed bool
	// Latest is the channel's latest version in this agent's table (zero if none is known),
	// learned at Learned.
	Latest  ChannelVersion
	Learned time.Time
	// Held is the newest version this agent holds complete (zero if none).
	Held ChannelVersion
	// CatchupErr is the last catch-up failure while one is pending ("" otherwise).
	CatchupErr string
}

// status lists the channels this agent subscribes to or knows a version of, sorted by name.
func (c *channels) status() []ChannelStatus {
	if c == nil { // an agent built without Start (engine tests)
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	names := map[string]bool{}
	for n := range c.subscribed {
		names[n] = true
	}
	for n := range c.latest {
		names[n] = true
	}
	out := make([]ChannelStatus, 0, len(names))
	for n := range names {
		cs := ChannelStatus{Name: n, Subscribed: c.subscribed[n], Latest: c.latest[n], Learned: c.learned[n], Held: c.held[n]}
		if r := c.retry[n]; r != nil && r.err != nil {
			cs.CatchupErr = r.err.Error()
		}
		out = append(out, cs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Publish makes obj the latest version of channel and pushes it to the channel's alive
// subscribers (as [Agent.Push] with target "channel:NAME"). When the push has ended, the
// version is recorded in this agent's channel table and gossiped: subscribers that missed the
// push (down, joining later, or failed) fetch it in the background from a holder (see
// "Channels" in the package doc). With no alive subscriber the version is still recorded and
// the report has no receivers. The version is not recorded when the push could not start or
// ctx ended during it. Errors are those of Push, and ErrConfig for a bad channel name.
func (a *Agent) Publish(ctx context.Context, channel string, obj Object, opts PushOptions) (Report, error) {
	if !validChannelName(channel) {
		return Report{}, fmt.Errorf("%w: channel %q: must be a non-empty word", ErrConfig, channel)
	}
	if a.isClosed() {
		return Report{}, ErrClosed
	}
	man, err := a.resolveObject(obj, opts.ChunkSize)
	if err != nil {
		return Report{}, err
	}
	start := time.Now()
	rep, err := a.push(ctx, Object{Digest: man.Digest()}, "channel:"+channel, opts)
	if errors.Is(err, ErrNoReceivers) {
		rep, err = Report{Digest: man.Digest(), Size: man.Size(), Chunks: man.NumChunks()}, nil
	}
	if err != nil {
		return rep, err
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	v := a.chans.next(channel, man.Digest(), a.cfg.Name, man.Size(), start)
	a.chans.broadcast(a.chans.merge([]ChannelVersion{v}))
	a.announce(v)
	a.log.Info("channel published", "channel", channel, "digest", v.Digest, "version", v.Version, "receivers", len(rep.Receivers))
	return rep, nil
}

// announce sends v to every alive member over gossip's TCP channel (memberlist
// SendReliable): gossip broadcasts reach only a few random members per transmission and may
// miss one until the next push/pull exchange (15 to 30 s), while a publish is rare and already
// costs a push to every subscriber. Cost: one small TCP message per alive member, sent one
// after the other; a member that cannot be reached is left to gossip.
func (a *Agent) announce(v ChannelVersion) {
	g, ok := a.members.(*gossip)
	if !ok {
		return
	}
	msg := encodeChannelMsg(v)
	for _, m := range a.Members() {
		if m.Name == a.cfg.Name || m.State != "alive" {
			continue
		}
		host, port, err := net.SplitHostPort(m.GossipAddr)
		p, perr := strconv.Atoi(port)
		ip := net.ParseIP(host)
		if err != nil || perr != nil || ip == nil {
			continue
		}
		// A copy of the member's address: memberlist's own Node values change under its lock.
		if err := g.ml.SendReliable(&memberlist.Node{Name: m.Name, Addr: ip, Port: uint16(p)}, msg); err != nil {
			a.log.Debug("announce channel version", "member", m.Name, "channel", v.Channel, "err", err)
		}
	}
}

// Channels returns the channels this agent subscribes to or knows a version of, sorted by
// name, with the latest version it knows and the version it holds. Cost: O(channels), and a
// stat of the store for each channel whose latest version is not recorded as held.
func (a *Agent) Channels() []ChannelStatus {
	out := a.chans.status()
	for i, cs := range out {
		if cs.Latest.Digest == "" || cs.Held == cs.Latest {
			continue
		}
		if _, err := a.store.Stat(cs.Latest.Digest); err == nil { // pushed here since the last scan
			a.chans.setHeld(cs.Latest)
			out[i].Held, out[i].CatchupErr = cs.Latest, ""
		}
	}
	return out
}
