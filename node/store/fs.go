package store

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// File is what the store needs of a file it writes: *os.File satisfies it. Tests and fault
// injection wrap it (see WithOpenFile).
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.WriterAt
	Sync() error
	Truncate(size int64) error
	Close() error
}

// OpenFileFunc opens a file the way os.OpenFile does.
type OpenFileFunc func(name string, flag int, perm os.FileMode) (File, error)

func osOpenFile(name string, flag int, perm os.FileMode) (File, error) {
	return os.OpenFile(name, flag, perm)
}

// Option configures a Store.
type Option func(*Store)

// WithOpenFile makes the store open every file it writes (object data, manifests, chunk
// records, exports) through fn instead of os.OpenFile: a hook to inject write errors such as
// a full disk (syscall.ENOSPC).
func WithOpenFile(fn OpenFileFunc) Option {
	return func(s *Store) { s.openFile, s.hooked = fn, true }
}

// WithPathRoot confines Import and Export to paths inside root (after resolving symbolic
// links): others fail with ErrPathEscape. An agent sets it to the directory it may read and
// write on behalf of remote callers. Without it any path is allowed, except inside the store.
func WithPathRoot(root string) Option { return func(s *Store) { s.pathRoot = root } }

// Within resolves path against root and checks that the result stays inside root, symbolic
// links included (the deepest existing ancestor of path is resolved). A relative path is taken
// relative to root. It returns the absolute, cleaned path, or an error wrapping ErrPathEscape
// that names both. Cost: one lstat per path element.
func Within(root, path string) (string, error) {
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("store: root %q: %w", root, err)
	}
	realRoot, err := filepath.EvalSymlinks(absRoot)
	if err != nil {
		return "", fmt.Errorf("store: root %q: %w", root, err)
	}
	p := path
	if !filepath.IsAbs(p) {
		p = filepath.Join(absRoot, p)
	}
	p = filepath.Clean(p)
	real, err := resolveExisting(p)
	if err != nil {
		return "", fmt.Errorf("store: path %q: %w", path, err)
	}
	if !inside(realRoot, real) {
		return "", fmt.Errorf("%w: %q is outside %q", ErrPathEscape, path, root)
	}
	return p, nil
}

// resolveExisting resolves symbolic links in the longest existing prefix of p and appends the
// rest unchanged.
func resolveExisting(p string) (string, error) {
	rest := ""
	for cur := p; ; {
		r, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return filepath.Join(r, rest), nil
		}
		if !os.IsNotExist(err) {
			return "", err
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return p, nil
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// inside reports whether p is root or below it (both absolute and clean).
func inside(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// syncDir fsyncs a directory so that renames and creations in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: sync dir %s: %w", dir, err)
	}
	return nil
}

// randomName returns prefix followed by 16 random hex digits.
func randomName(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// WriteFileAtomic writes data to path through a temporary file in the same directory: write,
// fsync, rename, fsync the directory. Either the old file or the new one is at path, whatever
// happens (a crash, a full disk). Cost: one write and two fsyncs.
func WriteFileAtomic(path string, data []byte) error {
	return writeFileAtomic(osOpenFile, path, data)
}

// writeFileAtomic is WriteFileAtomic through the store's file opener (a fault-injection hook).
func (s *Store) writeFileAtomic(path string, data []byte) error {
	return writeFileAtomic(s.openFile, path, data)
}

// writeFileStaged writes data to path through a temporary file and a rename, without
// fsync: a reader sees the old file or the whole new one, but after a crash the file may be
// missing or empty. For staging metadata only, whose loss costs a resume and nothing more
// (a staged object's chunks are verified again when it resumes). Cost: one write, no wait
// for the device (an fsync on a busy disk takes tens of milliseconds, and this write is on
// the path of every stream's first answer).
func (s *Store) writeFileStaged(path string, data []byte) error {
	return writeFile(s.openFile, path, data, false)
}

func writeFileAtomic(openFile OpenFileFunc, path string, data []byte) error {
	return writeFile(openFile, path, data, true)
}

func writeFile(openFile OpenFileFunc, path string, data []byte, durable bool) error {
	dir := filepath.Dir(path)
	tmp := filepath.Join(dir, randomName(".tmp-"))
	f, err := openFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("store: create %s: %w", tmp, err)
	}
	_, err = f.Write(data)
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("store: write %s: %w", path, err)
	}
	if !durable {
		return nil
	}
	return syncDir(dir)
}
