//go:build !linux

package store

// preallocate extends f to size (sparse); only Linux allocates the blocks up front.
func preallocate(f File, size int64) error { return f.Truncate(size) }
