package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/treecast/treecast/node/channel"
	"github.com/treecast/treecast/node/membership"
	"github.com/treecast/treecast/node/store"
	"github.com/treecast/treecast/node/transfer"
	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// Errors of the agent. They are wrapped with context (%w) and mapped to gRPC status codes only
// at the RPC edge. Most are the sub-packages' own, named here for callers of the agent.
var (
	ErrNoReceivers = errors.New("node: target matches no node")
	ErrOutsideData = errors.New("node: path outside the data dir")

	ErrClosed        = transfer.ErrClosed
	ErrUnknownDigest = transfer.ErrUnknownDigest
	ErrTruncated     = transfer.ErrTruncated
	ErrBadHeader     = transfer.ErrBadHeader
	ErrChildFailed   = transfer.ErrChildFailed
	ErrStalled       = transfer.ErrStalled
	ErrManifest      = transfer.ErrManifest
	ErrParentLost    = transfer.ErrParentLost
	ErrPlan          = transfer.ErrPlan
	ErrUnknownMember = membership.ErrUnknownMember
	ErrNameTaken     = membership.ErrNameTaken
	ErrMemberGone    = membership.ErrMemberGone
	// ErrDiskFull is wrapped (with the file system's error, such as syscall.ENOSPC) by the
	// error of a chunk write or commit that met a full disk or an exhausted quota.
	ErrDiskFull = store.ErrDiskFull
)

// The types of the agent's parts that its API speaks in.
type (
	// Member is one agent of the cluster as gossip sees it.
	Member = membership.Member
	// Result is one receiver's outcome in a [Report].
	Result = transfer.Result
	// Report is the outcome of a push: one Result per receiver, sorted by name.
	Report = transfer.Report
	// Event is a progress event of a push, given to [PushOptions].Progress as it happens.
	Event = transfer.Event
	// TransferStatus is one push in progress on the agent.
	TransferStatus = transfer.TransferStatus
	// ChannelVersion is one version of a channel.
	ChannelVersion = channel.Version
	// ChannelStatus is one channel as an agent sees it.
	ChannelStatus = channel.Status
)

// Agent is a running treecast agent: a gRPC server (treecast Agent service and gRPC health),
// a gossip member, a chunk store and the forwarding engine. Create it with [Start] and stop it
// with [Agent.Close]. All methods are safe for concurrent use.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	m       *metrics
	store   objectStore
	members *membership.Gossip
	engine  *transfer.Engine
	chans   *channel.Table
	limiter *rate.Limiter // the agent's cap on what it sends (nil: none)
	live    *live         // the event bus of /events

	lis        net.Listener
	srv        *grpc.Server
	health     *health.Server
	metricsLis net.Listener
	metricsSrv *http.Server
	advertise  string

	ctx    context.Context // cancelled by Close: the lifetime of every goroutine
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	frozen atomic.Bool                 // a test freeze: the agent hangs as a host that stops dead
	conns  map[string]*grpc.ClientConn // by member name and gRPC address

	pushStreams, fetchStreams *streamLimit
	pushes                    *pushManager // detached pushes (pushes.go)
	dirLock                   *os.File     // the data directory's lock (lock.go)

	life         *lifecycleMetrics
	scrub        *scrubMetrics
	updateMu     sync.Mutex            // one channel update (materialise, hook) at a time
	materialised map[string]string     // channel -> digest last materialised (a.mu)
	demoted      map[store.Digest]bool // objects the scrub took out of service, to repair (a.mu)

	rawStreams sync.WaitGroup // raw Push streams being served (rawpush.go)

	closeOnce sync.Once
	closeErr  error
}

// gRPC flow-control windows and socket buffers of the agent's connections.
const (
	streamWindow = 8 << 20
	connWindow   = 32 << 20
	ioBuffer     = 256 << 10
)

