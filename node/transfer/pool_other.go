//go:build !linux

package transfer

// mapHuge returns nil: buffers are the garbage collector's outside Linux.
func mapHuge(n int) []byte { return nil }

// unmapBuf is never called outside Linux (no buffer is mapped).
func unmapBuf(b []byte) {}
