package hugemem

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Map maps n bytes (a positive multiple of PageSize) of anonymous memory at a PageSize
// boundary and asks for transparent huge pages there. It returns nil when n is not such a
// size or the system refuses the mapping. Cost: a few system calls; the pages come at the
// first write.
func Map(n int) []byte {
	if n <= 0 || n%PageSize != 0 {
		return nil
	}
	p, err := unix.MmapPtr(-1, 0, nil, uintptr(n+PageSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil
	}
	skip := (PageSize - int(uintptr(p)%PageSize)) % PageSize
	// Give back the unaligned head and tail: what remains is n bytes at a boundary.
	if skip > 0 {
		_ = unix.MunmapPtr(p, uintptr(skip))
	}
	if tail := PageSize - skip; tail > 0 {
		_ = unix.MunmapPtr(unsafe.Add(p, skip+n), uintptr(tail))
	}
	b := unsafe.Slice((*byte)(unsafe.Add(p, skip)), n)
	_ = unix.Madvise(b, unix.MADV_HUGEPAGE) // a hint: without it, small pages
	return b
}

// Unmap unmaps b, all of a buffer Map returned; nothing may touch it afterwards.
func Unmap(b []byte) {
	_ = unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(b)), uintptr(len(b)))
}
