package store

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
)

const (
	stateActive int32 = iota
	stateCommitted
	stateAborted
)

// Partial is one user's handle on an object being received. Several handles of the same
// object (several transfers, or a transfer and a repair) share its state: chunks written
// through one are held by all, and the first Commit makes it visible for all. A Partial is
// safe for concurrent use. Close releases the handle and keeps the chunks for a later resume;
// Abort discards them.
type Partial struct {
	p      *partial
	closed atomic.Bool
}

// partial is the state shared by the handles of one object in progress.
type partial struct {
	s       *Store
	m       Manifest
	ready   chan struct{} // closed when load has finished
	loadErr error         // set before ready is closed
	refs    int           // open handles; guarded by s.mu

	io          sync.RWMutex // read-locked for chunk I/O, locked to commit, abort or close files
	state       atomic.Int32
	cause       atomic.Pointer[error] // why it was aborted (AbortFor), set before the state
	filesClosed bool                  // guarded by io

	mu      sync.Mutex // guards held, log, logSize, whole and next
	held    Bitset
	whole   hash.Hash // SHA-256 of chunks [0, next), fed as they become contiguous; nil when m.Bound()
	next    int
	scratch []byte // read buffer of hashRangeLocked
	data    File
	direct  *os.File // the data opened with O_DIRECT for aligned chunk writes; nil: none
	log     File     // chunk record: one little-endian uint32 index per verified chunk
	logSize int64
}

// Begin starts receiving the object m describes, or joins it:
//   - if another transfer of the object is in progress, it returns a handle on the same
//     partial object (ErrManifestConflict if m cuts the object another way);
//   - if the object is complete in the store, a handle whose every chunk is held, already
//     committed (reads serve its chunks in m's layout);
//   - if a previous run left the object staged with the same layout, it resumes it: every
//     recorded chunk is read back and re-verified (cost O(held bytes)), and only those that
//     verify count as held;
//   - otherwise it creates a staging file of m.Size bytes, its blocks allocated up front
//     where the file system can (fallocate on Linux; sparse otherwise).
//
// m must pass Validate (ErrBadManifest otherwise). The caller closes the handle.
func (s *Store) Begin(m Manifest) (*Partial, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if err := s.checkQuota(m); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: store %s", ErrClosed, s.dir)
	}
	if p := s.partials[m.Digest]; p != nil && p.state.Load() == stateActive {
		p.refs++
		s.mu.Unlock()
		<-p.ready
		if p.loadErr != nil {
			return nil, p.loadErr
		}
		h := &Partial{p: p}
		if !p.m.SameLayout(m) {
			h.Close()
			return nil, fmt.Errorf("%w: %s in progress in %d-byte %s chunks, asked for %d-byte %s chunks",
				ErrManifestConflict, m.Digest, p.m.ChunkSize, p.m.Alg, m.ChunkSize, m.Alg)
		}
		return h, nil
	}
	m.checkSeal(s.sealer)
	p := &partial{s: s, m: m, ready: make(chan struct{}), refs: 1}
	if !m.Bound() { // the chunks' hashes do not prove the digest: Commit hashes the whole
		p.whole = sha256.New()
	}
	s.partials[m.Digest] = p
	s.mu.Unlock()

	p.loadErr = p.load()
	if p.loadErr != nil {
		p.state.Store(stateAborted)
		s.unregister(p)
	}
	close(p.ready)
	if p.loadErr != nil {
		return nil, p.loadErr
	}
	return &Partial{p: p}, nil
}

func (s *Store) unregister(p *partial) {
	s.mu.Lock()
	if s.partials[p.m.Digest] == p {
		delete(s.partials, p.m.Digest)
	}
	s.mu.Unlock()
}

func (p *partial) isReady() bool {
	select {
	case <-p.ready:
		return true
	default:
		return false
	}
}