// Start validates cfg, opens the store in cfg.DataDir, binds the gRPC listener, joins the
// gossip cluster (cfg.Join) and starts serving. Joining is tried with backoff for at most
// cfg.JoinTimeout (and while ctx lasts); when no seed answered by then the agent starts
// alone and keeps trying in the background. Only another live agent under the same name is
// fatal ([ErrNameTaken]). The agent runs until Close. On any error everything started so
// far is stopped again.
func Start(ctx context.Context, cfg Config) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("node: data dir: %w", err)
	}
	var err error
	a := &Agent{
		cfg:   cfg,
		log:   cfg.Logger,
		m:     newMetrics(),
		conns: map[string]*grpc.ClientConn{},

		materialised: map[string]string{},
		demoted:      map[store.Digest]bool{},
		live:         newLive(cfg.Name),
	}
	a.life = newLifecycleMetrics(a.m.reg)
	a.scrub = newScrubMetrics(a.m.reg)
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.pushStreams = newStreamLimit("Push", cfg.Limits.MaxPushStreams, cfg.Limits.MaxPushStreamsPerPeer)
	a.fetchStreams = newStreamLimit("Fetch", cfg.Limits.MaxFetchStreams, cfg.Limits.MaxFetchStreamsPerPeer)
	if cfg.Insecure {
		a.log.Warn("INSECURE: no TLS and no gossip key; anyone who reaches this agent's ports can push, read and join")
	}
	if a.dirLock, err = lockDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok { // nothing was joined: stop without announcing a leave (under a name that may be another's)
			_ = a.Kill()
		}
	}()
	sopts := []store.Option{store.WithQuota(cfg.Limits.StoreQuota)}
	switch {
	case cfg.TLS != nil && cfg.SHA256Chunks:
		sopts = append(sopts, store.WithSealVerifier(manifestSealer{cfg.TLS}))
	case cfg.TLS != nil:
		sopts = append(sopts, store.WithSealer(manifestSealer{cfg.TLS}))
	}
	st, err := openStore(cfg.DataDir, append(sopts, cfg.storeOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("node: open store %s: %w", cfg.DataDir, err)
	}
	a.store = st
	cc := channel.Config{Self: cfg.Name, Labels: cfg.Labels, DataDir: cfg.DataDir, Subscribed: cfg.Channels, Log: a.log}
	if cfg.TLS != nil {
		cc.Trust = channel.CertTrust{Source: cfg.TLS, MayPublish: a.mayPublish}
	}
	a.chans = channel.NewTable(cc, a.m.reg)
	a.rawStore().SetEvictPolicy(a.pinned, func(d store.Digest, size int64) {
		a.life.evicted.Inc()
		a.log.Info("evicted under the store quota", "digest", d, "size", size)
	})
	if err := a.chans.Load(); err != nil {
		a.log.Warn("channel table not restored; gossip brings it back", "err", err)
	}

	a.lis, err = net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("node: listen %s: %w", cfg.ListenAddr, err)
	}
	a.advertise = cfg.AdvertiseAddr
	if a.advertise == "" {
		a.advertise = advertiseFor(a.lis.Addr().(*net.TCPAddr), cfg.GossipAddr)
	}
	a.cfg.Join = withKnownPeers(cfg.Join, cfg.DataDir)
	// Membership first (bound, not joined), so the engine and the gRPC service have a view;
	// the cluster is joined once the service answers.
	if err := a.newMembership(); err != nil {
		return nil, fmt.Errorf("node: membership: %w", err)
	}
	a.limiter = transfer.NewLimiter(cfg.RateLimit)
	a.engine = transfer.New(transfer.Config{Name: cfg.Name, QueueChunks: cfg.QueueChunks, StallTimeout: cfg.StallTimeout, Corrupt: cfg.corrupt,
		MaxPlanNodes: cfg.Limits.MaxPlanNodes, MaxFanout: cfg.Limits.MaxFanout, MaxDepth: cfg.Limits.MaxDepth, SendTimeout: cfg.Limits.SendTimeout},
		transfer.Deps{Store: a.store, Members: a.members, Transport: grpcTransport{a}, Metrics: a.m.engine, Log: a.log,
			Limiter: a.limiter, Context: a.ctx, Go: a.goFunc, Hang: a.hang, Committed: a.committed, OnRepair: a.live.repair})
	a.pushes = newPushManager(a)
	// The listener sorts raw Push streams (rawpush.go) from gRPC; with TLS it does the
	// handshake itself, so gRPC's credentials take the connection as it is.
	var creds credentials.TransportCredentials = insecure.NewCredentials()
	var muxConf *tls.Config
	if cfg.TLS != nil {
		creds, muxConf = sortedTLS{}, muxTLSConfig(cfg.TLS.ServerConfig())
	}
	a.srv = grpc.NewServer(
		grpc.Creds(creds),
		grpc.ChainUnaryInterceptor(a.unaryAuth),
		grpc.ChainStreamInterceptor(a.streamAuth),
		// Dead peers are noticed, and idle clients may not ping more than every 10 s.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.MaxRecvMsgSize(cfg.Limits.MaxMessage),
		grpc.MaxSendMsgSize(MaxChunkSize+1<<20),
		// Chunks flow from client to server on Push: large receive windows keep a stream busy
		// while the receiver verifies and writes (flow control still bounds memory).
		grpc.InitialWindowSize(streamWindow),
		grpc.InitialConnWindowSize(connWindow),
		grpc.ReadBufferSize(ioBuffer),
		grpc.WriteBufferSize(ioBuffer),
		serverCodec, serverPool, // codec.go: chunk frames without extra copies or clearing
	)
	registerService(a.srv, a)
	a.health = health.NewServer()
	healthpb.RegisterHealthServer(a.srv, a.health)
	a.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	a.health.SetServingStatus(pb.Agent_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	mux := newMuxListener(a, a.lis, muxConf)
	a.goFunc(func() {
		if err := a.srv.Serve(mux); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			a.log.Error("grpc serve", "err", err)
		}
	})

	if cfg.MetricsAddr != "" {
		if err := a.serveHTTP(); err != nil {
			return nil, err
		}
	}

	// Agents started at once may not reach their seeds yet: try for JoinTimeout, then go on
	// alone and let the rejoin loop keep trying. Only a taken name is fatal.
	jctx, jcancel := context.WithTimeout(ctx, cfg.JoinTimeout)
	err = a.members.Join(jctx)
	jcancel()
	if errors.Is(err, membership.ErrNameTaken) {
		return nil, fmt.Errorf("node: membership: %w", err)
	}
	if err != nil {
		a.log.Warn("no seed answered; running alone and joining in the background", "seeds", a.cfg.Join, "err", err)
	}
	a.goFunc(a.savePeers)
	if len(a.cfg.Join) > 0 {
		a.goFunc(func() { a.members.Rejoin(a.ctx, cfg.RejoinInterval) })
	}
	a.goFunc(a.expireStaging)
	a.goFunc(a.lifecycle)
	a.goFunc(a.scrubLoop)
	a.goFunc(func() {
		a.chans.Run(a.ctx, channel.Catchup{
			Members:   a.Members,
			Has:       func(d string) bool { _, err := a.store.Stat(d); return err == nil },
			Receiving: func(d string) bool { _, ok := a.engine.Receiving(d); return ok },
			Fetch:     a.fetchObject,
			CaughtUp:  a.caughtUp,
		})
	})
	if err := a.pushes.load(); err != nil {
		a.log.Warn("push records not restored", "err", err)
	}
	ok = true
	a.log.Info("agent started", "grpc", a.advertise, "gossip", a.GossipAddr(), "data", cfg.DataDir)
	return a, nil
}

