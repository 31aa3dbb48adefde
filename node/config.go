package node

import (
	"github.com/hashicorp/memberlist"

	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/treecast/treecast/node/identity"
	"github.com/treecast/treecast/node/membership"
	"github.com/treecast/treecast/node/store"
	"github.com/treecast/treecast/node/transfer"
)

// Config configures one agent. The zero value is not usable: Name, DataDir, ListenAddr and
// GossipAddr are required; [DefaultConfig] fills the rest with working defaults.
type Config struct {
	// Name is the agent's unique name in the cluster (gossip node name).
	Name string
	// DataDir is the directory of the agent's content-addressed store. Objects written there
	// survive a restart. Submit only reads source files from inside this directory.
	DataDir string
	// ListenAddr is the TCP address of the gRPC server ("127.0.0.1:0" picks a free port;
	// [Agent.Addr] reports the bound address).
	ListenAddr string
	// AdvertiseAddr is the gRPC address other agents dial; empty means the bound ListenAddr
	// (with an unspecified host replaced by the gossip bind host).
	AdvertiseAddr string
	// GossipAddr is the host:port memberlist binds (UDP and TCP); port 0 picks a free port.
	GossipAddr string
	// GossipAdvertise is the gossip host:port other agents reach (behind NAT); empty: the
	// bound address.
	GossipAdvertise string
	// Join lists gossip addresses of seed agents; empty starts a new cluster. When none
	// answers within JoinTimeout the agent starts alone; it joins again, every
	// RejoinInterval (sooner while alone), the seeds that are not members (healing a
	// partition, a seed's restart or a start before the seeds).
	Join []string
	// RejoinInterval is the period of the seed rejoin (0: 30 s).
	RejoinInterval time.Duration
	// JoinTimeout bounds how long Start tries to reach a seed before it starts alone and
	// keeps trying in the background (0: 10 s).
	JoinTimeout time.Duration
	// Labels place the agent in the topology (dc, pod, rack); they travel in gossip metadata.
	Labels map[string]string
	// Channels are the channels the agent subscribes to (targets "channel:NAME").
	Channels []string
	// MetricsAddr, when not empty, is the agent's HTTP address: Prometheus /metrics, the
	// event stream /events and the live page /, over mutual TLS when TLS is set.
	MetricsAddr string
	// Profiling also serves Go's profiles under /debug/pprof/ on MetricsAddr (CPU, heap,
	// goroutines, ...; see net/http/pprof): with TLS, to operators only (role operator),
	// since a profile shows the agent's internals and a CPU profile costs a few percent of
	// CPU while it runs. Off by default.
	Profiling bool
	// RateLimit caps the bytes per second the agent sends on Push streams (0: no cap).
	RateLimit int64
	// PushOverGRPC sends Push streams as gRPC messages instead of on the raw push wire
	// (rawpush.go), which costs a relay several more copies of every byte. The agent serves
	// both either way; a child that does not serve the raw wire gets gRPC regardless.
	PushOverGRPC bool
	// ChunkSize is the chunk size of objects the agent stores to push them when the push
	// does not set one; 0 lets each push's plan choose it for the network and the object
	// (objects stored by Put then use DefaultChunkSize).
	ChunkSize int
	// QueueChunks bounds the chunks queued per child of a transfer. With F children per
	// stripe, a transfer holds at most about (QueueChunks+2)*ChunkSize*F bytes in memory,
	// whatever the object size.
	QueueChunks int
	// DialTimeout bounds connecting to a child agent.
	DialTimeout time.Duration
	// StallTimeout fails a receiver's transfer that gets no chunk for that long once one of
	// its streams has ended (a stripe whose parent never came or stopped).
	StallTimeout time.Duration
	// Logger receives structured logs; nil means slog.Default() with an "agent" attribute.
	Logger *slog.Logger

	// TLS secures every gRPC connection of the agent, served and dialled, with mutual TLS
	// 1.3 (package node/identity): the agent's certificate, whose name must be its Name and
	// whose role must be node, and the cluster CA every peer's certificate must chain to.
	// Nil is allowed only with Insecure.
	TLS *identity.Source
	// SHA256Chunks keeps SHA-256 chunk hashes (with the chain that proves the digest, and no
	// trust in the node that hashed the object) on an agent with TLS, which otherwise hashes
	// the objects it stores with BLAKE3 and seals their manifests with its key (see
	// store.WithSealer): receivers then spend about half the CPU on verification. An agent
	// without TLS always uses SHA-256. Either kind of manifest is received by every agent.
	SHA256Chunks bool
	// GossipKeys encrypt and authenticate gossip (memberlist's keyring, AES-GCM): a member
	// without one of them is not admitted and its packets change nothing. The first key
	// encrypts; the others are still accepted (rotation). Empty is allowed only with
	// Insecure.
	GossipKeys [][]byte
	// Insecure runs the agent without TLS and without a gossip key: anyone who reaches its
	// ports is trusted. It must be asked for explicitly, and the agent logs it loudly.
	Insecure bool
	// Publishers grants the right to publish channels: channel name (or "*" for every
	// channel) -> the identities (operator certificate names, or "*") that may publish it.
	// Nil lets every operator publish every channel. Every agent of a cluster must have the
	// same policy: each checks every channel version it learns against its own.
	Publishers map[string][]string
	// Limits bound what a peer can make the agent spend; zero fields take the defaults of
	// [DefaultLimits].
	Limits Limits

	// ChannelRetain keeps the N newest versions of each channel this agent held; older ones
	// are removed from the store (unless tagged or some channel's latest). 0 keeps every
	// version (older ones may still be evicted under a StoreQuota).
	ChannelRetain int
	// ChannelDirs materialises channels: channel -> path where the agent keeps a copy of the
	// channel's latest version, replaced atomically (a temporary file beside it, renamed)
	// whenever a new version is committed here.
	ChannelDirs map[string]string
	// ChannelHooks runs a command after a channel's new version is committed (and
	// materialised): channel -> executable, run with TREECAST_CHANNEL, TREECAST_DIGEST,
	// TREECAST_VERSION and TREECAST_PATH in its environment, for at most HookTimeout. Its exit
	// status goes into the push's report for this receiver.
	ChannelHooks map[string]string
	// HookTimeout bounds a channel hook's run (0: 60 s); a hook still running then is killed.
	HookTimeout time.Duration
	// ScrubRate is the bytes per second the background scrub re-reads and re-verifies stored
	// chunks at (0: no scrub). A bad chunk takes its object out of the complete objects at once
	// and the agent fetches it again from another holder.
	ScrubRate int64
	// ScrubPause is the pause between two scrub passes (0: DefaultScrubPause).
	ScrubPause time.Duration

	// corrupt, when set (tests only), may alter a chunk this agent sends on a Push stream
	// to child; it returns the bytes to send.
	corrupt func(child string, index int, data []byte) []byte
	// gossipFilter, a test hook, drops gossip to and from the peers (gossip addresses) it
	// blocks: a network partition of the gossip only.
	gossipFilter func(peer string) bool
	// gossipTune, a test hook, adjusts memberlist's configuration (faster failure detection).
	gossipTune func(*memberlist.Config)
	// gossipHide, a test hook, hides the members it names from the agent's gossip view.
	gossipHide func(name string) bool
	// storeOptions (tests only) are given to the store when it opens (fault injection).
	storeOptions []store.Option
}

