package channel

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/treecast/treecast/node/membership"
	"github.com/treecast/treecast/node/store"
)

// ErrChannelState is wrapped by every error of decoding a channel table or update received
// from gossip (untrusted bytes): the error names the field at fault.
var ErrChannelState = errors.New("channel: bad channel state")

// Version is one version of a channel: the object a publish made the channel's latest.
type Version struct {
	Channel string `json:"c"`
	Digest  string `json:"d"`
	// Version orders the versions of a channel: the publisher's clock in nanoseconds when the
	// publish started, or one more than the newest version it knew if its clock is behind
	// (a Lamport clock), so a publish always supersedes what its publisher had seen.
	Version uint64 `json:"v"`
	Size    int64  `json:"s"`
	Origin  string `json:"o"` // the agent that published it
	// By is the identity that asked for the publish: an operator's certificate name, or the
	// publishing agent's own name.
	By string `json:"b,omitempty"`
	// Sig is Origin's signature of the fields above, Cert its certificate (DER) that a
	// receiver checks against the cluster CA; both empty on an insecure cluster.
	Sig  []byte `json:"x,omitempty"`
	Cert []byte `json:"y,omitempty"`
	// Deleted marks a tombstone: the channel was deleted by this version (Digest empty).
	// Like any version it supersedes the older ones, and a later publish revives the channel.
	Deleted bool `json:"z,omitempty"`
}

// Signed returns the bytes a version's signature covers.
func (v Version) Signed() []byte {
	b := fmt.Appendf(nil, "treecast channel version 1\x00%s\x00%s\x00%d\x00%d\x00%s\x00%s", v.Channel, v.Digest, v.Version, v.Size, v.Origin, v.By)
	if v.Deleted {
		b = append(b, "\x00deleted"...)
	}
	return b
}

// Same reports whether v and w are the same version (signatures aside).
func (v Version) Same(w Version) bool {
	return v.Channel == w.Channel && v.Digest == w.Digest && v.Version == w.Version && v.Size == w.Size && v.Origin == w.Origin && v.By == w.By &&
		v.Deleted == w.Deleted
}

// Trust signs this agent's channel versions and checks the versions it learns (from
// gossip, other agents, or its own saved table): a version that does not verify is dropped.
// Nil trusts every version (an insecure cluster).
type Trust interface {
	Sign(v Version) (Version, error)
	Verify(v Version) error
}

// MaxSkew bounds how far in the future of this agent's clock a version may be: a version
// number is a publisher's clock in nanoseconds, so one further ahead was forged (it would
// pin the channel), or comes from a clock that is badly off.
const MaxSkew = 10 * time.Minute

