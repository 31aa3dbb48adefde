package node

import (
	"fmt"
	"time"
)

// Limits bound what a peer can make an agent spend: memory, goroutines, streams, time and
// disk. Each is checked where the input arrives, and refused with a clear error (gRPC code
// ResourceExhausted, InvalidArgument or DeadlineExceeded). The defaults suit a cluster of
// 10,000 agents.
type Limits struct {
	// MaxMessage bounds one gRPC message (a Push header carries the manifest, the plan and its
	// nodes' addresses, about 3 MiB at 10,000 agents and the most chunks; chunks travel in
	// frames of 32 KiB to 1 MiB). Default 16 MiB.
	MaxMessage int
	// MaxChunks bounds the chunks of an object's manifest (data and parity): 2 MiB of hashes.
	// Default 65,536 (256 GiB at 4 MiB chunks).
	MaxChunks int
	// MaxObject bounds an object's size, and so the staging space one push may claim.
	// Default 1 TiB.
	MaxObject int64
	// MaxPlanNodes bounds the agents a plan names; MaxFanout the children of one agent in
	// one stripe; MaxDepth how deep below this agent its subtree may go. Defaults 100,000,
	// 1,024 and 1,024.
	MaxPlanNodes, MaxFanout, MaxDepth int
	// MaxPushStreams and MaxFetchStreams bound the incoming Push and Fetch streams in all;
	// the PerPeer values those from one identity (or one address without TLS). Defaults
	// 4,096, 256, and 64, 16 per peer.
	MaxPushStreams, MaxFetchStreams               int
	MaxPushStreamsPerPeer, MaxFetchStreamsPerPeer int
	// MaxFetchRanges bounds the ranges of one Fetch request; ranges may not overlap, so a
	// Fetch sends each chunk at most once. Default 4,096.
	MaxFetchRanges int
	// HeaderTimeout bounds how long a Push stream may take to send its header. Default 10 s.
	HeaderTimeout time.Duration
	// SendTimeout fails a child that takes nothing for that long (it stopped reading); the
	// push goes on for the others. Default 60 s.
	SendTimeout time.Duration
	// StagingTTL removes staged (partial) objects no transfer has touched for that long.
	// Default 24 h.
	StagingTTL time.Duration
	// StoreQuota bounds the bytes of the store, complete and staged objects together: an
	// object that does not fit is refused before anything is written. 0: no quota.
	StoreQuota int64
}

// DefaultLimits are the limits an agent runs with when Config.Limits leaves a field zero.
func DefaultLimits() Limits {
	return Limits{
		MaxMessage: 16 << 20, MaxChunks: 1 << 16, MaxObject: 1 << 40,
		MaxPlanNodes: 100_000, MaxFanout: 1024, MaxDepth: 1024,
		MaxPushStreams: 4096, MaxFetchStreams: 256, MaxPushStreamsPerPeer: 64, MaxFetchStreamsPerPeer: 16,
		MaxFetchRanges: 4096, HeaderTimeout: 10 * time.Second, SendTimeout: 60 * time.Second,
		StagingTTL: 24 * time.Hour,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	pick := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	pick(&l.MaxMessage, d.MaxMessage)
	pick(&l.MaxChunks, d.MaxChunks)
	pick(&l.MaxPlanNodes, d.MaxPlanNodes)
	pick(&l.MaxFanout, d.MaxFanout)
	pick(&l.MaxDepth, d.MaxDepth)
	pick(&l.MaxPushStreams, d.MaxPushStreams)
	pick(&l.MaxFetchStreams, d.MaxFetchStreams)
	pick(&l.MaxPushStreamsPerPeer, d.MaxPushStreamsPerPeer)
	pick(&l.MaxFetchStreamsPerPeer, d.MaxFetchStreamsPerPeer)
	pick(&l.MaxFetchRanges, d.MaxFetchRanges)
	if l.MaxObject == 0 {
		l.MaxObject = d.MaxObject
	}
	if l.HeaderTimeout == 0 {
		l.HeaderTimeout = d.HeaderTimeout
	}
	if l.SendTimeout == 0 {
		l.SendTimeout = d.SendTimeout
	}
	if l.StagingTTL == 0 {
		l.StagingTTL = d.StagingTTL
	}
	return l
}

func (l Limits) validate(bad func(string, ...any) error) error {
	for name, v := range map[string]int64{
		"max message": int64(l.MaxMessage), "max chunks": int64(l.MaxChunks), "max object": l.MaxObject,
		"max plan nodes": int64(l.MaxPlanNodes), "max fanout": int64(l.MaxFanout), "max depth": int64(l.MaxDepth),
		"max push streams": int64(l.MaxPushStreams), "max fetch streams": int64(l.MaxFetchStreams),
		"max push streams per peer": int64(l.MaxPushStreamsPerPeer), "max fetch streams per peer": int64(l.MaxFetchStreamsPerPeer),
		"max fetch ranges": int64(l.MaxFetchRanges), "header timeout": int64(l.HeaderTimeout),
		"send timeout": int64(l.SendTimeout), "staging ttl": int64(l.StagingTTL), "store quota": l.StoreQuota,
	} {
		if v < 0 {
			return bad("limit %s is negative (%d)", name, v)
		}
	}
	if l.MaxMessage != 0 && l.MaxMessage < 1<<20 {
		return bad("limit max message %d: at least 1 MiB", l.MaxMessage)
	}
	return nil
}

// String lists the limits, for logs.
func (l Limits) String() string {
	return fmt.Sprintf("message %d B, %d chunks, object %d B, plan %d nodes fanout %d depth %d, push streams %d (%d/peer), fetch streams %d (%d/peer), %d ranges, header %v, send %v, staging ttl %v, quota %d B",
		l.MaxMessage, l.MaxChunks, l.MaxObject, l.MaxPlanNodes, l.MaxFanout, l.MaxDepth, l.MaxPushStreams, l.MaxPushStreamsPerPeer,
		l.MaxFetchStreams, l.MaxFetchStreamsPerPeer, l.MaxFetchRanges, l.HeaderTimeout, l.SendTimeout, l.StagingTTL, l.StoreQuota)
}
