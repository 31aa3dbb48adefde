package store

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/treecast/treecast/node/internal/hugemem"
	pb "github.com/treecast/treecast/proto/treecast/v1"
	"google.golang.org/protobuf/proto"
)

// Limits on what a manifest may claim. They bound the memory and disk a manifest from the
// network can make a node reserve.
const (
	// MaxChunkSize is the largest chunk size, in bytes (64 MiB).
	MaxChunkSize = 64 << 20
	// MaxChunks is the largest number of data chunks of one object (4 Mi; the manifest's
	// hashes then take 128 MiB).
	MaxChunks = 1 << 22
	// MaxShards bounds data plus parity chunks per Reed-Solomon group (GF(2^8) codes).
	MaxShards = 256
)

// Manifest describes an object: digest, size, chunk size and the hash (SHA-256 or BLAKE3,
// see Alg) of every chunk, optionally Reed-Solomon parity. Chunk i covers bytes
// [i*ChunkSize, min((i+1)*ChunkSize, Size)). A Manifest from the network must pass Validate
// (ManifestFromProto and UnmarshalManifest call it) before it is trusted.
type Manifest struct {
	// Digest is the SHA-256 of the whole object.
	Digest Digest
	// Size is the object's size in bytes.
	Size int64
	// ChunkSize is the size of every chunk but the last, in bytes.
	ChunkSize int
	// Chunks holds the hash (Alg) of each data chunk: ceil(Size/ChunkSize) of them.
	Chunks []Hash
	// Alg is the hash of Chunks and Parity.Hashes.
	Alg HashAlg
	// Seal, when not nil, is the signature of the node that hashed the object over the
	// layout (see WithSealer); BLAKE3 manifests only.
	Seal *Seal
	// Parity describes Reed-Solomon parity chunks; nil when there are none.
	Parity *Parity
	// Chain, when not empty, holds SHA-256 chaining values that bind the chunks to Digest:
	// Chain[i] is SHA-256's state after absorbing chunks 0..i, for i < NumChunks()-1 (see
	// Bound). NewManifest computes them when ChunkSize is a multiple of 64 bytes. SHA256
	// manifests only.
	Chain []Hash

	sealed bool // Seal verified by the receiving store's Sealer (set by Begin only)
}

// Parity describes Reed-Solomon parity: each group of DataShards consecutive data chunks (the
// last group padded with zero chunks, every chunk zero-padded to ChunkSize) has ParityShards
// parity chunks of ChunkSize bytes. Parity chunk j of group g has chunk index
// NumChunks() + g*ParityShards + j. The store keeps only data chunks; parity chunks are
// verified (Manifest.VerifyChunk) and forwarded by the agent.
type Parity struct {
	// DataShards is K, data chunks per group.
	DataShards int
	// ParityShards is M, parity chunks per group.
	ParityShards int
	// Hashes holds the hash (the manifest's Alg) of each parity chunk, group by group:
	// Groups()*ParityShards.
	Hashes []Hash
}

// NumChunks returns the number of data chunks.
func (m Manifest) NumChunks() int { return len(m.Chunks) }

// NumParity returns the number of parity chunks (0 without parity).
func (m Manifest) NumParity() int {
	if m.Parity == nil {
		return 0
	}
	return len(m.Parity.Hashes)
}

// Groups returns the number of parity groups, ceil(NumChunks()/DataShards); 0 without parity.
func (m Manifest) Groups() int {
	if m.Parity == nil || m.Parity.DataShards <= 0 {
		return 0
	}
	return (len(m.Chunks) + m.Parity.DataShards - 1) / m.Parity.DataShards
}

// ChunkLen returns the length of chunk i: ChunkSize for every data chunk but the last, the
// remainder for the last, ChunkSize for a parity chunk, and -1 for an index out of range.
func (m Manifest) ChunkLen(i int) int {
	n := len(m.Chunks)
	switch {
	case i < 0 || i >= n+m.NumParity():
		return -1
	case i < n-1 || i >= n:
		return m.ChunkSize
	default:
		return int(m.Size - int64(i)*int64(m.ChunkSize))
	}
}

