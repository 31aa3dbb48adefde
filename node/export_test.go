package node

import (
	"context"
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

// SetGossipHide installs a test hook that hides the members for which hide returns true
// from the agent's gossip view, as if gossip had not brought them yet (hide may change its
// answer while the agent runs).
func SetGossipHide(cfg *Config, hide func(name string) bool) { cfg.gossipHide = hide }

// OpenPush opens a Push stream from a to the member named child as a relay would, with hint
// as the address the push's header gave (""), and closes it at once.
func (a *Agent) OpenPush(ctx context.Context, child, hint string) error {
	up, err := grpcTransport{a: a}.OpenPush(ctx, child, hint)
	if err != nil {
		return err
	}
	return up.CloseSend()
}

// DialsByHeaderAddress counts the children a dialled at the address a push's header gave.
func (a *Agent) DialsByHeaderAddress() float64 { return testutil.ToFloat64(a.m.dialHints) }

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