// expireStaging removes, every StagingTTL/4 (at most hourly), the staged objects nobody has
// touched for StagingTTL: what senders that went away left behind.
func (a *Agent) expireStaging() {
	every := min(a.cfg.Limits.StagingTTL/4, time.Hour)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-tick.C:
		}
		if n, err := a.store.ExpireStaging(a.cfg.Limits.StagingTTL); err != nil {
			a.log.Warn("expire staging", "err", err)
		} else if n > 0 {
			a.log.Info("expired abandoned staged objects", "objects", n, "ttl", a.cfg.Limits.StagingTTL)
		}
	}
}

// advertiseFor turns a bound listener address into one peers can dial: an unspecified host
// (0.0.0.0, ::) is replaced by the gossip host, or by 127.0.0.1.
func advertiseFor(bound *net.TCPAddr, gossip string) string {
	if bound.IP != nil && !bound.IP.IsUnspecified() {
		return bound.String()
	}
	host, _, _ := net.SplitHostPort(gossip)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, fmt.Sprint(bound.Port))
}

// goFunc runs f in a goroutine owned by the agent: Close waits for it. Once the agent is
// stopping it runs nothing and reports false (Close may already be waiting).
func (a *Agent) goFunc(f func()) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return false
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		f()
	}()
	return true
}

// Name is the agent's cluster name.
func (a *Agent) Name() string { return a.cfg.Name }

// Addr is the gRPC address peers and clients dial (the bound address when port 0 was asked).
func (a *Agent) Addr() string { return a.advertise }

// MetricsAddr is the bound address of the /metrics HTTP server, or "" when not serving.
func (a *Agent) MetricsAddr() string {
	if a.metricsLis == nil {
		return ""
	}
	return a.metricsLis.Addr().String()
}

// Close leaves the gossip cluster, stops accepting RPCs, lets running streams finish (for at
// most a few seconds, then cancels them), closes client connections and the store, and waits
// for every goroutine the agent started. It is safe to call more than once; later calls return
// the first call's result.
func (a *Agent) Close() error { return a.stop(true) }

// Freeze makes the agent hang, as a host that stops dead (power loss, a kernel hang, a
// partition) with its connections open: gossip stops answering (no leave), and every stream
// it serves or sends stops moving, without an error or a reset; peers notice only through
// gossip's failure detection. Only Kill ends a frozen agent (Close then kills it). For
// failure tests, benchmarks and demos, like Kill.
func (a *Agent) Freeze() {
	a.frozen.Store(true)
	if a.members != nil {
		_ = a.members.Shutdown()
	}
}

