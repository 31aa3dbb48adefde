package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"time"
)

// Eviction: with a quota (WithQuota), an object that does not fit makes room by removing
// complete objects, least recently used first, that the policy does not pin. Use is recorded
// on disk as the mtime of the object's manifest file (set when the object is committed or
// stored, and when it is opened for reading, at most once per touchEvery), so the order
// survives a restart.

// touchEvery bounds how often reading an object rewrites its recorded last use.
const touchEvery = time.Minute

type evictPolicy struct {
	pinned  func(Digest) bool
	evicted func(d Digest, size int64)
}

// SetEvictPolicy sets what eviction may not remove (pinned reports true: a channel's latest
// version, an object kept by retention; tagged objects are always pinned) and a function
// called for each object it removes (nil: none). Call it before the store is in use.
func (s *Store) SetEvictPolicy(pinned func(Digest) bool, evicted func(d Digest, size int64)) {
	s.mu.Lock()
	s.evict = evictPolicy{pinned: pinned, evicted: evicted}
	s.mu.Unlock()
}

// touch records that d was used now (the mtime of its manifest file), at most once per
// touchEvery per object. Cost: a map lookup, and now and then one utimes call.
func (s *Store) touch(d Digest) {
	now := time.Now()
	s.mu.Lock()
	last, ok := s.used[d]
	if ok && now.Sub(last) < touchEvery {
		s.mu.Unlock()
		return
	}
	s.used[d] = now
	s.mu.Unlock()
	_ = os.Chtimes(s.objectPath(d)+manifestExt, now, now)
}

// LastUse returns when the complete object d was last used: committed, stored or opened for
// reading (to touchEvery). Errors wrap ErrNotFound.
func (s *Store) LastUse(d Digest) (time.Time, error) {
	fi, err := os.Stat(s.objectPath(d) + manifestExt)
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, fmt.Errorf("%w: %s", ErrNotFound, d)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("store: last use of %s: %w", d, err)
	}
	return fi.ModTime(), nil
}

// makeRoom removes complete, unpinned, untagged objects other than keep, least recently
// used first, until need more bytes fit under the quota with used bytes in use. It returns
// the bytes in use afterwards. Cost: a directory read and a stat per object.
func (s *Store) makeRoom(used, need int64, keep Digest) (int64, error) {
	s.mu.Lock()
	pol := s.evict
	s.mu.Unlock()
	infos, err := s.List()
	if err != nil {
		return used, err
	}
	type cand struct {
		d    Digest
		size int64
		at   time.Time
	}
	var cs []cand
	for _, in := range infos {
		d := in.Manifest.Digest
		if d == keep || s.Tagged(d) || pol.pinned != nil && pol.pinned(d) {
			continue
		}
		at, err := s.LastUse(d)
		if err != nil {
			continue
		}
		cs = append(cs, cand{d, in.Manifest.Size, at})
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].at.Before(cs[j].at) })
	for _, c := range cs {
		if used+need <= s.quota {
			break
		}
		if err := s.Remove(c.d); err != nil {
			continue // removed meanwhile
		}
		used -= c.size
		if pol.evicted != nil {
			pol.evicted(c.d, c.size)
		}
	}
	return used, nil
}

// RemoveStaged deletes the staged (partial) object d when no transfer has it open, and
// reports whether there was one. Errors: the file system's.
func (s *Store) RemoveStaged(d Digest) (bool, error) {
	s.mu.Lock()
	_, open := s.partials[d]
	s.mu.Unlock()
	if open {
		return false, fmt.Errorf("store: %s is being received; it can be removed once its transfer ends", d)
	}
	found := false
	for _, ext := range []string{manifestExt, heldExt, dataExt} { // the manifest first: without it the rest is not an object
		err := os.Remove(s.stagingPath(d, ext))
		if err == nil {
			found = true
		} else if !errors.Is(err, fs.ErrNotExist) {
			return found, fmt.Errorf("store: remove staged %s: %w", d, err)
		}
	}
	return found, nil
}
