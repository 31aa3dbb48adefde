package store

import (
	"os"
	"syscall"
	"unsafe"
)

// preallocate gives f its size, with disk blocks allocated up front (fallocate) when the file
// system can: chunks written later in any order need no block allocation, the file is not
// fragmented, and a full disk shows at Begin rather than halfway through. Where fallocate
// fails (no support, a wrapped file, or no room), the file is extended sparse and a full disk
// shows at the write that meets it.
func preallocate(f File, size int64) error {
	if c, ok := f.(syscall.Conn); ok && size > 0 {
		if rc, err := c.SyscallConn(); err == nil {
			var ferr error
			if cerr := rc.Control(func(fd uintptr) { ferr = syscall.Fallocate(int(fd), 0, 0, size) }); cerr == nil && ferr == nil {
				return nil
			}
		}
	}
	return f.Truncate(size)
}

// openDirect opens path for writing with O_DIRECT: chunk writes then go from the caller's
// buffer to the device, without copying into the page cache or allocating its pages (in a
// virtual machine, pages the guest touches for the first time cost about a CPU second per
// GiB). It returns nil where the file system refuses O_DIRECT (tmpfs, some overlays): the
// store then writes through the page cache.
func openDirect(path string) *os.File {
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	return f
}

// directOK reports whether data may be written at off through an O_DIRECT descriptor.
func directOK(data []byte, off int64) bool {
	return len(data) > 0 && len(data)%directAlign == 0 && off%directAlign == 0 &&
		uintptr(unsafe.Pointer(unsafe.SliceData(data)))%directAlign == 0
}