// load opens the object's files: the complete object, a staged one to resume, or new ones.
func (p *partial) load() error {
	s, m, n := p.s, p.m, p.m.NumChunks()
	if f, err := os.Open(s.objectPath(m.Digest)); err == nil {
		p.data, p.held = f, NewBitset(n)
		for i := range n {
			p.held.Set(i)
		}
		p.state.Store(stateCommitted)
		return nil
	}
	dataPath, heldPath, manPath := s.stagingPath(m.Digest, dataExt), s.stagingPath(m.Digest, heldExt), s.stagingPath(m.Digest, manifestExt)
	if old, err := s.readStagedManifest(m.Digest); err == nil && old.SameLayout(m) {
		if err := p.resume(dataPath, heldPath); err == nil {
			return nil
		}
	}
	for _, f := range []string{manPath, dataPath, heldPath} {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("store: begin %s: %w", m.Digest, err)
		}
	}
	fail := func(err error) error {
		p.closeFiles()
		for _, f := range []string{manPath, dataPath, heldPath} {
			_ = os.Remove(f)
		}
		return fmt.Errorf("store: begin %s: %w", m.Digest, err)
	}
	var err error
	if p.data, err = s.openFile(dataPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644); err != nil {
		return fail(err)
	}
	if err = preallocate(p.data, m.Size); err != nil {
		return fail(err)
	}
	if p.log, err = s.openFile(heldPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644); err != nil {
		return fail(err)
	}
	if !s.hooked {
		p.direct = openDirect(dataPath)
	}
	b, err := m.MarshalBinary()
	if err != nil {
		return fail(err)
	}
	// The manifest comes last: a staged manifest means its data and record files exist. It
	// is not synced: a crash that loses it loses the resume, and Commit syncs what counts.
	if err = s.writeFileStaged(manPath, b); err != nil {
		return fail(err)
	}
	p.held = NewBitset(n)
	return nil
}

// resume reopens a staged object and keeps the recorded chunks that still verify.
func (p *partial) resume(dataPath, heldPath string) error {
	m := p.m
	rec, err := readHeld(heldPath, m.NumChunks())
	if err != nil {
		return err
	}
	data, err := p.s.openFile(dataPath, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	held := NewBitset(m.NumChunks())
	for _, i := range rec.Indexes() {
		buf := make([]byte, m.ChunkLen(i))
		if _, err := data.ReadAt(buf, int64(i)*int64(m.ChunkSize)); err != nil {
			continue
		}
		if m.VerifyChunk(i, buf) == nil {
			held.Set(i)
		}
	}
	log, err := p.s.openFile(heldPath, os.O_RDWR, 0)
	if err != nil {
		data.Close()
		return err
	}
	// Rewrite the record with only the chunks that verified.
	idx := held.Indexes()
	out := make([]byte, 4*len(idx))
	for k, i := range idx {
		binary.LittleEndian.PutUint32(out[4*k:], uint32(i))
	}
	if err := log.Truncate(0); err == nil {
		if _, err := log.WriteAt(out, 0); err != nil {
			log.Truncate(0) // the chunks still count; a later write records them again
			out = out[:0]
		}
	}
	p.data, p.log, p.held, p.logSize = data, log, held, int64(len(out))
	if !p.s.hooked {
		p.direct = openDirect(dataPath)
	}
	return nil
}

// readHeld reads a chunk record, ignoring a torn last record and indexes out of range.
func readHeld(path string, n int) (Bitset, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Bitset{}, err
	}
	held := NewBitset(n)
	for k := 0; k+4 <= len(b); k += 4 {
		if i := int(binary.LittleEndian.Uint32(b[k:])); i < n {
			held.Set(i)
		}
	}
	return held, nil
}

// Manifest returns the manifest of the object.
func (h *Partial) Manifest() Manifest { return h.p.m }

// Has reports whether chunk i is held (verified and written).
func (h *Partial) Has(i int) bool {
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	return h.p.held.Has(i)
}

// Held returns a copy of the set of held chunks. Cost: O(NumChunks()/64).
func (h *Partial) Held() Bitset {
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	return h.p.held.Clone()
}

