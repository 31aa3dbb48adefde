package store

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Layout of a data directory.
const (
	objectsDir  = "objects" // <hex> (object bytes) and <hex>.manifest, complete objects only
	stagingDir  = "staging" // <hex>.data, <hex>.held, <hex>.manifest, objects in progress
	tmpDir      = "tmp"     // Put's files being written; emptied by Open
	manifestExt = ".manifest"
	dataExt     = ".data"
	heldExt     = ".held"
)

// Store is a content-addressed object store in one data directory. It is safe for concurrent
// use by any number of goroutines, and by several transfers of the same object (they share one
// partial object). Two Stores must not share a data directory.
type Store struct {
	dir      string
	openFile OpenFileFunc
	hooked   bool // openFile is a caller's hook: every write goes through it, none direct
	pathRoot string
	quota    int64  // bytes; 0: none
	sealer   Sealer // checks seals (nil: BLAKE3 manifests are never Bound)
	seal     bool   // Put makes sealed BLAKE3 manifests (with sealer), else SHA-256 ones

	mu        sync.Mutex
	closed    bool
	partials  map[Digest]*partial  // objects being received, shared by their handles
	manifests map[Digest]Manifest  // cache of complete objects' manifests
	used      map[Digest]time.Time // last use recorded on disk (manifest mtime), see touch

	tags  *tagTable
	evict evictPolicy
}

// Info describes an object of the store, complete or in progress.
type Info struct {
	// Manifest of the object.
	Manifest Manifest
	// Held is the number of verified data chunks held.
	Held int
	// Complete is true when the object is complete, verified and visible.
	Complete bool
}

// Open opens (creating if needed) the store in dir: objects/ holds complete objects, staging/
// objects in progress (resumed by Begin), tmp/ files being Put (removed here, as a crash left
// them). Errors are the file system's, wrapped, naming the directory.
func Open(dir string, opts ...Option) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("store: data dir %q: %w", dir, err)
	}
	s := &Store{dir: abs, openFile: osOpenFile, partials: map[Digest]*partial{}, manifests: map[Digest]Manifest{}, used: map[Digest]time.Time{}}
	for _, o := range opts {
		o(s)
	}
	for _, sub := range []string{objectsDir, stagingDir, tmpDir} {
		if err := os.MkdirAll(filepath.Join(abs, sub), 0o755); err != nil {
			return nil, fmt.Errorf("store: data dir %q: %w", dir, err)
		}
	}
	ents, err := os.ReadDir(filepath.Join(abs, tmpDir))
	if err != nil {
		return nil, fmt.Errorf("store: data dir %q: %w", dir, err)
	}
	for _, e := range ents {
		_ = os.RemoveAll(filepath.Join(abs, tmpDir, e.Name()))
	}
	if s.tags, err = loadTags(abs); err != nil {
		return nil, err
	}
	return s, nil
}

// Dir returns the store's absolute data directory.
func (s *Store) Dir() string { return s.dir }

// Close releases the store: later calls that start work (Begin, Put, Import) fail with
// ErrClosed. Handles already open keep working until closed. Close is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

func (s *Store) objectPath(d Digest) string {
	return filepath.Join(s.dir, objectsDir, d.Hex())
}

func (s *Store) stagingPath(d Digest, ext string) string {
	return filepath.Join(s.dir, stagingDir, d.Hex()+ext)
}

// Fresh reports whether nothing of object d is here (not complete, not in progress, not
// staged by a previous run), so that Begin would start it from nothing, holding no chunk.
// Cost: two stats.
func (s *Store) Fresh(d Digest) bool {
	s.mu.Lock()
	_, active := s.partials[d]
	s.mu.Unlock()
	if active {
		return false
	}
	for _, p := range []string{s.objectPath(d), s.stagingPath(d, manifestExt)} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			return false
		}
	}
	return true
}

// Has reports whether a complete, verified object with digest d is in the store. Cost: one
// stat.
func (s *Store) Has(d Digest) bool {
	_, err := os.Stat(s.objectPath(d))
	return err == nil
}

