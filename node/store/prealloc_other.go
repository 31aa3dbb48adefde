//go:build !linux

package store

import "os"

// preallocate extends f to size (sparse); only Linux allocates the blocks up front.
func preallocate(f File, size int64) error { return f.Truncate(size) }

// openDirect returns nil: direct writes are used on Linux only.
func openDirect(path string) *os.File { return nil }

func directOK(data []byte, off int64) bool { return false }