// newer reports whether v supersedes w: a higher version, ties broken by the larger digest
// (so every agent picks the same winner whatever the order it hears of them).
func (v Version) newer(w Version) bool {
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

// ValidName reports whether s may name a channel: a non-empty word of at most 128 bytes
// without spaces, ',', '=' or ':'.
func ValidName(s string) bool {
	return s != "" && len(s) <= maxChannelName && !strings.ContainsAny(s, " \t\n,=:")
}

// check validates a version received from the network.
func (v Version) check() error {
	if !ValidName(v.Channel) {
		return fmt.Errorf("%w: channel name %q", ErrChannelState, v.Channel)
	}
	if v.Deleted && v.Digest != "" {
		return fmt.Errorf("%w: channel %s: a deletion names digest %q", ErrChannelState, v.Channel, v.Digest)
	}
	if _, err := store.ParseDigest(v.Digest); err != nil && !v.Deleted {
		return fmt.Errorf("%w: channel %s: digest %q: %w", ErrChannelState, v.Channel, v.Digest, err)
	}
	if v.Size < 0 {
		return fmt.Errorf("%w: channel %s: size %d", ErrChannelState, v.Channel, v.Size)
	}
	if len(v.Origin) > maxChannelName || len(v.By) > maxChannelName {
		return fmt.Errorf("%w: channel %s: origin or publisher of more than %d bytes", ErrChannelState, v.Channel, maxChannelName)
	}
	if limit := uint64(time.Now().Add(MaxSkew).UnixNano()); v.Version > limit {
		return fmt.Errorf("%w: channel %s: version %d is more than %v ahead of this agent's clock", ErrChannelState, v.Channel, v.Version, MaxSkew)
	}
	if len(v.Sig) > 512 || len(v.Cert) > 4096 {
		return fmt.Errorf("%w: channel %s: signature or certificate too large", ErrChannelState, v.Channel)
	}
	return nil
}

// channelState is the table as gossip carries it (push/pull) and as the agent persists it.
type channelState struct {
	Latest []Version `json:"l"`
	Held   []Version `json:"h,omitempty"` // persisted only: what this agent holds
	Hist   []Version `json:"r,omitempty"` // persisted only: the versions held, for retention
}

// decodeChannelState parses a table from gossip or disk: at most maxChannels entries, each
// valid. Cost: O(len(b)).
func decodeChannelState(b []byte) (channelState, error) {
	var s channelState
	if err := json.Unmarshal(b, &s); err != nil {
		return channelState{}, fmt.Errorf("%w: %w", ErrChannelState, err)
	}
	if len(s.Latest) > maxChannels || len(s.Held) > maxChannels || len(s.Hist) > maxChannels*maxHist {
		return channelState{}, fmt.Errorf("%w: %d channels, at most %d", ErrChannelState, max(len(s.Latest), len(s.Held)), maxChannels)
	}
	for _, list := range [][]Version{s.Latest, s.Held, s.Hist} {
		for _, v := range list {
			if err := v.check(); err != nil {
				return channelState{}, err
			}
		}
	}
	return s, nil
}

// decodeChannelMsg parses a gossip message carrying one channel version.
func decodeChannelMsg(b []byte) (Version, error) {
	if len(b) == 0 || b[0] != channelMsgKind {
		return Version{}, fmt.Errorf("%w: message kind %q", ErrChannelState, b[:min(len(b), 1)])
	}
	var v Version
	if err := json.Unmarshal(b[1:], &v); err != nil {
		return Version{}, fmt.Errorf("%w: %w", ErrChannelState, err)
	}
	return v, v.check()
}

func encodeChannelMsg(v Version) []byte {
	b, _ := json.Marshal(v) // plain fields: cannot fail
	return append([]byte{channelMsgKind}, b...)
}

// Gossip is what the table needs of membership: queue a broadcast (a newer one with the same
// key replaces a queued one), and send a message to one member reliably.
type Gossip interface {
	QueueBroadcast(key string, msg []byte)
	SendReliable(m membership.Member, msg []byte) error
}

// Config configures a channel table.
type Config struct {
	// Trust signs and checks versions (nil: no signatures, every version trusted).
	Trust      Trust
	Self       string            // this agent's name
	Labels     map[string]string // this agent's labels (catch-up prefers near holders)
	DataDir    string            // the table is saved in DataDir/channels.json
	Subscribed []string          // channels this agent subscribes to
	Log        *slog.Logger      // nil: discarded
}

// Table is an agent's channel table and catch-up state. The table merges by highest
// version ([Version.newer]), so the order in which updates arrive does not matter and
// an older version never replaces a newer one. Memberlist calls the gossip methods from its
// own goroutines; they only touch memory (the catch-up loop does the I/O).
type Table struct {
	cfg        Config
	log        *slog.Logger
	subscribed map[string]bool
	path       string // the persisted table
	wake       chan struct{}
	gossip     Gossip // nil until SetGossip

	mu      sync.Mutex
	latest  map[string]Version
	learned map[string]time.Time
	held    map[string]Version       // newest version of each channel held complete here
	hist    map[string][]Version     // versions of each channel held here, oldest first (retention)
	retry   map[string]*catchupRetry // subscribed channels whose catch-up failed
	dirty   bool                     // the table changed since it was saved

	catchups    *prometheus.CounterVec
	catchupByte prometheus.Counter
	scans       prometheus.Counter
	rejected    prometheus.Counter
}

// NewTable returns the table of an agent, with its metrics registered on reg. Call Load to
// restore the saved table, SetGossip once membership runs, and Run for the catch-up loop.
func NewTable(cfg Config, reg prometheus.Registerer) *Table {
	lg := cfg.Log
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	c := &Table{
		cfg:        cfg,
		log:        lg,
		subscribed: map[string]bool{},
		path:       filepath.Join(cfg.DataDir, channelFileName),
		wake:       make(chan struct{}, 1),
		latest:     map[string]Version{},
		learned:    map[string]time.Time{},
		held:       map[string]Version{},
		hist:       map[string][]Version{},
		retry:      map[string]*catchupRetry{},
		catchups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "treecast_catchups_total", Help: "Channel catch-ups (background fetches of a channel's latest version), by result.",
		}, []string{"result"}),
		catchupByte: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "treecast_catchup_bytes_total", Help: "Chunk bytes fetched by channel catch-ups.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "treecast_channel_versions_rejected_total", Help: "Channel versions dropped because their signature, publisher or time did not verify.",
		}),
		scans: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "treecast_channel_scans_total", Help: "Passes of the channel catch-up loop over the channel table.",
		}),
	}
	for _, ch := range cfg.Subscribed {
		c.subscribed[ch] = true
	}
	reg.MustRegister(c.catchups, c.catchupByte, c.scans, c.rejected)
	return c
}