// Manifest returns the manifest of the complete object d, or an error wrapping ErrNotFound.
// Cost: O(1) when cached, else one read of the manifest file.
func (s *Store) Manifest(d Digest) (Manifest, error) {
	s.mu.Lock()
	m, ok := s.manifests[d]
	s.mu.Unlock()
	if ok {
		return m, nil
	}
	if !s.Has(d) {
		return Manifest{}, fmt.Errorf("%w: %s", ErrNotFound, d)
	}
	b, err := os.ReadFile(s.objectPath(d) + manifestExt)
	if err != nil {
		return Manifest{}, fmt.Errorf("store: manifest of %s: %w", d, err)
	}
	m, err = UnmarshalManifest(b)
	if err != nil {
		return Manifest{}, fmt.Errorf("store: manifest file of %s: %w", d, err)
	}
	if m.Digest != d {
		return Manifest{}, fmt.Errorf("%w: manifest file of %s names %s", ErrBadManifest, d, m.Digest)
	}
	s.mu.Lock()
	s.manifests[d] = m
	s.mu.Unlock()
	return m, nil
}

// Reader reads a complete object; *os.File satisfies it.
type Reader interface {
	io.Reader
	io.ReaderAt
	io.Seeker
	io.Closer
}

// Open opens the complete object d for reading. The caller closes it. Errors wrap ErrNotFound.
func (s *Store) Open(d Digest) (Reader, error) {
	f, err := os.Open(s.objectPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, d)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", d, err)
	}
	s.touch(d)
	return f, nil
}

// ReadChunk reads chunk i of the complete object d, cut as its stored manifest says. Errors
// wrap ErrNotFound or ErrChunkIndex. Cost: one chunk read; the chunk is not re-hashed (use
// Manifest.VerifyChunk to check against disk corruption).
func (s *Store) ReadChunk(d Digest, i int) ([]byte, error) {
	return s.ReadChunkTo(d, i, func(n int) []byte { return make([]byte, n) })
}

