package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/identity"
)

func init() { commands = append(commands, newAgentCmd) }

func newAgentCmd() *cobra.Command {
	var (
		cfg       = agentDefaults()
		join      []string
		labels    []string
		channels  []string
		rateLimit string
		verbose   bool
		gossipKey string
		quota     string
		cpuProf   string
		life      lifecycleFlags
	)
	cmd := &cobra.Command{
		Use:   "agent --name N --data DIR --listen ADDR --gossip ADDR [--join ADDR,...]",
		Short: "Run a node agent: store, forward and serve pushed objects",
		Long: `Run a treecast node agent until SIGTERM or SIGINT.

The agent joins the cluster by gossip (--join lists seed agents' gossip addresses), serves the
treecast gRPC API on --listen (Submit, Push, Fetch, Status, and the gRPC health service),
stores objects under --data, and forwards pushed chunks to its children in the plan. Port 0
picks a free port; the bound addresses are logged at start. On SIGTERM it lets the transfers
it receives or relays finish (at most 10 s), leaves the cluster and exits; pushes it runs
resume when it starts again on the same --data. Only one agent may run on a data directory.

Every gRPC connection is mutual TLS: --tls-cert and --tls-key name the agent's certificate
(its name must be --name, its role node) and --tls-ca the cluster's CA; --gossip-key
encrypts gossip. 'treecast certs' makes all of them. --insecure runs without either
(plaintext: anyone who reaches the ports is trusted).

With TLS, the agent hashes the chunks of the objects it stores with BLAKE3 and seals their
manifests with its key: receivers verify each chunk with BLAKE3 and take the binding of the
chunk hashes to the object's SHA-256 digest from the seal of a node of the cluster, instead
of proving it with SHA-256 (about half the hashing CPU). --sha256-chunks keeps SHA-256 chunks; an
agent without TLS always does. 'treecast get' and exports check the SHA-256 digest of every
byte they write either way.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.RateLimit, err = node.ParseRate(rateLimit); err != nil {
				return fmt.Errorf("--rate-limit: %w", err)
			}
			cfg.Join = join
			cfg.Channels = channels
			cfg.Labels = map[string]string{}
			for _, kv := range labels {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("--labels: %q is not key=value", kv)
				}
				cfg.Labels[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
			if err := life.apply(&cfg); err != nil {
				return err
			}
			if quota != "" {
				if cfg.Limits.StoreQuota, err = parseSize(quota); err != nil {
					return usageErr(fmt.Errorf("--store-quota: %w", err))
				}
			}
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			// Everything but the certificates first: a configuration can be checked and printed
			// on a machine that does not hold them.
			probe := cfg
			probe.Insecure = true
			if err := probe.Validate(); err != nil {
				return err
			}
			if printed, err := printConfigIfAsked(cmd); printed {
				return err
			}
			if cfg.TLS, err = tlsSource(cmd); err != nil {
				return err
			}
			cfg.Insecure = cfg.TLS == nil
			if gossipKey != "" {
				if cfg.GossipKeys, err = identity.ReadGossipKeys(gossipKey); err != nil {
					return fmt.Errorf("--gossip-key: %w", err)
				}
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			if cpuProf != "" {
				stop, err := startCPUProfile(cpuProf)
				if err != nil {
					return err
				}
				defer stop()
			}
			ctx := cmd.Context()
			a, err := node.Start(ctx, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "agent %s: grpc %s gossip %s", cfg.Name, a.Addr(), a.GossipAddr())
			if u := a.EventsURL(); u != "" {
				base := strings.TrimSuffix(u, "/events")
				fmt.Fprintf(cmd.OutOrStdout(), " metrics %s/metrics events %s page %s/", base, u, base)
			}
			fmt.Fprintln(cmd.OutOrStdout())
			<-ctx.Done()
			cfg.Logger.Info("shutting down")
			return a.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Name, "name", "", "unique agent name (required)")
	f.StringVar(&cfg.DataDir, "data", "", "data directory of the object store (required)")
	f.StringVar(&cfg.ListenAddr, "listen", cfg.ListenAddr, "gRPC listen address host:port")
	f.StringVar(&cfg.AdvertiseAddr, "advertise", "", "gRPC address other agents dial (default: the bound listen address)")
	f.StringVar(&cfg.GossipAddr, "gossip", cfg.GossipAddr, "gossip bind address host:port")
	f.StringVar(&cfg.GossipAdvertise, "gossip-advertise", "", "gossip address other agents reach (default: the bound gossip address)")
	f.StringSliceVar(&join, "join", nil, "gossip addresses of seed agents, comma separated")
	f.StringSliceVar(&labels, "labels", nil, "topology labels k=v,... (dc, pod, rack)")
	f.StringSliceVar(&channels, "channels", nil, "channels to subscribe to, comma separated")
	f.StringVar(&cfg.MetricsAddr, "metrics", "", "serve Prometheus /metrics on this HTTP address")
	f.StringVar(&rateLimit, "rate-limit", "", "cap on bytes sent per second, e.g. 1G, 500M, 64MiB (default: none)")
	f.BoolVar(&cfg.Profiling, "pprof", false, "also serve Go's live profiles under /debug/pprof/ on the --metrics address (with TLS, to operator certificates only)")
	f.StringVar(&cpuProf, "cpuprofile", "", "write a CPU profile of the agent's run to this file when it stops (for `go tool pprof`; about 1% of CPU while on)")
	f.BoolVar(&cfg.PushOverGRPC, "push-over-grpc", false, "send Push streams to children as gRPC messages instead of on the push wire (more copies per byte; for troubleshooting)")
	f.BoolVar(&cfg.SHA256Chunks, "sha256-chunks", false, "hash the chunks of objects this agent stores with SHA-256 (a chain that proves the digest) instead of BLAKE3 sealed with the agent's key (with TLS; half the receivers' hashing CPU)")
	f.IntVar(&cfg.ChunkSize, "chunk", cfg.ChunkSize, "chunk size in bytes of objects this agent stores to push them (0: each push's plan chooses)")
	f.BoolVarP(&verbose, "verbose", "v", false, "debug logging")
	f.StringVar(&gossipKey, "gossip-key", "", "file of the cluster's gossip key(s), from 'treecast certs gossip-key' (the first encrypts)")
	f.StringVar(&quota, "store-quota", "", "bound on the store's bytes, complete and staged objects together (default: none)")
	f.DurationVar(&cfg.Limits.StagingTTL, "staging-ttl", node.DefaultLimits().StagingTTL, "remove staged objects untouched for this long")
	f.DurationVar(&cfg.Limits.SendTimeout, "send-timeout", node.DefaultLimits().SendTimeout, "fail a child that takes nothing for this long")
	life.register(cmd, &cfg)
	addTLSFlags(cmd, identity.RoleNode)
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("data")
	bindConfig(cmd)
	return cmd
}

// agentDefaults is node's default configuration with the well-known local ports: gRPC on
// 127.0.0.1:7700 (where the client commands look by default) and gossip on 127.0.0.1:7946.
// Port 0 picks a free port.
func agentDefaults() node.Config {
	cfg := node.DefaultConfig("", "")
	cfg.ListenAddr = "127.0.0.1:7700"
	cfg.GossipAddr = "127.0.0.1:7946"
	return cfg
}

// startCPUProfile starts profiling the process's CPU into path (created, or truncated); the
// returned function stops it and closes the file (the profile is complete only then).
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}