// hang blocks while the agent is frozen, until it is killed.
func (a *Agent) hang() {
	if a.frozen.Load() {
		<-a.ctx.Done()
	}
}

// Kill stops the agent at once, as a crash would: no gossip leave (the others detect the
// failure), every stream cut, nothing drained. Objects already committed stay in the store;
// partial objects stay staged for a resume. Like Close it waits for the agent's goroutines and
// is idempotent (Close after Kill returns Kill's result). Tests and the demo use it to kill
// relays.
func (a *Agent) Kill() error { return a.stop(false) }

func (a *Agent) stop(graceful bool) error {
	graceful = graceful && !a.frozen.Load() // a frozen agent has nothing left to drain
	if graceful && a.engine != nil && !a.isClosed() {
		a.drain(drainGrace)
	}
	a.closeOnce.Do(func() {
		a.mu.Lock()
		a.closed = true
		a.mu.Unlock()
		if a.engine != nil {
			a.engine.Close()
		}
		var errs []error
		if a.health != nil {
			a.health.Shutdown()
		}
		if a.members != nil && graceful {
			errs = append(errs, a.members.Leave(2*time.Second))
		}
		if a.srv != nil && !graceful {
			a.cancel()
			a.srv.Stop()
		} else if a.srv != nil {
			done := make(chan struct{})
			go func() { a.srv.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				a.cancel()
				a.srv.Stop()
				<-done
			}
		}
		a.cancel()
		a.rawStreams.Wait() // raw Push streams end with a.ctx
		a.live.bus.Close()
		if a.metricsSrv != nil {
			errs = append(errs, a.metricsSrv.Close())
		}
		a.mu.Lock()
		for addr, c := range a.conns {
			errs = append(errs, c.Close())
			delete(a.conns, addr)
		}
		a.mu.Unlock()
		if a.members != nil {
			errs = append(errs, a.members.Shutdown())
		}
		a.wg.Wait()
		if a.store != nil {
			errs = append(errs, a.store.Close())
		}
		if a.dirLock != nil {
			errs = append(errs, a.dirLock.Close())
		}
		a.closeErr = errors.Join(errs...)
	})
	return a.closeErr
}

// conn returns a pooled client connection to the agent called name at addr. With TLS, the
// agent's certificate must name that member: an address that gossip gives for a name cannot
// be taken over by another identity.
func (a *Agent) conn(name, addr string) (*grpc.ClientConn, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, ErrClosed
	}
	key := name + "@" + addr
	if c, ok := a.conns[key]; ok {
		return c, nil
	}
	creds := insecure.NewCredentials()
	if a.cfg.TLS != nil {
		creds = credentials.NewTLS(a.cfg.TLS.ClientConfig(name))
	}
	c, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxChunkSize+1<<20), grpc.MaxCallSendMsgSize(a.cfg.Limits.MaxMessage)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.WithInitialWindowSize(streamWindow), grpc.WithInitialConnWindowSize(connWindow),
		grpc.WithReadBufferSize(ioBuffer), grpc.WithWriteBufferSize(ioBuffer),
		clientCodec, clientPool, // codec.go
	)
	if err != nil {
		return nil, fmt.Errorf("node: dial %s at %s: %w", name, addr, err)
	}
	a.conns[key] = c
	return c, nil
}

// GossipAddr is the bound gossip address.
func (a *Agent) GossipAddr() string {
	if a.members == nil {
		return ""
	}
	return a.members.GossipAddr()
}

// newMembership creates the agent's gossip (bound, not joined) with the channel table as its
// state delegate, and connects the table to it.
func (a *Agent) newMembership() error {
	g, err := membership.New(membership.Config{
		Name:      a.cfg.Name,
		Meta:      membership.Meta{Addr: a.advertise, Labels: a.cfg.Labels, Channels: a.cfg.Channels},
		Bind:      a.cfg.GossipAddr,
		Advertise: a.cfg.GossipAdvertise,
		Join:      a.cfg.Join,
		State:     a.chans,
		Keys:      a.cfg.GossipKeys,
		Log:       a.log,
		Filter:    a.cfg.gossipFilter,
		Tune:      a.cfg.gossipTune,
		Hide:      a.cfg.gossipHide,
		OnChange:  a.live.member,
	})
	if errors.Is(err, membership.ErrMetaTooLarge) {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err != nil {
		return err
	}
	a.chans.SetGossip(g)
	a.members = g
	return nil
}

// Members returns the cluster as this agent's gossip sees it (itself included), sorted by
// name. Cost: O(members).
func (a *Agent) Members() []Member {
	if a.members == nil {
		return nil
	}
	ms := a.members.Members()
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
	return ms
}
