package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Demote takes the complete object d out of the complete objects because the chunks in bad
// failed verification (bit rot found by a scrub): Has, List, Open and ReadChunk no longer see
// it at once, and its bytes go back to staging with every other chunk recorded as held, so
// Begin resumes it (re-verifying each recorded chunk) and only the bad chunks need fetching
// again before Commit makes it visible once more. Readers that opened it keep their handle.
// Errors wrap ErrNotFound, ErrChunkIndex, or the file system's; on an error after the object
// left objects/ it stays staged. Cost: one write of a chunk record, two renames, fsyncs.
func (s *Store) Demote(d Digest, bad []int) error {
	m, err := s.Manifest(d)
	if err != nil {
		return err
	}
	skip := map[int]bool{}
	for _, i := range bad {
		if i < 0 || i >= m.NumChunks() {
			return fmt.Errorf("%w: chunk %d of %s (%d chunks)", ErrChunkIndex, i, d, m.NumChunks())
		}
		skip[i] = true
	}
	s.mu.Lock()
	if p := s.partials[d]; p != nil && p.state.Load() == stateActive {
		s.mu.Unlock()
		return fmt.Errorf("store: demote %s: it is being received", d)
	}
	s.mu.Unlock()
	rec := make([]byte, 0, 4*m.NumChunks())
	for i := range m.NumChunks() {
		if !skip[i] {
			rec = binary.LittleEndian.AppendUint32(rec, uint32(i))
		}
	}
	b, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	// A stale staged copy would be taken for this one: the record and data go first, the
	// manifest (whose presence means the others exist) last.
	_ = os.Remove(s.stagingPath(d, manifestExt))
	if err := s.writeFileAtomic(s.stagingPath(d, heldExt), rec); err != nil {
		return fmt.Errorf("store: demote %s: %w", d, err)
	}
	if err := os.Rename(s.objectPath(d), s.stagingPath(d, dataExt)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %s", ErrNotFound, d)
		}
		return fmt.Errorf("store: demote %s: %w", d, err)
	}
	s.mu.Lock()
	delete(s.manifests, d)
	delete(s.used, d)
	s.mu.Unlock()
	_ = os.Remove(s.objectPath(d) + manifestExt)
	if err := s.writeFileAtomic(s.stagingPath(d, manifestExt), b); err != nil {
		return fmt.Errorf("store: demote %s: %w", d, err)
	}
	return syncDir(filepath.Join(s.dir, objectsDir))
}
