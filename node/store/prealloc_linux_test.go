package store

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestBeginPreallocates: on a file system with fallocate, the staging file's blocks are
// allocated at Begin (chunk writes then allocate nothing), and Put's temporary file too.
func TestBeginPreallocates(t *testing.T) {
	s := openStore(t)
	probe, err := os.Create(filepath.Join(t.TempDir(), "probe"))
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	if err := syscall.Fallocate(int(probe.Fd()), 0, 0, 1<<20); err != nil {
		t.Skipf("no fallocate here: %v", err)
	}
	_, m := object(t, 21, 3<<20+5, 1<<20)
	p, err := s.Begin(m)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	fi, err := os.Stat(s.stagingPath(m.Digest, dataExt))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != m.Size {
		t.Fatalf("staging file is %d bytes, want %d", fi.Size(), m.Size)
	}
	if got := fi.Sys().(*syscall.Stat_t).Blocks * 512; got < m.Size {
		t.Fatalf("%d bytes allocated for a %d-byte object", got, m.Size)
	}
}

// TestDirectWrites: where the file system takes O_DIRECT, aligned chunks are written
// directly and unaligned ones (a buffer at an odd address, the short last chunk) through the
// page cache; either way the committed object is byte-exact.
func TestDirectWrites(t *testing.T) {
	s := openStore(t)
	if f := openDirect(s.Dir()); f == nil {
		probe := filepath.Join(s.Dir(), "probe")
		if err := os.WriteFile(probe, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if openDirect(probe) == nil {
			t.Skip("no O_DIRECT on this file system")
		}
	} else {
		f.Close()
	}
	data, m := object(t, 22, 5*64<<10+100, 64<<10)
	p, err := s.Begin(m)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.p.direct == nil {
		t.Fatal("no direct descriptor")
	}
	for i := range m.NumChunks() {
		c := chunkOf(data, m, i)
		buf := make([]byte, len(c)+1)
		if i%2 == 1 {
			buf = buf[1:] // misaligned: goes through the page cache
		}
		copy(buf, c)
		if aligned := directOK(buf[:len(c)], int64(i)*int64(m.ChunkSize)); aligned != (i%2 == 0 && i < m.NumChunks()-1) {
			t.Fatalf("chunk %d: directOK = %v", i, aligned)
		}
		if err := p.WriteChunk(i, buf[:len(c)]); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, m.Digest); string(got) != string(data) {
		t.Fatal("committed bytes differ")
	}
}
