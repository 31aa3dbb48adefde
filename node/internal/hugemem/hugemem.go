// Package hugemem maps large buffers of the data path outside the Go heap, in transparent huge
// pages where the system grants them.
//
// A fresh page of memory costs a page fault at its first write. Where faults are dear (in a
// virtual machine with shadow paging one was measured at about 15 microseconds a 4 KiB page,
// 3.7 CPU seconds per GiB), a buffer the size of a chunk costs more to fault in than to fill.
// Map returns n bytes (a multiple of PageSize) at a PageSize boundary with MADV_HUGEPAGE
// asked for: the kernel then faults them in a 2 MiB page at a time (about 0.35 microseconds
// per 4 KiB measured in the same machine) under its default "madvise" setting, in small pages
// where the setting is "never" or no huge page is free. Memory from Map is the caller's to
// give back with Unmap once nothing refers to it: the garbage collector does not see it, and
// a use after Unmap is a fault, not a silent reuse.
//
// Map returns nil outside Linux and when the system refuses the mapping; callers then
// allocate on the heap.
package hugemem

// PageSize is the size of a transparent huge page on the platforms treecast runs on.
const PageSize = 2 << 20
