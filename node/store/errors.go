package store

import "errors"

// Sentinel errors. Every error the store returns wraps one of these (or an I/O error from
// the file system, such as syscall.ENOSPC) with %w and names the digest, chunk, path or value
// at fault; compare with errors.Is.
var (
	// ErrBadDigest: a digest is not "sha256:" followed by 64 lower-case hex digits.
	ErrBadDigest = errors.New("store: bad digest")
	// ErrBadManifest: a manifest contradicts itself or claims absurd sizes.
	ErrBadManifest = errors.New("store: bad manifest")
	// ErrBadBitmap: a chunk bitmap has the wrong length or bits past the chunk count.
	ErrBadBitmap = errors.New("store: bad chunk bitmap")
	// ErrChunkIndex: a chunk index is outside the manifest's chunks.
	ErrChunkIndex = errors.New("store: chunk index out of range")
	// ErrChunkCorrupt: a chunk's length or SHA-256 differs from the manifest's; nothing was
	// written.
	ErrChunkCorrupt = errors.New("store: chunk corrupt")
	// ErrChunkMissing: a chunk was asked for that the partial object does not hold.
	ErrChunkMissing = errors.New("store: chunk not held")
	// ErrNotFound: no complete object has this digest.
	ErrNotFound = errors.New("store: object not found")
	// ErrIncomplete: Commit was called before every chunk was held.
	ErrIncomplete = errors.New("store: object incomplete")
	// ErrDigestMismatch: the bytes hash to another digest than the manifest's (the manifest
	// lied, or the disk corrupted the data); the partial object was discarded.
	ErrDigestMismatch = errors.New("store: object digest mismatch")
	// ErrManifestConflict: a transfer of the same object with another chunk layout is in
	// progress.
	ErrManifestConflict = errors.New("store: conflicting manifest for object in progress")
	// ErrAborted: the partial object was aborted (by this or another handle).
	ErrAborted = errors.New("store: partial object aborted")
	// ErrClosed: the Partial handle or the Store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrPathEscape: a path lies outside the directory it must stay in, or inside the
	// store's own data directory.
	ErrPathEscape = errors.New("store: path escapes its directory")
	// ErrDiskFull: a write met a full disk or an exhausted quota; users of the store wrap it
	// with the file system's error (syscall.ENOSPC, EDQUOT).
	ErrDiskFull = errors.New("store: disk full")
)
