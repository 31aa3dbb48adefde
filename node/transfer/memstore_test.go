package transfer

// An in-memory store for the engine tests.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sync"

	"github.com/treecast/treecast/node/store"
	pb "github.com/treecast/treecast/proto/treecast/v1"
)

var errMemHash = fmt.Errorf("memstore: %w", store.ErrChunkCorrupt)

type memManifest struct {
	digest    string
	size      int64
	chunkSize int
	hashes    [][32]byte
}

func (m *memManifest) Digest() string { return m.digest }
func (m *memManifest) Size() int64    { return m.size }
func (m *memManifest) NumChunks() int { return len(m.hashes) }
func (m *memManifest) Proto() *pb.Manifest {
	p := &pb.Manifest{Digest: m.digest, Size: uint64(m.size), ChunkSize: uint32(m.chunkSize)}
	for _, h := range m.hashes {
		p.ChunkHashes = append(p.ChunkHashes, h[:])
	}
	return p
}

type memStore struct {
	mu      sync.Mutex
	objects map[string][][]byte
	mans    map[string]*memManifest
}

func newMemStore() *memStore {
	return &memStore{objects: map[string][][]byte{}, mans: map[string]*memManifest{}}
}

func (s *memStore) Put(r io.Reader, chunkSize int) (Manifest, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	m := &memManifest{digest: "sha256:" + hex.EncodeToString(sum[:]), size: int64(len(b)), chunkSize: chunkSize}
	var chunks [][]byte
	for off := 0; off < len(b); off += chunkSize {
		c := b[off:min(off+chunkSize, len(b))]
		chunks = append(chunks, c)
		m.hashes = append(m.hashes, sha256.Sum256(c))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects[m.digest], s.mans[m.digest] = chunks, m
	return m, nil
}

func (s *memStore) Stat(d string) (Manifest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.mans[d]; ok && s.objects[d] != nil {
		return m, nil
	}
	return nil, fmt.Errorf("memstore: %s not found", d)
}

func (s *memStore) ReadChunk(d string, i int) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.objects[d]
	if o == nil || i < 0 || i >= len(o) {
		return nil, fmt.Errorf("memstore: %s chunk %d not found", d, i)
	}
	return o[i], nil
}

func (s *memStore) object(d string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Join(s.objects[d], nil)
}

func (s *memStore) Begin(m Manifest) (Partial, error) {
	mm, ok := m.(*memManifest)
	if !ok { // a manifest decoded from a header, or with parity
		pm := m.Proto()
		mm = &memManifest{digest: pm.GetDigest(), size: int64(pm.GetSize()), chunkSize: int(pm.GetChunkSize())}
		for _, h := range pm.GetChunkHashes() {
			mm.hashes = append(mm.hashes, [32]byte(h))
		}
	}
	return &memPartial{s: s, m: mm, chunks: make([][]byte, len(mm.hashes))}, nil
}

type memPartial struct {
	s      *memStore
	m      *memManifest
	mu     sync.Mutex
	chunks [][]byte
}

func (p *memPartial) WriteChunk(i int, data []byte) error {
	if sha256.Sum256(data) != p.m.hashes[i] {
		return fmt.Errorf("%w: chunk %d", errMemHash, i)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.chunks[i] = append([]byte(nil), data...)
	return nil
}

func (p *memPartial) ReadChunk(i int) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.chunks[i] == nil {
		return nil, fmt.Errorf("memstore: chunk %d not held", i)
	}
	return p.chunks[i], nil
}

func (p *memPartial) Held() []int {
	if _, err := p.s.Stat(p.m.digest); err == nil {
		out := make([]int, len(p.m.hashes))
		for i := range out {
			out[i] = i
		}
		return out
	}
	return nil
}

func (p *memPartial) Commit() error {
	if _, err := p.s.Stat(p.m.digest); err == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, c := range p.chunks {
		if c == nil {
			return fmt.Errorf("memstore: commit with chunk %d missing", i)
		}
	}
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	p.s.objects[p.m.digest], p.s.mans[p.m.digest] = p.chunks, p.m
	return nil
}

func (p *memPartial) Abort() error { return nil }
func (p *memPartial) Close() error { return nil }

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
