package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/zeebo/blake3"
)

// TestPutAcrossBlocks: Put reads, hashes and writes in blocks of whole chunks (putBlock bytes
// at least) on three goroutines; the manifest must be the one cut by hand, chunk by chunk,
// whatever the object's size against the blocks (empty, one byte, a block less one, a block,
// a block and one, several blocks and a short last chunk), with chunk sizes that fill a
// block exactly, that do not divide it, and that exceed it; sealed (BLAKE3) or chained.
func TestPutAcrossBlocks(t *testing.T) {
	for _, tc := range []struct{ size, chunk int }{
		{0, 64 << 10}, {1, 64 << 10}, {putBlock - 1, 64 << 10}, {putBlock, 64 << 10}, {putBlock + 1, 64 << 10},
		{2*putBlock + 3*(64<<10) + 100, 64 << 10}, {3*putBlock + 17, 1000}, {2*(8<<20) + 5, 8 << 20},
	} {
		for _, sealed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d/%d/sealed=%v", tc.size, tc.chunk, sealed), func(t *testing.T) {
				var opts []Option
				if sealed {
					opts = append(opts, WithSealer(hmacSealer{"put"}))
				}
				s := openStore(t, opts...)
				data, _ := object(t, uint64(tc.size+tc.chunk), tc.size, tc.chunk)
				m, err := s.Put(bytes.NewReader(data), tc.chunk)
				if err != nil {
					t.Fatal(err)
				}
				if m.Digest != DigestOf(data) || m.Size != int64(tc.size) {
					t.Fatalf("digest %v size %d, want %v %d", m.Digest, m.Size, DigestOf(data), tc.size)
				}
				var n int
				for off := 0; off < len(data); off += tc.chunk {
					c := data[off:min(off+tc.chunk, len(data))]
					want := Hash(sha256.Sum256(c))
					if sealed {
						want = Hash(blake3.Sum256(c))
					}
					if n >= m.NumChunks() || m.Chunks[n] != want {
						t.Fatalf("chunk %d's hash differs (%d chunks)", n, m.NumChunks())
					}
					if err := m.VerifyChunk(n, c); err != nil { // with the chain, when there is one
						t.Fatalf("chunk %d: %v", n, err)
					}
					n++
				}
				if n != m.NumChunks() {
					t.Fatalf("%d chunks, want %d", m.NumChunks(), n)
				}
				if !sealed && tc.chunk%64 == 0 && n > 1 && len(m.Chain) != n-1 {
					t.Fatalf("%d chaining values for %d chunks", len(m.Chain), n)
				}
				if got := readAll(t, s, m.Digest); !bytes.Equal(got, data) {
					t.Fatal("stored bytes differ")
				}
			})
		}
	}
}

// failingReader returns its bytes, then err.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

// TestPutReadFails: a source that fails after several blocks (blocks already queued for
// writing, one being written) fails Put with its error; nothing becomes visible and Put's
// temporary file is gone.
func TestPutReadFails(t *testing.T) {
	s := openStore(t)
	data, m := object(t, 31, 3*putBlock+100, 1<<20)
	boom := errors.New("source went away")
	if _, err := s.Put(&failingReader{r: bytes.NewReader(data), err: boom}, 1<<20); !errors.Is(err, boom) {
		t.Fatalf("Put from a failing source: %v", err)
	}
	if s.Has(m.Digest) {
		t.Fatal("object visible after a failed Put")
	}
	if ents, err := os.ReadDir(filepath.Join(s.Dir(), tmpDir)); err != nil || len(ents) != 0 {
		t.Fatalf("temporary files left: %v %v", ents, err)
	}
}

// TestPutWriteFailsMidway: a disk that fills after a block and a half fails Put with
// ENOSPC whatever block the writer was on, the reader stops, and nothing becomes visible.
func TestPutWriteFailsMidway(t *testing.T) {
	open, _ := diskWithRoom(putBlock + putBlock/2)
	s := openStore(t, WithOpenFile(open))
	data, m := object(t, 32, 5*putBlock, 1<<20)
	if _, err := s.Put(bytes.NewReader(data), 1<<20); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Put on a disk that fills: %v", err)
	}
	if s.Has(m.Digest) {
		t.Fatal("object visible after a failed Put")
	}
}
