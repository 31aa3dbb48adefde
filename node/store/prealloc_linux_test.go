package store

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"unsafe"
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

// TestPutWritesDirect: where the file system takes O_DIRECT, Put writes an object's aligned
// blocks straight to the device: none of their pages is in the page cache afterwards (the
// short tail goes through it), and the object reads back byte-exact.
func TestPutWritesDirect(t *testing.T) {
	s := openStore(t)
	probe := filepath.Join(s.Dir(), "probe")
	if err := os.WriteFile(probe, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if f := openDirect(probe); f == nil {
		t.Skip("no O_DIRECT on this file system")
	} else {
		f.Close()
	}
	data, _ := object(t, 23, 2*putBlock+100, 1<<20)
	m, err := s.Put(bytes.NewReader(data), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(s.objectPath(m.Digest))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mem, err := syscall.Mmap(int(f.Fd()), 0, len(data), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mem)
	pages := (len(data) + os.Getpagesize() - 1) / os.Getpagesize()
	vec := make([]byte, pages)
	if _, _, e := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Skipf("mincore: %v", e)
	}
	cached := 0
	for _, v := range vec[:2*putBlock/os.Getpagesize()] {
		cached += int(v & 1)
	}
	if cached != 0 {
		t.Fatalf("%d of the aligned blocks' %d pages are in the page cache: not written directly", cached, 2*putBlock/os.Getpagesize())
	}
	if got := readAll(t, s, m.Digest); !bytes.Equal(got, data) {
		t.Fatal("stored bytes differ")
	}
}
