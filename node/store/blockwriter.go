package store

import (
	"errors"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// putBlock is the size of the blocks Put reads, hashes and writes: whole chunks, at least
// this many bytes (a larger chunk is a block of its own), so that a small chunk size does not
// mean small writes.
const putBlock = 4 << 20

// directAlign is the alignment of offsets, lengths and buffers of direct writes (a page); the
// blocks' buffers have it on every platform, so the same buffer can go to an O_DIRECT
// descriptor where there is one.
const directAlign = 4096

// alignedBuf returns n bytes whose first byte is directAlign-aligned.
func alignedBuf(n int) []byte {
	b := make([]byte, n+directAlign)
	skip := (directAlign - int(uintptr(unsafe.Pointer(unsafe.SliceData(b)))%directAlign)) % directAlign
	return b[skip : skip+n : skip+n]
}

// objectFile is where Put writes an object: the file, and the same file opened with
// O_DIRECT (nil where the file system or a WithOpenFile hook rules it out).
type objectFile struct {
	f      File
	direct *os.File
}

// writeAt writes data at off: the aligned part straight to the device when there is a
// direct descriptor (no copy into the page cache, no page cache to allocate), the rest, and
// everything when a direct write fails for another reason than a full disk or quota, through
// the page cache.
func (o objectFile) writeAt(data []byte, off int64) error {
	n := len(data) &^ (directAlign - 1)
	if done, err := writeDirect(o.direct, data[:n], off); done {
		if err != nil {
			return err
		}
		data, off = data[n:], off+int64(n)
	}
	if len(data) == 0 {
		return nil
	}
	_, err := o.f.WriteAt(data, off)
	return err
}

// writeDirect writes data at off through direct when there is one and data is aligned for it.
// done reports that the write is settled: written, or failed for want of space (a full disk
// or quota, err); on any other failure (a file system that takes O_DIRECT at open but not at
// write) done is false and the caller writes through the page cache.
func writeDirect(direct *os.File, data []byte, off int64) (done bool, err error) {
	if direct == nil || !directOK(data, off) {
		return false, nil
	}
	_, err = direct.WriteAt(data, off)
	if err == nil || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true, err
	}
	return false, nil
}

// blockWriter writes the blocks hashStream has hashed on a goroutine of its own, so that
// reading and hashing the next block overlaps writing this one; each buffer goes back to free
// once written. After the first write error it writes nothing more (failed tells), and close
// returns that error.
type blockWriter struct {
	out    objectFile
	blocks chan block
	free   chan<- []byte
	done   chan struct{}
	failed atomic.Bool
	err    error // the first write error; read after done is closed
}

type block struct {
	buf []byte // a whole buffer of the free list
	n   int
	off int64
}

// startBlockWriter starts writing to out; blocks sent may number at most cap(free).
func startBlockWriter(out objectFile, free chan []byte) *blockWriter {
	w := &blockWriter{out: out, blocks: make(chan block, cap(free)), free: free, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for b := range w.blocks {
			if w.err == nil {
				if w.err = w.out.writeAt(b.buf[:b.n], b.off); w.err != nil {
					w.failed.Store(true)
				}
			}
			w.free <- b.buf
		}
	}()
	return w
}

// write queues the first n bytes of buf, a buffer of the free list, for writing at off.
func (w *blockWriter) write(buf []byte, n int, off int64) {
	w.blocks <- block{buf: buf, n: n, off: off}
}

// close waits for the queued blocks and returns the first write error.
func (w *blockWriter) close() error {
	close(w.blocks)
	<-w.done
	return w.err
}