// ChunkHash returns the hash of chunk i (data or parity) and whether i is in range.
func (m Manifest) ChunkHash(i int) (Hash, bool) {
	n := len(m.Chunks)
	switch {
	case i >= 0 && i < n:
		return m.Chunks[i], true
	case i >= n && i < n+m.NumParity():
		return m.Parity.Hashes[i-n], true
	}
	return Hash{}, false
}

// VerifyChunk checks data against chunk i's length and hash (data or parity chunk). A data
// chunk of a chained SHA-256 manifest is checked against the chain (which also proves that
// its bytes are those the digest was computed on); other chunks against their own hash.
// Errors wrap ErrChunkIndex or ErrChunkCorrupt. Cost: O(len(data)), one hash of the chunk's
// bytes (BLAKE3: about half SHA-256's CPU).
func (m Manifest) VerifyChunk(i int, data []byte) error {
	want, ok := m.ChunkHash(i)
	if !ok {
		return fmt.Errorf("%w: chunk %d of %s (it has %d data and %d parity chunks)", ErrChunkIndex, i, m.Digest, len(m.Chunks), m.NumParity())
	}
	if l := m.ChunkLen(i); len(data) != l {
		return fmt.Errorf("%w: chunk %d of %s is %d bytes, manifest says %d", ErrChunkCorrupt, i, m.Digest, len(data), l)
	}
	if i < len(m.Chunks) && m.chained() {
		if !m.verifyChained(i, data) {
			return fmt.Errorf("%w: chunk %d of %s: SHA-256 chain differs from the manifest's", ErrChunkCorrupt, i, m.Digest)
		}
		return nil
	}
	if m.Alg.Sum(data) != want {
		return fmt.Errorf("%w: chunk %d of %s: %s differs from the manifest's", ErrChunkCorrupt, i, m.Digest, m.Alg)
	}
	return nil
}

// Bound reports whether verifying every data chunk with VerifyChunk proves that the object's
// bytes hash to Digest, so that a receiver need not hash the whole object again: an empty
// object (Validate checks its digest), a single chunk whose hash is the digest, or a manifest
// with a SHA-256 chain (ChunkSize a multiple of 64, NumChunks()-1 chaining values), or a
// BLAKE3 manifest whose seal the receiving store verified at Begin. Cost: O(1).
func (m Manifest) Bound() bool {
	switch n := len(m.Chunks); {
	case n == 0:
		return true
	case m.Alg == BLAKE3:
		return m.sealed
	case n == 1:
		return m.Chunks[0] == Hash(m.Digest)
	default:
		return m.chained()
	}
}

// chained reports whether data chunks are verified against the chain.
func (m Manifest) chained() bool {
	return m.Alg == SHA256 && chainSupported && len(m.Chunks) > 1 && len(m.Chain) == len(m.Chunks)-1 && m.ChunkSize%sha256.BlockSize == 0
}

// verifyChained runs SHA-256 from the state before chunk i over data and compares the state
// after it with Chain[i] (with the digest, for the last chunk).
func (m Manifest) verifyChained(i int, data []byte) bool {
	var h hash.Hash
	if i == 0 {
		h = sha256.New()
	} else {
		var ok bool
		if h, ok = chainHash(m.Chain[i-1], uint64(i)*uint64(m.ChunkSize)); !ok {
			return false
		}
	}
	h.Write(data)
	if i == len(m.Chunks)-1 {
		var sum Digest
		h.Sum(sum[:0])
		return sum == m.Digest
	}
	cv, ok := chainValue(h)
	return ok && cv == m.Chain[i]
}

// SameLayout reports whether m and o describe the same object cut the same way (digest, size,
// chunk size, hash algorithm, chunk hashes). Parity and seals are not compared. Cost:
// O(NumChunks()).
func (m Manifest) SameLayout(o Manifest) bool {
	if m.Digest != o.Digest || m.Size != o.Size || m.ChunkSize != o.ChunkSize || m.Alg != o.Alg || len(m.Chunks) != len(o.Chunks) {
		return false
	}
	for i := range m.Chunks {
		if m.Chunks[i] != o.Chunks[i] {
			return false
		}
	}
	return true
}