// Load merges the table saved by a previous run (a missing file is an empty table). A corrupt
// file is reported and ignored: gossip brings the table back.
func (c *Table) Load() error {
	b, err := os.ReadFile(c.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("channel: table %s: %w", c.path, err)
	}
	s, err := decodeChannelState(b)
	if err != nil {
		return fmt.Errorf("channel: table %s: %w", c.path, err)
	}
	c.merge(s.Latest)
	c.mu.Lock()
	for _, v := range s.Held {
		if old, ok := c.held[v.Channel]; !ok || v.newer(old) {
			c.held[v.Channel] = v
		}
	}
	for _, v := range s.Hist {
		c.addHistLocked(v)
	}
	c.mu.Unlock()
	return nil
}

// Save writes the table if it changed (temporary file, fsync, rename). Cost: O(channels).
func (c *Table) Save() error {
	c.mu.Lock()
	if !c.dirty {
		c.mu.Unlock()
		return nil
	}
	s := channelState{Latest: sortedVersions(c.latest), Held: sortedVersions(c.held), Hist: c.histLocked()}
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
		return fmt.Errorf("channel: save table %s: %w", c.path, err)
	}
	return nil
}

func sortedVersions(m map[string]Version) []Version {
	out := make([]Version, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Channel < out[j].Channel })
	return out
}

