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
