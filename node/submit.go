package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/treecast/treecast/node/store"
	"github.com/treecast/treecast/node/transfer"
	"github.com/treecast/treecast/scheduler"
)

// Object names what to push: a file (Path, which must lie inside the agent's data directory)
// or an object the agent's store already holds (Digest, "sha256:...").
type Object struct {
	Path   string
	Digest string
}

// PushOptions tune one push. The zero value lets the scheduler choose the plan and the chunk
// size for the topology inferred from the members' labels and the object's size (auto).
type PushOptions struct {
	Strategy  string // auto, chain, tree, forest or unicast ("" = auto)
	Fanout    int    // children per node in tree strategies (0 = the strategy's default)
	Stripes   int    // data stripes of the forest strategy (0 = its default)
	Parity    int    // Reed-Solomon parity trees (forest and auto)
	ChunkSize int    // chunk size for an object stored for this push (0 = the plan's choice)
	RateLimit int64  // cap on every sender of this push, bytes per second (0 = none)
	// Tag, when set (NAME:VERSION), is recorded for the object by every receiver when it
	// commits it, and by the source.
	Tag string
	// Channel, when set, makes the push a publish of the object on that channel (whatever the
	// target): receivers record it as the channel's latest version, as for "channel:NAME".
	Channel string
	// channelVersion is the version number a publish reserved for the push.
	channelVersion uint64
	// Publisher is the identity a channel publish is made for (checked against
	// Config.Publishers, recorded in the version); "" is this agent. Submit sets it to the
	// caller's certificate name.
	Publisher string
	// Progress, when not nil, receives every progress event and every receiver's result as
	// they arrive. It is called from one goroutine at a time and must not block for long.
	Progress func(Event)
	// Plan, when not nil, receives a text rendering of the plan before any chunk is sent.
	Plan func(PlanInfo)
	// ID is the transfer's identifier ("": a new random one).
	ID string
}

// PlanInfo describes the plan of a push, for display.
type PlanInfo struct {
	Transfer  string
	Digest    string
	Size      int64
	Chunks    int
	Strategy  string
	Stripes   int
	Receivers []string
	// Edges lists the plan's overlay edges, stripe by stripe, breadth first.
	Edges []PlanEdge
	// Plan is the scheduler's plan on the topology inferred from the members' labels: its
	// Copies, Depth and LowerBound describe the push's cost.
	Plan *scheduler.Plan
	// Summary is the plan in one line or one JSON object (strategy, stripes, depth, predicted
	// copies on the busiest arc).
	Summary scheduler.Summary

	manifest transfer.Manifest
	raw      []byte
}

// PlanEdge is one overlay edge: Parent sends stripe Stripe to Child.
type PlanEdge struct {
	Stripe        int
	Parent, Child string
}

// Push delivers an object to every agent the target selects and returns when each receiver
// has answered: the report holds one result per receiver (verified, or the error). target is
// a node name list ("a,b"), a label selector ("rack=r1", "pod=p2,dc=east"), "channel:NAME" or
// "all"; the source itself is never a receiver. The object is stored first if given by path
// (hashing it costs one read of the file). Push returns an error only when the push could not
// start (unknown digest, path outside the data dir, target matching no node, no plan); a
// receiver's failure is in the report, not the error. Memory stays bounded by the plan's
// fan-out times a few chunks whatever the object size. A "channel:NAME" target publishes the
// object as the channel's latest version ([Agent.Publish]).
func (a *Agent) Push(ctx context.Context, obj Object, target string, opts PushOptions) (Report, error) {
	if opts.Tag != "" {
		if _, err := store.ParseTag(opts.Tag); err != nil {
			return Report{}, fmt.Errorf("%w: %w", ErrBadRef, err)
		}
	}
	ch, isChannel := strings.CutPrefix(strings.TrimSpace(target), "channel:")
	switch {
	case isChannel && opts.Channel != "" && opts.Channel != ch:
		return Report{}, fmt.Errorf("%w: target channel:%s and channel %s differ", ErrConfig, ch, opts.Channel)
	case isChannel:
		return a.Publish(ctx, ch, obj, opts)
	case opts.Channel != "":
		return a.publishTo(ctx, opts.Channel, obj, target, opts)
	}
	return a.push(ctx, obj, target, opts)
}