// merge takes the versions newer than the table's and returns them. A change wakes the
// catch-up loop. Cost: O(len(vs)).
func (c *Table) merge(vs []Version) []Version {
	var changed []Version
	c.mu.Lock()
	for _, v := range vs {
		old, ok := c.latest[v.Channel]
		if ok && !v.newer(old) {
			continue
		}
		if !ok && len(c.latest) >= maxChannels {
			continue
		}
		if c.cfg.Trust != nil {
			if err := c.cfg.Trust.Verify(v); err != nil {
				c.rejected.Inc()
				c.log.Warn("channel version rejected", "channel", v.Channel, "version", v.Version, "origin", v.Origin, "err", err)
				continue
			}
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
func (c *Table) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// broadcast queues versions for gossip (each is retransmitted about RetransmitMult*log(N)
// times; a newer version of a channel replaces a queued older one).
func (c *Table) broadcast(vs []Version) {
	c.mu.Lock()
	g := c.gossip
	c.mu.Unlock()
	if g == nil {
		return
	}
	for _, v := range vs {
		g.QueueBroadcast("channel:"+v.Channel, encodeChannelMsg(v))
	}
}

// SetGossip connects the table to membership: from now on news is broadcast.
func (c *Table) SetGossip(g Gossip) {
	c.mu.Lock()
	c.gossip = g
	c.mu.Unlock()
}

// next returns the version a publish of digest on channel by origin gets: the publisher's
// clock at start, or one more than the newest version known, whichever is higher.
func (c *Table) next(channel, digest, origin string, size int64, start time.Time) Version {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := Version{Channel: channel, Digest: digest, Size: size, Origin: origin, Version: uint64(max(start.UnixNano(), 1))}
	if old, ok := c.latest[channel]; ok && old.Version >= v.Version {
		v.Version = old.Version + 1
	}
	return v
}

// The gossip side: Table is membership's State delegate.

var _ membership.State = (*Table)(nil)

// LocalState is the table for a push/pull exchange. Cost: O(channels) bytes.
func (c *Table) LocalState(join bool) []byte {
	c.mu.Lock()
	s := channelState{Latest: sortedVersions(c.latest)}
	c.mu.Unlock()
	b, _ := json.Marshal(s)
	return b
}

// MergeRemoteState merges another agent's table (push/pull); bad state is dropped whole.
func (c *Table) MergeRemoteState(buf []byte, join bool) {
	if len(buf) == 0 {
		return
	}
	s, err := decodeChannelState(buf)
	if err != nil {
		c.rejected.Inc()
		return
	}
	// What was new here is news to others too: pass it on, as anti-entropy alone would take
	// a push/pull interval per hop.
	c.broadcast(c.merge(s.Latest))
}

// NotifyMsg merges a gossiped version and passes it on when it was news.
func (c *Table) NotifyMsg(b []byte) {
	v, err := decodeChannelMsg(b)
	if err != nil {
		c.rejected.Inc()
		return
	}
	c.broadcast(c.merge([]Version{v}))
}

// Status is one channel as an agent sees it.
type Status struct {
	Name       string
	Subscribed bool
	// Latest is the channel's latest version in this agent's table (zero if none is known),
	// learned at Learned.
	Latest  Version
	Learned time.Time
	// Held is the newest version this agent holds complete (zero if none).
	Held Version
	// CatchupErr is the last catch-up failure while one is pending ("" otherwise).
	CatchupErr string
}

// Status lists the channels this agent subscribes to or knows a version of, sorted by name.
// Cost: O(channels).
func (c *Table) Status() []Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := map[string]bool{}
	for n := range c.subscribed {
		names[n] = true
	}
	for n, v := range c.latest {
		if !v.Deleted {
			names[n] = true
		}
	}
	out := make([]Status, 0, len(names))
	for n := range names {
		cs := Status{Name: n, Subscribed: c.subscribed[n], Latest: c.latest[n], Learned: c.learned[n], Held: c.held[n]}
		if cs.Latest.Deleted {
			cs.Latest, cs.Learned = Version{}, time.Time{}
		}
		if r := c.retry[n]; r != nil && r.err != nil {
			cs.CatchupErr = r.err.Error()
		}
		out = append(out, cs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Publish records a publish of digest (size bytes) on channel by this agent for the
// identity by, started at start, as the channel's latest version (signed, with a Trust),
// and spreads it: gossip broadcasts it, and it is
// sent to each of members (the alive ones, self excluded) over gossip's TCP channel. Gossip
// broadcasts reach only a few random members per transmission and may miss one until the
// next push/pull exchange (15 to 30 s), while a publish is rare and already costs a push to
// every subscriber. Cost: one small TCP message per alive member, one after the other; a
// member that cannot be reached is left to gossip. It returns the version recorded.
func (c *Table) Publish(channel, digest, by string, size int64, start time.Time, members []membership.Member) (Version, error) {
	v := c.next(channel, digest, c.cfg.Self, size, start)
	v.By = by
	return c.record(v, members)
}

// record signs v (with a Trust), merges it and spreads it as Publish says.
func (c *Table) record(v Version, members []membership.Member) (Version, error) {
	channel := v.Channel
	if c.cfg.Trust != nil {
		var err error
		if v, err = c.cfg.Trust.Sign(v); err != nil {
			return v, fmt.Errorf("channel: sign %s version %d: %w", channel, v.Version, err)
		}
	}
	c.broadcast(c.merge([]Version{v}))
	c.mu.Lock()
	g := c.gossip
	c.mu.Unlock()
	if g == nil {
		return v, nil
	}
	msg := encodeChannelMsg(v)
	for _, m := range members {
		if m.Name == c.cfg.Self || m.State != "alive" {
			continue
		}
		if err := g.SendReliable(m, msg); err != nil {
			c.log.Debug("announce channel version", "member", m.Name, "channel", v.Channel, "err", err)
		}
	}
	return v, nil
}
