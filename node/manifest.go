package node

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// ErrManifest is wrapped by errors about a manifest that contradicts itself.
var ErrManifest = errors.New("node: bad manifest")

// pbManifest is a manifest as the protocol carries it, checked by checkManifest.
type pbManifest struct{ m *pb.Manifest }

func (p pbManifest) Digest() string         { return p.m.GetDigest() }
func (p pbManifest) Size() int64            { return int64(p.m.GetSize()) }
func (p pbManifest) NumChunks() int         { return len(p.m.GetChunkHashes()) }
func (p pbManifest) proto() *pb.Manifest    { return p.m }
func (p pbManifest) ChunkSize() int         { return int(p.m.GetChunkSize()) }
func (p pbManifest) ChunkHash(i int) []byte { return p.m.GetChunkHashes()[i] }

// maxObjectSize bounds the size a manifest may claim (1 PiB).
const maxObjectSize = 1 << 50

// checkManifest checks a manifest read from the network: a well-formed digest, a chunk size in
// [1, MaxChunkSize], exactly ceil(size/chunk_size) chunk hashes of 32 bytes each. A manifest
// lying about sizes is refused here, before anything is written.
func checkManifest(m *pb.Manifest) (pbManifest, error) {
	if m == nil {
		return pbManifest{}, fmt.Errorf("%w: missing", ErrManifest)
	}
	d := m.GetDigest()
	hexPart, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hexPart) != 64 || strings.ToLower(hexPart) != hexPart {
		return pbManifest{}, fmt.Errorf("%w: digest %q is not sha256:<64 lower-case hex>", ErrManifest, d)
	}
	if _, err := hex.DecodeString(hexPart); err != nil {
		return pbManifest{}, fmt.Errorf("%w: digest %q is not sha256:<64 lower-case hex>", ErrManifest, d)
	}
	cs := uint64(m.GetChunkSize())
	if cs == 0 || cs > MaxChunkSize {
		return pbManifest{}, fmt.Errorf("%w: chunk size %d outside [1, %d]", ErrManifest, cs, MaxChunkSize)
	}
	size := m.GetSize()
	if size > maxObjectSize {
		return pbManifest{}, fmt.Errorf("%w: size %d above %d", ErrManifest, size, uint64(maxObjectSize))
	}
	want := (size + cs - 1) / cs
	if got := uint64(len(m.GetChunkHashes())); got != want {
		return pbManifest{}, fmt.Errorf("%w: %d chunk hashes for size %d and chunk size %d (want %d)", ErrManifest, got, size, cs, want)
	}
	for i, h := range m.GetChunkHashes() {
		if len(h) != 32 {
			return pbManifest{}, fmt.Errorf("%w: chunk %d hash is %d bytes, want 32", ErrManifest, i, len(h))
		}
	}
	return pbManifest{m}, nil
}
