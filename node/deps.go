package node

import (
	"context"
	"io"
	"time"

	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// The agent's parts, as small interfaces defined where they are used. realparts.go binds them
// to node/store, node/membership and the scheduler.

// manifest is what the engine reads of an object's manifest.
type manifest interface {
	Digest() string // "sha256:<hex>" of the whole object
	Size() int64
	NumChunks() int
	proto() *pb.Manifest // the protocol's form, chunk hashes included
}

// objectStore is the agent's content-addressed chunk store.
type objectStore interface {
	// Put stores the object read from r, cut in chunks of chunkSize bytes.
	Put(r io.Reader, chunkSize int) (manifest, error)
	// Import stores the file at path, which must lie inside the data directory.
	Import(path string, chunkSize int) (manifest, error)
	// Stat returns the manifest of a complete object.
	Stat(digest string) (manifest, error)
	// Begin starts (or resumes) receiving an object.
	Begin(m manifest) (partialObject, error)
	// ReadChunk reads chunk i of a complete object.
	ReadChunk(digest string, i int) ([]byte, error)
	// Remove deletes a complete object.
	Remove(digest string) error
	// Objects lists the complete objects.
	Objects() ([]objectInfo, error)
	Close() error
}

// partialObject is an object being received: chunks are verified against the manifest when
// written; the object becomes visible only at Commit.
type partialObject interface {
	WriteChunk(i int, data []byte) error // verifies the chunk's hash
	ReadChunk(i int) ([]byte, error)     // a chunk already written
	Held() []int                         // chunks already written, including from a previous run
	Commit() error                       // all chunks held: make the object visible
	Abort() error                        // discard what is not committed
	Close() error                        // release the handle, keeping verified chunks for a resume
}

// objectInfo describes one object of the store.
type objectInfo struct {
	Digest   string
	Size     int64
	Chunks   int
	Held     int
	Complete bool
}

// Member is one agent of the cluster as gossip sees it.
type Member struct {
	Name       string
	Addr       string // gRPC address
	GossipAddr string
	Labels     map[string]string
	Channels   []string
	State      string // "alive", or "dead" (failed or left: memberlist does not tell them apart)
}

// memberView is the agent's view of the cluster.
type memberView interface {
	Members() []Member
	GossipAddr() string
	Leave(timeout time.Duration) error
	Shutdown() error
}

// plan is an overlay forwarding forest: for each stripe, the children of each node.
type plan interface {
	Stripes() int
	Children(node string, stripe int) []string
}

var _ = context.Background