// ReadChunkTo is ReadChunk into a buffer of the chunk's length that alloc gives (a pooled one:
// a sender then reads chunks without allocating one each). The result is that buffer.
func (s *Store) ReadChunkTo(d Digest, i int, alloc func(n int) []byte) ([]byte, error) {
	m, err := s.Manifest(d)
	if err != nil {
		return nil, err
	}
	if i < 0 || i >= m.NumChunks() {
		return nil, fmt.Errorf("%w: chunk %d of %s (%d chunks)", ErrChunkIndex, i, d, m.NumChunks())
	}
	f, err := s.Open(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := alloc(m.ChunkLen(i))
	if err := readChunkAt(f, m, i, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

func readChunk(r io.ReaderAt, m Manifest, i int) ([]byte, error) {
	buf := make([]byte, m.ChunkLen(i))
	if err := readChunkAt(r, m, i, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// readChunkAt reads chunk i of m from r into buf, the chunk's length.
func readChunkAt(r io.ReaderAt, m Manifest, i int, buf []byte) error {
	if _, err := r.ReadAt(buf, int64(i)*int64(m.ChunkSize)); err != nil {
		return fmt.Errorf("store: read chunk %d of %s: %w", i, m.Digest, err)
	}
	return nil
}

// List returns the complete objects, sorted by digest, each with Held = NumChunks(). Cost: one
// directory read and one manifest read per object not cached.
func (s *Store) List() ([]Info, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, objectsDir))
	if err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	var out []Info
	for _, e := range ents {
		d, err := ParseDigest(digestPrefix + e.Name())
		if err != nil || !e.Type().IsRegular() {
			continue // manifests, temporary files
		}
		m, err := s.Manifest(d)
		if err != nil {
			continue // removed meanwhile, or a manifest we cannot trust: not visible
		}
		out = append(out, Info{Manifest: m, Held: m.NumChunks(), Complete: true})
	}
	return out, nil
}

// Partials returns the objects in progress, sorted by digest: those being received now, and
// those a previous run left staged (Begin resumes them). For the latter Held counts the chunks
// recorded as verified, which Begin re-verifies. Cost: one directory read, and one manifest
// and chunk-record read per staged object not active.
func (s *Store) Partials() ([]Info, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, stagingDir))
	if err != nil {
		return nil, fmt.Errorf("store: list partials: %w", err)
	}
	var out []Info
	for _, e := range ents {
		h, ok := strings.CutSuffix(e.Name(), manifestExt)
		if !ok {
			continue
		}
		d, err := ParseDigest(digestPrefix + h)
		if err != nil {
			continue
		}
		s.mu.Lock()
		p := s.partials[d]
		s.mu.Unlock()
		if p != nil && p.isReady() {
			if p.loadErr == nil && p.state.Load() == stateActive {
				out = append(out, Info{Manifest: p.m, Held: p.heldCount()})
			}
			continue
		}
		m, err := s.readStagedManifest(d)
		if err != nil {
			continue
		}
		rec, _ := readHeld(s.stagingPath(d, heldExt), m.NumChunks())
		out = append(out, Info{Manifest: m, Held: rec.Count()})
	}
	return out, nil
}

func (s *Store) readStagedManifest(d Digest) (Manifest, error) {
	b, err := os.ReadFile(s.stagingPath(d, manifestExt))
	if err != nil {
		return Manifest{}, err
	}
	m, err := UnmarshalManifest(b)
	if err != nil {
		return Manifest{}, err
	}
	if m.Digest != d {
		return Manifest{}, fmt.Errorf("%w: staged manifest of %s names %s", ErrBadManifest, d, m.Digest)
	}
	return m, nil
}

// Stat describes object d: complete, or in progress (active, or staged by a previous run).
// Errors wrap ErrNotFound when the store knows nothing of d.
func (s *Store) Stat(d Digest) (Info, error) {
	if m, err := s.Manifest(d); err == nil {
		return Info{Manifest: m, Held: m.NumChunks(), Complete: true}, nil
	}
	ps, err := s.Partials()
	if err != nil {
		return Info{}, err
	}
	for _, in := range ps {
		if in.Manifest.Digest == d {
			return in, nil
		}
	}
	return Info{}, fmt.Errorf("%w: %s", ErrNotFound, d)
}

// Put stores the object read from r (to its end), cut in chunks of chunkSize bytes, and
// returns its manifest: the source side of a push. It streams through a temporary file
// (memory O(chunkSize)), fsyncs it and renames it into place, so the object is visible only
// once complete. If the object is already stored, its bytes are not written again; its stored
// manifest is replaced when chunkSize differs (the bytes are the same). On any error nothing
// becomes visible. With a Sealer (WithSealer) the chunks are hashed with BLAKE3 and the
// manifest sealed; otherwise with SHA-256 and its chain. Cost: O(size) I/O, a SHA-256 pass
// and a chunk hash pass (on another core for chunks of 64 KiB or more), in one read; the
// writes overlap the hashing, a block behind, and go to the device with O_DIRECT where the
// file system allows it (as received chunks do: see the package doc), so the closing fsync
// has little left to write. Memory: three blocks of whole chunks, 4 MiB at least each. The
// price of direct writes: the object is not in the page cache afterwards, and a push reads
// its chunks from the disk.
func (s *Store) Put(r io.Reader, chunkSize int) (Manifest, error) {
	if err := s.checkOpen(); err != nil {
		return Manifest{}, err
	}
	if chunkSize < 1 || chunkSize > MaxChunkSize {
		return Manifest{}, fmt.Errorf("%w: chunk size %d outside [1, %d]", ErrBadManifest, chunkSize, MaxChunkSize)
	}
	tmp := filepath.Join(s.dir, tmpDir, randomName("put-"))
	f, err := s.openFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return Manifest{}, fmt.Errorf("store: put: %w", err)
	}
	defer os.Remove(tmp) // after the rename, a no-op
	// A file of known size gets its blocks allocated up front (see preallocate); the file is
	// cut to what was read in the end, should it have changed meanwhile.
	sized, known := r.(interface{ Stat() (fs.FileInfo, error) })
	if known {
		if fi, err := sized.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
			_ = preallocate(f, fi.Size())
		}
	}
	alg := SHA256
	if s.seal {
		alg = BLAKE3
	}
	out := objectFile{f: f}
	if !s.hooked {
		out.direct = openDirect(tmp)
	}
	m, err := hashStream(r, chunkSize, alg, &out)
	if out.direct != nil {
		if cerr := out.direct.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil && s.seal {
		var sl Seal
		if sl, err = s.sealer.Seal(m.SealPayload()); err == nil {
			m.Seal = &sl
		}
	}
	if err == nil && known {
		err = f.Truncate(m.Size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Manifest{}, fmt.Errorf("store: put: %w", err)
	}
	if err := s.install(m, tmp); err != nil {
		return Manifest{}, fmt.Errorf("store: put: %w", err)
	}
	return m, nil
}

// install makes the verified, synced file at path the object m: the manifest is written first,
// then the data renamed into objects/, then the directory synced, so the object is visible
// only with its manifest. If the object is already there, path is left alone and only a
// manifest of another layout replaces the stored one (the bytes are the same).
func (s *Store) install(m Manifest, path string) error {
	b, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	if s.Has(m.Digest) {
		if old, err := s.Manifest(m.Digest); err == nil && old.SameLayout(m) {
			return nil
		}
		if err := s.writeFileAtomic(s.objectPath(m.Digest)+manifestExt, b); err != nil {
			return err
		}
	} else {
		if err := s.writeFileAtomic(s.objectPath(m.Digest)+manifestExt, b); err != nil {
			return err
		}
		if err := os.Rename(path, s.objectPath(m.Digest)); err != nil {
			return err
		}
		if err := syncDir(filepath.Join(s.dir, objectsDir)); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.manifests[m.Digest] = m
	s.mu.Unlock()
	return nil
}

// Import puts the file at path in the store (see Put). With WithPathRoot, path must be inside
// the root (ErrPathEscape otherwise).
func (s *Store) Import(path string, chunkSize int) (Manifest, error) {
	p, err := s.checkPath(path)
	if err != nil {
		return Manifest{}, err
	}
	f, err := os.Open(p)
	if err != nil {
		return Manifest{}, fmt.Errorf("store: import: %w", err)
	}
	defer f.Close()
	return s.Put(f, chunkSize)
}

// Export copies the complete object d to path, atomically (a temporary file in path's
// directory, fsync, rename), re-verifying its digest on the way (ErrDigestMismatch if the
// disk corrupted it; path is then left untouched). path must not be inside the store's data
// directory, and with WithPathRoot must be inside the root (ErrPathEscape otherwise). Errors
// wrap ErrNotFound for an unknown object. Cost: O(size) I/O and one SHA-256 pass.
func (s *Store) Export(d Digest, path string) error {
	p, err := s.checkPath(path)
	if err != nil {
		return err
	}
	return s.ExportTrusted(d, p)
}

// ExportTrusted is Export without the path rules, for a path the agent's own configuration
// names (a channel directory outside the data directory), never one from a request: the
// complete object d is copied to path through a temporary file in its directory, verified,
// fsynced and renamed over it. Cost: O(size) I/O and one SHA-256 pass.
func (s *Store) ExportTrusted(d Digest, path string) error {
	p := path
	src, err := s.Open(d)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := filepath.Join(filepath.Dir(p), randomName(".treecast-export-"))
	f, err := s.openFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("store: export %s to %s: %w", d, path, err)
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), src)
	if err == nil && Digest(h.Sum(nil)) != d {
		err = fmt.Errorf("%w: stored %s reads back as sha256:%x", ErrDigestMismatch, d, h.Sum(nil))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("store: export %s to %s: %w", d, path, err)
	}
	return syncDir(filepath.Dir(p))
}

