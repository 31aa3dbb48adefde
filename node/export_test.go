package node

import (
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus/testutil"

	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// DialRawPush opens a raw Push stream to addr (rawpush.go), over TLS with conf (nil:
// plaintext); ErrNoRaw is what it wraps when addr does not serve the raw wire.
var (
	DialRawPush = dialRawPush
	ErrNoRaw    = errNoRaw
	RawMagic    = rawMagic
	RawALPN     = rawALPN
)

// StreamUnacked is what the Push stream st tells the source's pacing: the bytes it sent that
// the agent's end has not acknowledged, and whether it knows them.
func StreamUnacked(st pb.Agent_PushClient) (int, bool) { return (&grpcUp{stream: st}).Unacked() }

// PushStreams counts the Push streams a opened to its children on wire ("raw" or "grpc").
func (a *Agent) PushStreams(wire string) float64 {
	return testutil.ToFloat64(a.m.pushWire.WithLabelValues(wire))
}

// SetCorrupt installs a test hook that may alter each chunk an agent sends on a Push stream
// (to flip bits in transit). Only tests of this package's directory can call it.
func SetCorrupt(cfg *Config, f func(child string, index int, data []byte) []byte) { cfg.corrupt = f }

// EncodePlan builds and encodes the plan a push from src to dsts would use.
func EncodePlan(src string, dsts []string, strategy string) ([]byte, error) {
	_, raw, err := buildPlan(nil, src, dsts, PushOptions{Strategy: strategy})
	return raw, err
}

// SetGossipFilter installs a test hook that drops gossip to and from the peers (gossip
// addresses, host:port) for which blocked returns true: a partition of the gossip only.
func SetGossipFilter(cfg *Config, blocked func(peer string) bool) { cfg.gossipFilter = blocked }

// SetFastFailureDetection makes gossip declare a silent member dead within a second or two
// (memberlist's probe every 400 ms, suspicion at most a few probes), for tests of failures.
func SetFastFailureDetection(cfg *Config) {
	cfg.gossipTune = func(mc *memberlist.Config) {
		mc.ProbeInterval = 400 * time.Millisecond
		mc.ProbeTimeout = 350 * time.Millisecond
		mc.SuspicionMult = 3
		mc.SuspicionMaxTimeoutMult = 3
	}
}
