package store

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"testing"
)

func TestChainSupported(t *testing.T) {
	// The crypto/sha256 this builds with saves its state in the layout chain.go expects; if
	// it stops doing so, chained manifests silently lose their speed-up: fail loudly here.
	if !chainSupported {
		t.Fatal("crypto/sha256's saved state has an unexpected layout: no SHA-256 chains")
	}
}

// TestChainAgainstReference checks every chaining value of NewManifest independently: SHA-256
// resumed from Chain[i] over the rest of the object must give the digest.
func TestChainAgainstReference(t *testing.T) {
	for _, tc := range []struct{ size, chunk, chain int }{
		{0, 64, 0}, {64, 64, 0}, {65, 64, 1}, {128, 64, 1}, {1000, 64, 15}, {4096, 1024, 3},
		{5000, 1024, 4}, {1000, 100, 0} /* not a multiple of 64: no chain */, {1000, 7, 0},
	} {
		t.Run(fmt.Sprintf("%d/%d", tc.size, tc.chunk), func(t *testing.T) {
			data, m := object(t, uint64(tc.size)+3, tc.size, tc.chunk)
			if len(m.Chain) != tc.chain {
				t.Fatalf("%d chaining values, want %d", len(m.Chain), tc.chain)
			}
			for i, cv := range m.Chain {
				h, ok := chainHash(cv, uint64(i+1)*uint64(tc.chunk))
				if !ok {
					t.Fatal("chainHash failed")
				}
				h.Write(data[(i+1)*tc.chunk:])
				if Digest(h.Sum(nil)) != m.Digest {
					t.Fatalf("chain[%d] resumed over the rest does not give the digest", i)
				}
			}
			wantBound := tc.size <= tc.chunk || tc.chain > 0
			if m.Bound() != wantBound {
				t.Fatalf("Bound() = %v, want %v", m.Bound(), wantBound)
			}
			for i := range m.NumChunks() {
				if err := m.VerifyChunk(i, chunkOf(data, m, i)); err != nil {
					t.Fatalf("chunk %d: %v", i, err)
				}
			}
			back, err := UnmarshalManifest(mustMarshal(t, m))
			if err != nil || len(back.Chain) != len(m.Chain) || back.Bound() != m.Bound() {
				t.Fatalf("round trip: %v, %d chaining values", err, len(back.Chain))
			}
			for i := range m.Chain {
				if back.Chain[i] != m.Chain[i] {
					t.Fatalf("round trip changed chain[%d]", i)
				}
			}
		})
	}
}

// TestChainRejects: with a chain, a chunk is accepted only if it is the object's own chunk at
// its own place, and a manifest whose chain or digest lies fails chunk verification (before
// anything is written), not just at Commit.
func TestChainRejects(t *testing.T) {
	data, good := object(t, 11, 4096, 1024)
	other, _ := object(t, 12, 4096, 1024)
	mut := func(f func(m *Manifest)) Manifest {
		m := good
		m.Chain = append([]Hash(nil), good.Chain...)
		f(&m)
		return m
	}
	flipped := append([]byte(nil), chunkOf(data, good, 2)...)
	flipped[100] ^= 1
	for name, tc := range map[string]struct {
		m     Manifest
		i     int
		chunk []byte
	}{
		"flipped bit":         {good, 2, flipped},
		"another object":      {good, 1, chunkOf(other, good, 1)},
		"chunk moved":         {good, 1, chunkOf(data, good, 2)},
		"digest lies (last)":  {mut(func(m *Manifest) { m.Digest = DigestOf([]byte("x")) }), 3, chunkOf(data, good, 3)},
		"chain lies (before)": {mut(func(m *Manifest) { m.Chain[1][0] ^= 1 }), 1, chunkOf(data, good, 1)},
		"chain lies (after)":  {mut(func(m *Manifest) { m.Chain[1][0] ^= 1 }), 2, chunkOf(data, good, 2)},
	} {
		t.Run(name, func(t *testing.T) {
			if err := tc.m.VerifyChunk(tc.i, tc.chunk); !errors.Is(err, ErrChunkCorrupt) {
				t.Fatalf("VerifyChunk: %v", err)
			}
			s := openStore(t)
			p, err := s.Begin(tc.m)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if err := p.WriteChunk(tc.i, tc.chunk); !errors.Is(err, ErrChunkCorrupt) || p.Has(tc.i) {
				t.Fatalf("WriteChunk: %v (held %v)", err, p.Has(tc.i))
			}
		})
	}
	for name, m := range map[string]Manifest{
		"chain too short":    mut(func(m *Manifest) { m.Chain = m.Chain[:2] }),
		"chain too long":     mut(func(m *Manifest) { m.Chain = append(m.Chain, Hash{}) }),
		"chunk size not /64": {Digest: good.Digest, Size: 1000, ChunkSize: 500, Chunks: make([]Hash, 2), Chain: make([]Hash, 1)},
	} {
		t.Run(name, func(t *testing.T) {
			if err := m.Validate(); !errors.Is(err, ErrBadManifest) {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(chunkOf(data, good, 0)) != good.Chunks[0] {
		t.Fatal("chunk hashes are still the chunks' SHA-256 sums")
	}
}

// TestBoundCommitHashesNothing: a chained object received in any order commits without
// reading its data back (the chunks proved the digest), and is byte-exact.
func TestBoundCommitHashesNothing(t *testing.T) {
	reads := 0
	s := openStore(t, WithOpenFile(func(name string, flag int, perm os.FileMode) (File, error) {
		f, err := osOpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		return countingFile{File: f, reads: &reads}, nil
	}))
	data, m := object(t, 13, 64<<10+1, 4096)
	if !m.Bound() {
		t.Fatal("manifest not bound")
	}
	p := receive(t, s, data, m, 5)
	defer p.Close()
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	if reads != 0 {
		t.Fatalf("Commit read %d times from the data", reads)
	}
	if got := readAll(t, s, m.Digest); DigestOf(got) != m.Digest {
		t.Fatal("committed bytes differ")
	}
}

type countingFile struct {
	File
	reads *int
}

func (c countingFile) Read(p []byte) (int, error) { *c.reads++; return c.File.Read(p) }
func (c countingFile) ReadAt(p []byte, off int64) (int, error) {
	*c.reads++
	return c.File.ReadAt(p, off)
}
