package transfer

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugePage is the size of a transparent huge page on the platforms treecast runs on.
const hugePage = 2 << 20

// mapHuge maps n bytes (a multiple of hugePage) of anonymous memory at a hugePage boundary
// and asks for transparent huge pages there (madvise MADV_HUGEPAGE: honoured when the
// system's setting is "always" or "madvise"; where it is "never" the memory works in small
// pages). It returns nil when the system refuses the mapping; the caller then allocates.
// Cost: a few system calls; the pages come at the first write, one fault per huge page.
func mapHuge(n int) []byte {
	if n%hugePage != 0 {
		return nil
	}
	p, err := unix.MmapPtr(-1, 0, nil, uintptr(n+hugePage), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil
	}
	skip := (hugePage - int(uintptr(p)%hugePage)) % hugePage
	// Give back the unaligned head and tail: what remains is n bytes at a boundary.
	if skip > 0 {
		_ = unix.MunmapPtr(p, uintptr(skip))
	}
	if tail := hugePage - skip; tail > 0 {
		_ = unix.MunmapPtr(unsafe.Add(p, skip+n), uintptr(tail))
	}
	b := unsafe.Slice((*byte)(unsafe.Add(p, skip)), n)
	_ = unix.Madvise(b, unix.MADV_HUGEPAGE) // a hint: without it, small pages
	return b
}

// unmapBuf unmaps a buffer mapHuge returned.
func unmapBuf(b []byte) {
	_ = unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(b)), uintptr(len(b)))
}
