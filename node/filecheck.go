package node

import (
	"fmt"
	"io"
	"os"
	"time"
)

// StableFile reads a file once while checking that nobody changes it: it notes the file's
// size, modification time and change time (and inode) when it is made, and at the end of the
// file looks again (fstat): if any of them moved, or the bytes read are not the size noted,
// the read fails with ErrObjectChanged instead of io.EOF. A consumer that commits only at
// io.EOF (store.Put, an upload) therefore never keeps torn contents. The change time moves
// on every write, even one that restores the modification time. Cost: two fstat calls.
type stableFile struct {
	f      *os.File
	before os.FileInfo
	n      int64
}

// StableFile wraps f (opened for reading, at offset 0) in a reader that fails with
// ErrObjectChanged when f changes while it is read; see stableFile. Size reports the size
// noted at the start.
func StableFile(f *os.File) (interface {
	io.Reader
	Size() int64
}, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("node: %s: %w", f.Name(), err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("node: %s is not a regular file", f.Name())
	}
	return &stableFile{f: f, before: fi}, nil
}

func (s *stableFile) Size() int64 { return s.before.Size() }

func (s *stableFile) Read(p []byte) (int, error) {
	n, err := s.f.Read(p)
	s.n += int64(n)
	if err == io.EOF {
		after, serr := s.f.Stat()
		if serr != nil {
			return n, fmt.Errorf("node: %s: %w", s.f.Name(), serr)
		}
		if cerr := CheckUnchanged(s.before, after, s.n); cerr != nil {
			return n, fmt.Errorf("%s: %w", s.f.Name(), cerr)
		}
	}
	return n, err
}

// CheckUnchanged compares two looks at one file (before and after reading read bytes of
// it) and returns an error wrapping ErrObjectChanged that says what moved, or nil.
func CheckUnchanged(before, after os.FileInfo, read int64) error {
	switch {
	case after.Size() != before.Size():
		return fmt.Errorf("%w: its size went from %d to %d bytes while it was read", ErrObjectChanged, before.Size(), after.Size())
	case read != before.Size():
		return fmt.Errorf("%w: %d bytes read of the %d it had", ErrObjectChanged, read, before.Size())
	case !after.ModTime().Equal(before.ModTime()):
		return fmt.Errorf("%w: modified at %s while it was read", ErrObjectChanged, after.ModTime().Format(time.RFC3339Nano))
	}
	if c0, i0, ok := changeTime(before); ok {
		if c1, i1, ok := changeTime(after); ok && (!c0.Equal(c1) || i0 != i1) {
			return fmt.Errorf("%w: its inode changed at %s while it was read", ErrObjectChanged, c1.Format(time.RFC3339Nano))
		}
	}
	return nil
}