// push is Push without the channel bookkeeping.
func (a *Agent) push(ctx context.Context, obj Object, target string, opts PushOptions) (Report, error) {
	if a.isClosed() {
		return Report{}, ErrClosed
	}
	members := a.members.Members()
	dsts, err := selectTargets(members, target, a.cfg.Name)
	if err != nil {
		return Report{}, err
	}
	// The plan chooses the chunk size of an object it stores (unless the push sets one), so
	// it is planned first, on the object's size: the store's manifest, or the file's size.
	var man transfer.Manifest
	var size int64
	chunk := opts.ChunkSize
	if chunk == 0 {
		chunk = a.cfg.ChunkSize // 0 still: the plan chooses
	}
	if obj.Digest != "" {
		if man, err = a.resolveObject(obj, 0); err != nil {
			return Report{}, err
		}
		size, chunk = man.Size(), int(man.Proto().GetChunkSize())
	} else if p, err := store.Within(a.cfg.DataDir, obj.Path); err == nil {
		if fi, err := os.Stat(p); err == nil {
			size = fi.Size()
		}
	}
	full, p, raw, err := buildFullPlan(members, a.cfg.Name, dsts, opts, size, chunk)
	if err != nil {
		return Report{}, fmt.Errorf("node: plan: %w", err)
	}
	if man == nil {
		if man, err = a.resolveObject(obj, full.ChunkSize); err != nil {
			return Report{}, err
		}
	}
	out, err := a.engine.Prepare(man, p)
	if err != nil {
		return Report{}, err
	}
	if opts.Tag != "" {
		if err := a.SetTag(opts.Tag, man.Digest()); err != nil {
			return Report{}, err
		}
	}
	man = out.Manifest
	id := opts.ID
	if id == "" {
		id = newTransferID()
	}
	pl := a.live.beginPush(id, man, full, p, dsts, members)
	if opts.Plan != nil {
		info := PlanInfo{Transfer: id, Digest: man.Digest(), Size: man.Size(), Chunks: man.NumChunks(), Strategy: string(full.Strategy),
			Stripes: p.Stripes(), Receivers: dsts, Plan: full, Summary: full.Summary(), manifest: man, raw: raw}
		for s := 0; s < p.Stripes(); s++ {
			q := []string{a.cfg.Name}
			for k := 0; k < len(q); k++ {
				for _, c := range p.Children(q[k], s) {
					info.Edges = append(info.Edges, PlanEdge{Stripe: s, Parent: q[k], Child: c})
					q = append(q, c)
				}
			}
		}
		opts.Plan(info)
	}
	rep := a.engine.Push(ctx, out, transfer.Push{ID: id, PlanRaw: raw, Addrs: memberAddrs(members), Receivers: dsts, RateLimit: opts.RateLimit, Progress: pl.progress(opts.Progress),
		Meta: transfer.Meta{Tag: opts.Tag, Channel: opts.Channel, ChannelVersion: opts.channelVersion}})
	pl.end(rep)
	return rep, nil
}

// memberAddrs returns the gRPC addresses of the alive members, by name: the push's headers
// carry those of its plan's nodes (transfer.Push.Addrs). Cost O(members).
func memberAddrs(members []Member) map[string]string {
	out := make(map[string]string, len(members))
	for _, m := range members {
		if m.Addr != "" && m.IsAlive() {
			out[m.Name] = m.Addr
		}
	}
	return out
}

// resolveObject returns the manifest of obj, storing the file first when given by path.
func (a *Agent) resolveObject(obj Object, chunkSize int) (transfer.Manifest, error) {
	if obj.Digest != "" {
		if _, err := store.ParseDigest(obj.Digest); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadHeader, err)
		}
		m, err := a.store.Stat(obj.Digest)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrUnknownDigest, obj.Digest, err)
		}
		return m, nil
	}
	if obj.Path == "" {
		return nil, errors.New("node: push needs a path or a digest")
	}
	if chunkSize <= 0 {
		chunkSize = a.cfg.ChunkSize
	}
	if chunkSize <= 0 {
		chunkSize = DefaultChunkSize
	}
	if chunkSize > MaxChunkSize {
		return nil, fmt.Errorf("%w: chunk size %d above %d", ErrConfig, chunkSize, MaxChunkSize)
	}
	m, err := a.store.Import(obj.Path, chunkSize)
	if errors.Is(err, ErrOutsideData) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("node: store %s: %w", obj.Path, err)
	}
	return m, nil
}

func (a *Agent) isClosed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.closed
}

func newTransferID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Put stores the file at path (inside the data directory) in the agent's store, cut in chunks
// of chunkSize bytes (0: Config.ChunkSize, or DefaultChunkSize), and returns its digest. Cost: one read of the
// file and one write of its chunks.
func (a *Agent) Put(path string, chunkSize int) (string, error) {
	m, err := a.resolveObject(Object{Path: path}, chunkSize)
	if err != nil {
		return "", err
	}
	return m.Digest(), nil
}