// Defaults used by [DefaultConfig] and filled by [Start] where a field is zero.
const (
	DefaultChunkSize    = 4 << 20
	DefaultQueueChunks  = 8
	DefaultDialTimeout  = 5 * time.Second
	DefaultStallTimeout = 30 * time.Second
	// MaxChunkSize bounds the chunk size (and so gRPC message sizes).
	MaxChunkSize = 64 << 20
)

// DefaultConfig returns a configuration for an agent named name storing under dataDir,
// listening on loopback ports chosen by the kernel.
func DefaultConfig(name, dataDir string) Config {
	return Config{
		Name:         name,
		DataDir:      dataDir,
		ListenAddr:   "127.0.0.1:0",
		GossipAddr:   "127.0.0.1:0",
		QueueChunks:  DefaultQueueChunks,
		DialTimeout:  DefaultDialTimeout,
		StallTimeout: DefaultStallTimeout,
	}
}

// ErrConfig is wrapped by every error of [Config.Validate].
var ErrConfig = errors.New("node: bad config")

// Validate checks the configuration and names the first bad value. It does no I/O besides
// nothing: addresses are parsed, not bound.
func (c *Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, a...))
	}
	if c.Name == "" {
		return bad("name is empty")
	}
	if strings.ContainsAny(c.Name, " \t\n,=:") {
		return bad("name %q has a space, ',', '=' or ':'", c.Name)
	}
	if c.DataDir == "" {
		return bad("data dir is empty")
	}
	for field, addr := range map[string]string{"listen": c.ListenAddr, "gossip": c.GossipAddr} {
		if err := membership.CheckHostPort(addr); err != nil {
			return bad("%s address %q: %v", field, addr, err)
		}
	}
	if c.AdvertiseAddr != "" {
		if err := membership.CheckHostPort(c.AdvertiseAddr); err != nil {
			return bad("advertise address %q: %v", c.AdvertiseAddr, err)
		}
	}
	if c.GossipAdvertise != "" {
		if err := membership.CheckHostPort(c.GossipAdvertise); err != nil {
			return bad("gossip advertise address %q: %v", c.GossipAdvertise, err)
		}
	}
	if c.MetricsAddr != "" {
		if err := membership.CheckHostPort(c.MetricsAddr); err != nil {
			return bad("metrics address %q: %v", c.MetricsAddr, err)
		}
	} else if c.Profiling {
		return bad("profiling is served on the HTTP address: set MetricsAddr (--metrics)")
	}
	for _, j := range c.Join {
		if err := membership.CheckHostPort(j); err != nil {
			return bad("join address %q: %v", j, err)
		}
	}
	for k, v := range c.Labels {
		if k == "" || v == "" || strings.ContainsAny(k, " ,=") || strings.ContainsAny(v, " ,=") {
			return bad("label %q=%q: keys and values must be non-empty words", k, v)
		}
	}
	for _, ch := range c.Channels {
		if ch == "" || strings.ContainsAny(ch, " ,=:") {
			return bad("channel %q: must be a non-empty word", ch)
		}
	}
	if err := c.validateLifecycle(bad); err != nil {
		return err
	}
	if c.RateLimit < 0 {
		return bad("rate limit %d is negative", c.RateLimit)
	}
	if c.ChunkSize < 0 || c.ChunkSize > MaxChunkSize {
		return bad("chunk size %d outside [0, %d]", c.ChunkSize, MaxChunkSize)
	}
	if c.QueueChunks < 0 {
		return bad("queue chunks %d is negative", c.QueueChunks)
	}
	if c.DialTimeout < 0 {
		return bad("dial timeout %v is negative", c.DialTimeout)
	}
	if c.RejoinInterval < 0 {
		return bad("rejoin interval %v is negative", c.RejoinInterval)
	}
	if c.JoinTimeout < 0 {
		return bad("join timeout %v is negative", c.JoinTimeout)
	}
	if c.StallTimeout < 0 {
		return bad("stall timeout %v is negative", c.StallTimeout)
	}
	if !c.Insecure {
		if c.TLS == nil {
			return bad("no TLS certificate: give the agent a certificate, key and CA (treecast certs issue), or run it with Insecure (plaintext)")
		}
		self := c.TLS.Self()
		if self.Name != c.Name {
			return bad("name %q differs from the name %q of the TLS certificate", c.Name, self.Name)
		}
		if self.Role != identity.RoleNode {
			return bad("the TLS certificate of %q has role %s, an agent needs role node", self.Name, self.Role)
		}
		if len(c.GossipKeys) == 0 {
			return bad("no gossip key: give the agent the cluster's gossip key (treecast certs gossip-key), or run it with Insecure")
		}
	}
	for _, k := range c.GossipKeys {
		if len(k) != 16 && len(k) != 24 && len(k) != 32 {
			return bad("gossip key of %d bytes: want 16, 24 or 32", len(k))
		}
	}
	for ch, who := range c.Publishers {
		if ch != "*" && (ch == "" || strings.ContainsAny(ch, " ,=:")) {
			return bad("publisher policy: channel %q", ch)
		}
		if len(who) == 0 {
			return bad("publisher policy: channel %q lists nobody", ch)
		}
	}
	return c.Limits.validate(bad)
}

// withDefaults returns c with zero fields filled.
func (c Config) withDefaults() Config {
	if c.QueueChunks == 0 {
		c.QueueChunks = DefaultQueueChunks
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = DefaultStallTimeout
	}
	if c.RejoinInterval == 0 {
		c.RejoinInterval = 30 * time.Second
	}
	if c.JoinTimeout == 0 {
		c.JoinTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Limits = c.Limits.withDefaults()
	c.Logger = c.Logger.With("agent", c.Name)
	if abs, err := filepath.Abs(c.DataDir); err == nil {
		c.DataDir = abs
	}
	return c
}

// ParseRate parses a byte rate such as "1G", "500M", "64KiB" or "1000" (bytes per second);
// see [transfer.ParseRate].
func ParseRate(s string) (int64, error) {
	r, err := transfer.ParseRate(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return r, nil
}