// checkPath applies the path rules of Import and Export.
func (s *Store) checkPath(path string) (string, error) {
	p, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("store: path %q: %w", path, err)
	}
	if s.pathRoot != "" {
		if p, err = Within(s.pathRoot, path); err != nil {
			return "", err
		}
	}
	realDir, err := filepath.EvalSymlinks(s.dir)
	if err != nil {
		realDir = s.dir
	}
	if rp, err := resolveExisting(p); err == nil && (inside(s.dir, p) || inside(realDir, rp)) {
		return "", fmt.Errorf("%w: %q is inside the store's data directory %q", ErrPathEscape, path, s.dir)
	}
	return p, nil
}

// Remove deletes the complete object d (its data, then its manifest). Readers that opened it
// keep reading. Errors wrap ErrNotFound.
func (s *Store) Remove(d Digest) error {
	err := os.Remove(s.objectPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNotFound, d)
	}
	if err != nil {
		return fmt.Errorf("store: remove %s: %w", d, err)
	}
	s.mu.Lock()
	delete(s.manifests, d)
	s.mu.Unlock()
	_ = os.Remove(s.objectPath(d) + manifestExt)
	return syncDir(filepath.Join(s.dir, objectsDir))
}

func (s *Store) checkOpen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%w: store %s", ErrClosed, s.dir)
	}
	return nil
}
