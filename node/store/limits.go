package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrQuota: an object does not fit in the store's quota; nothing was written.
var ErrQuota = errors.New("store: quota exceeded")

// WithQuota bounds the bytes of the store: complete objects and staged ones (counted at
// their full size, as their sparse files may fill). Begin first makes room by evicting
// complete objects, least recently used first, that are neither tagged nor pinned (see
// SetEvictPolicy), and refuses an object that still does not fit with ErrQuota before
// writing anything. 0: no quota.
func WithQuota(bytes int64) Option { return func(s *Store) { s.quota = bytes } }

// Usage returns the bytes of the complete objects and of the staged ones (their full
// sizes). Cost: two directory reads and a manifest read per staged object.
func (s *Store) Usage() (int64, error) {
	var n int64
	for _, list := range []func() ([]Info, error){s.List, s.Partials} {
		infos, err := list()
		if err != nil {
			return 0, err
		}
		for _, in := range infos {
			n += in.Manifest.Size
		}
	}
	return n, nil
}

// checkQuota reports ErrQuota when an object of m's size, not yet staged nor complete, would
// take the store over its quota and eviction (see makeRoom) cannot free enough.
func (s *Store) checkQuota(m Manifest) error {
	if s.quota <= 0 || s.Has(m.Digest) {
		return nil
	}
	if _, err := os.Stat(s.stagingPath(m.Digest, manifestExt)); err == nil {
		return nil // resuming: already counted
	}
	used, err := s.Usage()
	if err != nil {
		return err
	}
	if used+m.Size > s.quota {
		if used, err = s.makeRoom(used, m.Size, m.Digest); err != nil {
			return err
		}
	}
	if used+m.Size > s.quota {
		return fmt.Errorf("%w: %s needs %d bytes, %d of %d in use by objects that may not be evicted", ErrQuota, m.Digest, m.Size, used, s.quota)
	}
	return nil
}

// ExpireStaging removes the staged objects that no transfer has open and whose files have
// not changed for ttl (abandoned by a sender that went away), and returns how many it
// removed. Cost: one directory read and a stat per staged file.
func (s *Store) ExpireStaging(ttl time.Duration) (int, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, stagingDir))
	if err != nil {
		return 0, fmt.Errorf("store: expire staging: %w", err)
	}
	newest := map[string]time.Time{}
	for _, e := range ents {
		name := e.Name()
		h := name
		for _, ext := range []string{dataExt, heldExt, manifestExt} {
			h = strings.TrimSuffix(h, ext)
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		if t := fi.ModTime(); t.After(newest[h]) {
			newest[h] = t
		}
	}
	removed := 0
	for h, t := range newest {
		if time.Since(t) < ttl {
			continue
		}
		d, err := ParseDigest(digestPrefix + h)
		if err != nil {
			continue
		}
		s.mu.Lock()
		_, open := s.partials[d]
		s.mu.Unlock()
		if open {
			continue
		}
		for _, ext := range []string{dataExt, heldExt, manifestExt} {
			_ = os.Remove(s.stagingPath(d, ext))
		}
		removed++
	}
	return removed, nil
}
