//go:build !linux

package hugemem

// Map returns nil: outside Linux, buffers are the garbage collector's.
func Map(n int) []byte { return nil }

// Unmap does nothing outside Linux (Map maps nothing).
func Unmap(b []byte) {}