func (p *partial) heldCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held.Count()
}

// Complete reports whether every chunk is held (Commit can then succeed).
func (h *Partial) Complete() bool { return h.p.heldCount() == h.p.m.NumChunks() }

// Committed reports whether the object is complete and visible in the store.
func (h *Partial) Committed() bool { return h.p.state.Load() == stateCommitted }

// WriteChunk verifies data against chunk i of the manifest and writes it into place (offset
// i*ChunkSize), then records it as held. A chunk that fails verification is not written
// (ErrChunkCorrupt; ErrChunkIndex for an index that is not a data chunk). Writing a chunk
// already held does nothing and returns nil. A write error (a full disk: syscall.ENOSPC) is
// returned wrapped; the chunk is not counted and the partial object stays resumable. After
// Abort, ErrAborted (wrapping AbortFor's reason); after Close of this handle, ErrClosed (or
// ErrAborted when the object was aborted). Cost: one SHA-256 of the chunk
// and one positioned write, plus a 4-byte record write; no fsync (Commit syncs, and a resume
// re-verifies what the record claims).
func (h *Partial) WriteChunk(i int, data []byte) error {
	p := h.p
	if h.closed.Load() {
		return h.closedErr()
	}
	if i < 0 || i >= p.m.NumChunks() {
		return fmt.Errorf("%w: chunk %d of %s (%d data chunks)", ErrChunkIndex, i, p.m.Digest, p.m.NumChunks())
	}
	if err := p.m.VerifyChunk(i, data); err != nil {
		return err
	}
	p.io.RLock()
	defer p.io.RUnlock()
	switch p.state.Load() {
	case stateAborted:
		return p.abortedErr()
	case stateCommitted:
		return nil
	}
	if p.filesClosed {
		return fmt.Errorf("%w: partial %s", ErrClosed, p.m.Digest)
	}
	if h.Has(i) {
		return nil
	}
	// Concurrent writers of the same chunk write the same verified bytes: harmless.
	if err := p.writeData(data, int64(i)*int64(p.m.ChunkSize)); err != nil {
		return fmt.Errorf("store: write chunk %d of %s: %w", i, p.m.Digest, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held.Has(i) {
		return nil
	}
	var rec [4]byte
	binary.LittleEndian.PutUint32(rec[:], uint32(i))
	if _, err := p.log.WriteAt(rec[:], p.logSize); err != nil {
		return fmt.Errorf("store: record chunk %d of %s: %w", i, p.m.Digest, err)
	}
	p.logSize += 4
	p.held.Set(i)
	if p.whole != nil && i == p.next {
		p.advanceLocked(data)
	}
	return nil
}

// writeData writes data at off: directly to the device when the partial has a direct
// descriptor and data is aligned for it, through the page cache otherwise (or when the
// direct write fails for a reason other than a full disk). p.io is read-locked.
func (p *partial) writeData(data []byte, off int64) error {
	if done, err := writeDirect(p.direct, data, off); done {
		return err
	}
	_, err := p.data.WriteAt(data, off)
	return err
}

// advanceLocked feeds chunk p.next (data) to the running whole-object hash, then every
// following chunk already held, read back from the staging file (the page cache, usually), so
// that Commit need only hash what never became contiguous. A read error stops the advance;
// Commit reads from there. p.mu is held.
func (p *partial) advanceLocked(data []byte) {
	p.whole.Write(data)
	p.next++
	end := p.next
	for end < p.m.NumChunks() && p.held.Has(end) {
		end++
	}
	if end == p.next {
		return
	}
	from := int64(p.next) * int64(p.m.ChunkSize)
	to := min(int64(end)*int64(p.m.ChunkSize), p.m.Size)
	if p.hashRangeLocked(from, to) == nil {
		p.next = end
	}
}

// hashRangeLocked feeds bytes [from, to) of the staging file to the whole-object hash. On a
// read error the hash is reset to the start (next = 0). p.mu is held.
func (p *partial) hashRangeLocked(from, to int64) error {
	if p.scratch == nil {
		p.scratch = make([]byte, 64<<10)
	}
	_, err := io.CopyBuffer(onlyWriter{p.whole}, io.NewSectionReader(p.data, from, to-from), p.scratch)
	if err != nil {
		p.whole.Reset()
		p.next = 0
	}
	return err
}

// onlyWriter hides a writer's ReadFrom so that io.CopyBuffer uses the given buffer.
type onlyWriter struct{ io.Writer }

// ReadChunk reads held chunk i (ErrChunkMissing if it is not held): a relay or a repair serves
// chunks of an object it is still receiving. The chunk was verified when written; it is not
// re-hashed. Cost: one positioned read.
func (h *Partial) ReadChunk(i int) ([]byte, error) {
	p := h.p
	if h.closed.Load() {
		return nil, fmt.Errorf("%w: partial %s", ErrClosed, p.m.Digest)
	}
	if i < 0 || i >= p.m.NumChunks() {
		return nil, fmt.Errorf("%w: chunk %d of %s (%d data chunks)", ErrChunkIndex, i, p.m.Digest, p.m.NumChunks())
	}
	if !h.Has(i) {
		return nil, fmt.Errorf("%w: chunk %d of %s", ErrChunkMissing, i, p.m.Digest)
	}
	p.io.RLock()
	defer p.io.RUnlock()
	if p.filesClosed {
		return nil, fmt.Errorf("%w: partial %s", ErrClosed, p.m.Digest)
	}
	return readChunk(p.data, p.m, i)
}

// Commit makes the object visible once every chunk is held: it fsyncs the data, makes sure
// the bytes hash to the digest, writes the manifest, renames the data into objects/ and
// fsyncs the directory. With a Bound manifest the chunks' verification already proved the
// digest and nothing is hashed here; otherwise chunks that arrived in order were hashed as
// they were written, and the rest is read back and hashed here. Errors: ErrIncomplete (names how many chunks are held) with nothing
// changed; ErrDigestMismatch when the bytes do not hash to the digest (the manifest lied:
// the partial object is discarded, as for Abort); an I/O error, wrapped, with the partial
// object kept resumable and nothing visible. Committing an object already committed (by any
// handle) returns nil. Cost: an fsync; without a Bound manifest also O(size) read and SHA-256
// for the part that did not arrive in order (the whole object after a resume).
func (h *Partial) Commit() error {
	p := h.p
	if h.closed.Load() {
		return h.closedErr()
	}
	p.io.Lock()
	defer p.io.Unlock()
	switch p.state.Load() {
	case stateAborted:
		return p.abortedErr()
	case stateCommitted:
		return nil
	}
	if c := p.heldCount(); c != p.m.NumChunks() {
		return fmt.Errorf("%w: %s: %d of %d chunks held", ErrIncomplete, p.m.Digest, c, p.m.NumChunks())
	}
	if err := p.data.Sync(); err != nil {
		return fmt.Errorf("store: commit %s: sync: %w", p.m.Digest, err)
	}
	if p.whole != nil {
		// Hash what the writes did not already hash in order (everything, after a resume).
		p.mu.Lock()
		err := p.hashRangeLocked(int64(p.next)*int64(p.m.ChunkSize), p.m.Size)
		got := Digest(p.whole.Sum(nil))
		p.whole.Reset()
		p.next = 0 // a failed Commit retried hashes the whole file again
		p.mu.Unlock()
		if err != nil {
			return fmt.Errorf("store: commit %s: read back: %w", p.m.Digest, err)
		}
		if got != p.m.Digest {
			p.discardLocked()
			return fmt.Errorf("%w: %s: its verified chunks hash to %s; discarded", ErrDigestMismatch, p.m.Digest, got)
		}
	} // else every chunk was verified against the SHA-256 chain: the bytes hash to the digest
	s := p.s
	dataPath := s.stagingPath(p.m.Digest, dataExt)
	if err := s.install(p.m, dataPath); err != nil {
		return fmt.Errorf("store: commit %s: %w", p.m.Digest, err)
	}
	p.state.Store(stateCommitted)
	// The staging leftovers go without a sync: after a crash that brings them back, the
	// committed object wins and the staging expiry removes them.
	for _, f := range []string{s.stagingPath(p.m.Digest, manifestExt), dataPath, s.stagingPath(p.m.Digest, heldExt)} {
		_ = os.Remove(f)
	}
	return nil
}

// discardLocked aborts the shared partial: removes and closes its staging files. p.io is held.
// The state, the removal and the unregistering happen under the store's lock, so Begin sees
// the partial either active (its handle's writes then fail with ErrAborted) or gone with its
// files: a new partial of the same object never creates its files before this one's are
// removed (which would remove the new ones).
func (p *partial) discardLocked() {
	s := p.s
	s.mu.Lock()
	p.state.Store(stateAborted)
	for _, f := range []string{s.stagingPath(p.m.Digest, manifestExt), s.stagingPath(p.m.Digest, dataExt), s.stagingPath(p.m.Digest, heldExt)} {
		_ = os.Remove(f)
	}
	if s.partials[p.m.Digest] == p {
		delete(s.partials, p.m.Digest)
	}
	s.mu.Unlock()
	p.closeFilesLocked()
}

// Abort discards the object in progress for every handle (their later writes fail with
// ErrAborted) and releases this handle. It never removes a committed object; then it only
// releases the handle. Abort is idempotent.
func (h *Partial) Abort() error { return h.AbortFor(nil) }

// AbortFor is Abort with the reason, which the other handles' writes and commits then wrap
// with ErrAborted (a handle whose writer met a full disk aborts the object for all: the
// others say why). The first abort's reason stands.
func (h *Partial) AbortFor(cause error) error {
	p := h.p
	p.io.Lock()
	if p.state.Load() == stateActive {
		if cause != nil {
			p.cause.Store(&cause)
		}
		p.discardLocked()
	}
	p.io.Unlock()
	return h.Close()
}

// closedErr is the error of a write or commit on a closed handle: ErrClosed, unless the
// handle was closed by the object's abort (a writer sharing it aborted it), then the abort's.
func (h *Partial) closedErr() error {
	if h.p.state.Load() == stateAborted {
		return h.p.abortedErr()
	}
	return fmt.Errorf("%w: partial %s", ErrClosed, h.p.m.Digest)
}

// abortedErr is the error of a write or commit of an aborted partial: ErrAborted, with the
// abort's reason when it has one.
func (p *partial) abortedErr() error {
	if c := p.cause.Load(); c != nil {
		return fmt.Errorf("%w: %s: %w", ErrAborted, p.m.Digest, *c)
	}
	return fmt.Errorf("%w: %s", ErrAborted, p.m.Digest)
}

// Close releases this handle, keeping the held chunks on disk for a later Begin to resume.
// The last handle's Close closes the files. Close is idempotent.
func (h *Partial) Close() error {
	if !h.closed.CompareAndSwap(false, true) {
		return nil
	}
	p, s := h.p, h.p.s
	s.mu.Lock()
	p.refs--
	last := p.refs == 0
	if last && s.partials[p.m.Digest] == p {
		delete(s.partials, p.m.Digest)
	}
	s.mu.Unlock()
	if last {
		return p.closeFiles()
	}
	return nil
}

func (p *partial) closeFiles() error {
	p.io.Lock()
	defer p.io.Unlock()
	return p.closeFilesLocked()
}

func (p *partial) closeFilesLocked() error {
	if p.filesClosed {
		return nil
	}
	p.filesClosed = true
	var errs []error
	for _, f := range []File{p.data, p.log} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	if p.direct != nil {
		errs = append(errs, p.direct.Close())
	}
	return errors.Join(errs...)
}