// Validate checks that m is consistent: a non-zero digest, 0 <= Size, 1 <= ChunkSize <=
// MaxChunkSize, exactly ceil(Size/ChunkSize) <= MaxChunks chunk hashes, and with parity
// 1 <= K, 1 <= M, K+M <= MaxShards and Groups()*M parity hashes. An empty object must have
// the digest of no bytes. Errors wrap ErrBadManifest and name the value at fault. Cost: O(1).
func (m Manifest) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrBadManifest, m.Digest, fmt.Sprintf(format, args...))
	}
	if m.Digest.IsZero() {
		return fmt.Errorf("%w: zero digest", ErrBadManifest)
	}
	if m.ChunkSize < 1 || m.ChunkSize > MaxChunkSize {
		return bad("chunk size %d outside [1, %d]", m.ChunkSize, MaxChunkSize)
	}
	if m.Size < 0 || m.Size > int64(MaxChunks)*int64(m.ChunkSize) {
		return bad("size %d outside [0, %d] for chunk size %d", m.Size, int64(MaxChunks)*int64(m.ChunkSize), m.ChunkSize)
	}
	want := (m.Size + int64(m.ChunkSize) - 1) / int64(m.ChunkSize)
	if int64(len(m.Chunks)) != want {
		return bad("%d chunk hashes for size %d and chunk size %d (want %d)", len(m.Chunks), m.Size, m.ChunkSize, want)
	}
	if m.Size == 0 && m.Digest != DigestOf(nil) {
		return bad("size 0 but the digest is not that of no bytes")
	}
	if m.Alg != SHA256 && m.Alg != BLAKE3 {
		return bad("unknown chunk hash %d", m.Alg)
	}
	if m.Seal != nil && m.Alg != BLAKE3 {
		return bad("a seal on a %s manifest", m.Alg)
	}
	if len(m.Chain) > 0 {
		if m.Alg != SHA256 {
			return bad("a SHA-256 chain on a %s manifest", m.Alg)
		}
		if m.ChunkSize%sha256.BlockSize != 0 || len(m.Chain) != len(m.Chunks)-1 {
			return bad("%d chaining values for %d chunks of %d bytes (want NumChunks-1, and a chunk size that is a multiple of %d)",
				len(m.Chain), len(m.Chunks), m.ChunkSize, sha256.BlockSize)
		}
	}
	if p := m.Parity; p != nil {
		if p.DataShards < 1 || p.ParityShards < 1 || p.DataShards+p.ParityShards > MaxShards {
			return bad("parity K=%d M=%d: want K >= 1, M >= 1, K+M <= %d", p.DataShards, p.ParityShards, MaxShards)
		}
		if w := m.Groups() * p.ParityShards; len(p.Hashes) != w {
			return bad("%d parity hashes for %d groups of %d parity chunks (want %d)", len(p.Hashes), m.Groups(), p.ParityShards, w)
		}
	}
	return nil
}

// Proto returns the protocol form of m. Cost: O(NumChunks() + NumParity()).
func (m Manifest) Proto() *pb.Manifest {
	out := &pb.Manifest{
		Digest:      m.Digest.String(),
		Size:        uint64(m.Size),
		ChunkSize:   uint32(m.ChunkSize),
		ChunkHashes: hashBytes(m.Chunks),
		ChunkHash:   pb.ChunkHash(m.Alg),
	}
	if m.Seal != nil {
		out.Seal = &pb.Seal{Cert: m.Seal.Cert, Signature: m.Seal.Sig}
	}
	if len(m.Chain) > 0 {
		out.Chain = hashBytes(m.Chain)
	}
	if p := m.Parity; p != nil {
		out.Parity = &pb.Parity{
			DataShards:   uint32(p.DataShards),
			ParityShards: uint32(p.ParityShards),
			ParityHashes: hashBytes(p.Hashes),
		}
	}
	return out
}

