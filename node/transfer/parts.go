package transfer

import (
	"context"
	"errors"
	"fmt"

	"github.com/treecast/treecast/node/store"
	pb "github.com/treecast/treecast/proto/treecast/v1"
	"github.com/treecast/treecast/scheduler"
)

// What the engine needs from the rest of the agent, as small interfaces. The agent binds them
// to node/store, node/membership and its gRPC transport; tests bind them to an in-memory
// store, a static membership and in-process streams.

// Manifest is what the engine reads of an object's manifest.
type Manifest interface {
	Digest() string // "sha256:<hex>" of the whole object
	Size() int64
	NumChunks() int
	Proto() *pb.Manifest // the protocol's form, chunk hashes included
}

// Store is what the engine needs of the agent's content-addressed chunk store.
type Store interface {
	// Begin starts (or resumes) receiving an object.
	Begin(m Manifest) (Partial, error)
	// ReadChunk reads chunk i of a complete object.
	ReadChunk(digest string, i int) ([]byte, error)
}

// FreshStore is implemented by a Store that can tell, without writing, that Begin would
// start an object from nothing (no chunk held): the engine then begins it while the first
// stream's children are being dialled, instead of before (see Engine.Receive).
type FreshStore interface {
	Fresh(digest string) bool
}

// BufReader is implemented by a Store that can read a complete object's chunk into a pooled
// buffer (the caller frees it): a source then sends its chunks without allocating one buffer
// per chunk.
type BufReader interface {
	ReadChunkBuf(digest string, i int) (*Buf, error)
}

// Partial is an object being received: chunks are verified against the manifest when
// written; the object becomes visible only at Commit.
type Partial interface {
	WriteChunk(i int, data []byte) error // verifies the chunk's hash
	ReadChunk(i int) ([]byte, error)     // a chunk already written
	Held() []int                         // chunks already written, including from a previous run
	Commit() error                       // all chunks held: make the object visible
	Close() error                        // release the handle, keeping verified chunks for a resume
}

// Members is what the engine needs of the membership view.
type Members interface {
	// Alive reports whether gossip lists the member as alive; Known whether gossip knows it
	// at all (alive or dead).
	Alive(name string) bool
	Known(name string) bool
	// Watch returns a context cancelled, with a cause wrapping membership.ErrMemberGone, when
	// the member is declared dead; the function stops watching.
	Watch(ctx context.Context, name string) (context.Context, func())
}

// Transport opens the engine's streams to other agents, by member name.
type Transport interface {
	// OpenPush opens a Push stream to the member named child. addr, when not empty, is where
	// the push's source knew child to be (Header.Addrs): used when this agent's gossip has not
	// brought child yet, instead of waiting for it.
	OpenPush(ctx context.Context, child, addr string) (Upstream, error)
	// FetchChunk reads chunk i of the object digest from the member named from (a verified
	// chunk of a complete object or of a transfer in progress).
	FetchChunk(ctx context.Context, from, digest string, i int) ([]byte, error)
}

// Warmer is a Transport that can open its connections ahead of the streams: the engine
// warms the connections to all of an agent's children, in every stripe, as soon as the
// agent's first stream of a transfer arrives, so that a stripe whose header comes later finds
// its connection (TCP and TLS handshakes done) ready, where streams share connections (a
// transport whose every stream dials its own may do nothing). Warm returns at once; failures
// are the streams' to report.
type Warmer interface {
	Warm(ctx context.Context, names []string)
}

// Plan is an overlay forwarding forest: for each stripe, the children of each node. A plan
// may also code Reed-Solomon parity (Coding() (k, m int)).
type Plan interface {
	Stripes() int
	Children(node string, stripe int) []string
}

// DecodePlan decodes and checks a plan received in a Push header (the scheduler's wire form).
func DecodePlan(b []byte) (Plan, error) {
	var w scheduler.Wire
	if err := w.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPlan, err)
	}
	w.Children(w.Source, 0) // index now: Children is then safe for concurrent use
	return &w, nil
}

// subtreeOf lists child and every receiver below it in stripe s of p, breadth first. The cost
// is O(nodes of the subtree); a malformed plan with a cycle is cut at the first repeat.
func subtreeOf(p Plan, child string, s int) []string {
	seen := map[string]bool{child: true}
	out := []string{child}
	for k := 0; k < len(out); k++ {
		for _, c := range p.Children(out[k], s) {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	return out
}

// StoreManifest is a node/store manifest as the engine's [Manifest].
type StoreManifest struct{ M store.Manifest }

// Digest, Size, NumChunks and Proto implement Manifest.
func (s StoreManifest) Digest() string      { return s.M.Digest.String() }
func (s StoreManifest) Size() int64         { return s.M.Size }
func (s StoreManifest) NumChunks() int      { return s.M.NumChunks() }
func (s StoreManifest) Proto() *pb.Manifest { return s.M.Proto() }

// ManifestFromProto checks a manifest received from the network ([ErrManifest] when it
// contradicts itself) and returns it as a [StoreManifest].
func ManifestFromProto(m *pb.Manifest) (Manifest, error) {
	sm, err := store.ManifestFromProto(m)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrManifest, err)
	}
	return StoreManifest{sm}, nil
}

func isHashMismatch(err error) bool { return errors.Is(err, store.ErrChunkCorrupt) }

var _ Manifest = StoreManifest{}