func hashBytes(hs []Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

func toHashes(what string, bs [][]byte) ([]Hash, error) {
	out := make([]Hash, len(bs))
	for i, b := range bs {
		if len(b) != sha256.Size {
			return nil, fmt.Errorf("%w: %s hash %d is %d bytes, want %d", ErrBadManifest, what, i, len(b), sha256.Size)
		}
		out[i] = Hash(b)
	}
	return out, nil
}

// ManifestFromProto converts and validates a manifest received from the network. Sizes are
// checked before anything is allocated in proportion to them. Errors wrap ErrBadManifest (or
// ErrBadDigest). Cost: O(hashes).
func ManifestFromProto(p *pb.Manifest) (Manifest, error) {
	if p == nil {
		return Manifest{}, fmt.Errorf("%w: missing", ErrBadManifest)
	}
	d, err := ParseDigest(p.GetDigest())
	if err != nil {
		return Manifest{}, fmt.Errorf("%w: %w", ErrBadManifest, err)
	}
	if p.GetSize() > 1<<62 || p.GetChunkSize() > MaxChunkSize {
		return Manifest{}, fmt.Errorf("%w: %s: size %d, chunk size %d", ErrBadManifest, d, p.GetSize(), p.GetChunkSize())
	}
	if h := p.GetChunkHash(); h < 0 || h > pb.ChunkHash_CHUNK_HASH_BLAKE3 { // before HashAlg's 8 bits truncate it
		return Manifest{}, fmt.Errorf("%w: %s: unknown chunk hash %d", ErrBadManifest, d, h)
	}
	m := Manifest{Digest: d, Size: int64(p.GetSize()), ChunkSize: int(p.GetChunkSize()), Alg: HashAlg(p.GetChunkHash())}
	if s := p.GetSeal(); s != nil {
		if len(s.GetCert()) > maxSealPart || len(s.GetSignature()) > maxSealPart {
			return Manifest{}, fmt.Errorf("%w: %s: a seal of %d+%d bytes, at most %d each", ErrBadManifest, d, len(s.GetCert()), len(s.GetSignature()), maxSealPart)
		}
		m.Seal = &Seal{Cert: s.GetCert(), Sig: s.GetSignature()}
	}
	if len(p.GetChunkHashes()) > MaxChunks {
		return Manifest{}, fmt.Errorf("%w: %s: %d chunk hashes, at most %d", ErrBadManifest, d, len(p.GetChunkHashes()), MaxChunks)
	}
	if m.Chunks, err = toHashes("chunk", p.GetChunkHashes()); err != nil {
		return Manifest{}, err
	}
	if len(p.GetChain()) > len(m.Chunks) {
		return Manifest{}, fmt.Errorf("%w: %s: %d chaining values for %d chunks", ErrBadManifest, d, len(p.GetChain()), len(m.Chunks))
	}
	if len(p.GetChain()) > 0 {
		if m.Chain, err = toHashes("chain", p.GetChain()); err != nil {
			return Manifest{}, err
		}
	}
	if pp := p.GetParity(); pp != nil {
		if pp.GetDataShards() > MaxShards || pp.GetParityShards() > MaxShards {
			return Manifest{}, fmt.Errorf("%w: %s: parity K=%d M=%d", ErrBadManifest, d, pp.GetDataShards(), pp.GetParityShards())
		}
		m.Parity = &Parity{DataShards: int(pp.GetDataShards()), ParityShards: int(pp.GetParityShards())}
		if m.Parity.Hashes, err = toHashes("parity", pp.GetParityHashes()); err != nil {
			return Manifest{}, err
		}
	}
	if err := m.Validate(); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// MarshalBinary encodes m as the protocol's Manifest message (the store's on-disk form).
func (m Manifest) MarshalBinary() ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(m.Proto())
}

// UnmarshalManifest decodes and validates a manifest encoded by MarshalBinary (or received as
// protocol bytes). Errors wrap ErrBadManifest. Cost: O(len(b)).
func UnmarshalManifest(b []byte) (Manifest, error) {
	var p pb.Manifest
	if err := proto.Unmarshal(b, &p); err != nil {
		return Manifest{}, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	return ManifestFromProto(&p)
}

// NewManifest reads r to its end and returns the manifest of its bytes cut in chunks of
// chunkSize bytes, with the SHA-256 chain (Manifest.Chain) when chunkSize is a multiple of 64.
// It streams: memory is O(chunkSize) whatever the object's size. Cost: one SHA-256 pass per
// chunk and one over the whole. Errors: ErrBadManifest for a chunk size
// outside [1, MaxChunkSize] or an object above MaxChunks chunks; r's errors, wrapped.
func NewManifest(r io.Reader, chunkSize int) (Manifest, error) {
	return hashStream(r, chunkSize, SHA256, nil)
}

// parallelHashMin is the smallest block whose chunk hashes hashStream runs on a goroutine.
const parallelHashMin = 64 << 10

// hashStream reads r in blocks of whole chunks (with out, putBlock bytes at least; without,
// one chunk), hashes each chunk
// and the whole, and, when out is not nil, writes every block at its offset in out. The
// hashes of a block of parallelHashMin bytes or more run side by side (on two cores, half the
// time of one after the other): the chunks' own on a goroutine, the whole object's (and its
// chaining values) on the caller's. The writes run on a third goroutine, a block behind (see
// blockWriter): reading and hashing never wait for the disk unless it falls two blocks
// behind. alg is the chunks' hash; the chain is SHA256's only. Memory: three blocks (two
// for chunks over 16 MiB) with out, one chunk without.
func hashStream(r io.Reader, chunkSize int, alg HashAlg, out *objectFile) (m Manifest, err error) {
	if chunkSize < 1 || chunkSize > MaxChunkSize {
		return Manifest{}, fmt.Errorf("%w: chunk size %d outside [1, %d]", ErrBadManifest, chunkSize, MaxChunkSize)
	}
	size, nbuf := chunkSize, 1 // without out: a chunk at a time
	if out != nil {
		size, nbuf = max(1, putBlock/chunkSize)*chunkSize, 3
		if size > 16<<20 {
			nbuf = 2
		}
	}
	free := make(chan []byte, nbuf)
	for range nbuf {
		b := hugemem.Map(size) // fresh memory each Put: huge pages fault in far cheaper
		if b == nil {
			b = alignedBuf(size)
		} else {
			defer hugemem.Unmap(b) // after the writer's close (deferred below) returned it
		}
		free <- b
	}
	var w *blockWriter
	if out != nil {
		w = startBlockWriter(*out, free)
		defer func() {
			if werr := w.close(); err == nil && werr != nil {
				m, err = Manifest{}, werr
			}
		}()
	}
	whole := sha256.New()
	m = Manifest{ChunkSize: chunkSize, Alg: alg}
	chain := alg == SHA256 && chainSupported && chunkSize%sha256.BlockSize == 0
	var off int64
	for {
		if w != nil && w.failed.Load() {
			return Manifest{}, nil // close says why
		}
		buf := <-free
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			k := (n + chunkSize - 1) / chunkSize
			if len(m.Chunks)+k > MaxChunks {
				free <- buf
				return Manifest{}, fmt.Errorf("%w: object has more than %d chunks of %d bytes", ErrBadManifest, MaxChunks, chunkSize)
			}
			sums := make([]Hash, k)
			done := make(chan struct{})
			hashChunks := func() {
				for i := range sums {
					sums[i] = alg.Sum(buf[i*chunkSize : min((i+1)*chunkSize, n)])
				}
				close(done)
			}
			if n < parallelHashMin { // small: a goroutine would cost more than it saves
				hashChunks()
			} else {
				go hashChunks()
			}
			for i := 0; i < n; i += chunkSize {
				c := buf[i:min(i+chunkSize, n)]
				whole.Write(c)
				if chain && len(c) == chunkSize { // the last chunk's value is dropped below
					cv, ok := chainValue(whole)
					chain = ok
					m.Chain = append(m.Chain, cv)
				}
			}
			<-done
			m.Chunks = append(m.Chunks, sums...)
			m.Size += int64(n)
			if w != nil {
				w.write(buf, n, off)
				buf = nil
			}
			off += int64(n)
		}
		if buf != nil {
			free <- buf
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return Manifest{}, fmt.Errorf("store: read object: %w", rerr)
		}
	}
	m.Digest = Digest(whole.Sum(nil))
	if !chain || len(m.Chunks) < 2 {
		m.Chain = nil
	} else {
		m.Chain = m.Chain[:len(m.Chunks)-1]
	}
	return m, nil
}
