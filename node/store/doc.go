// Package store is treecast's content-addressed object store: the chunks a node receives,
// verified, written into place, and visible only once the whole object is.
//
// # Names and manifests
//
// An object is named by its Digest, the SHA-256 of its bytes ("sha256:<64 hex>";
// ParseDigest is strict, so a digest from the network can only ever name a file of the store,
// never a path). A Manifest gives the object's size, its chunk size and the SHA-256 of every
// chunk (and optionally Reed-Solomon parity parameters and parity chunk hashes, which the
// agent verifies and forwards; the store keeps data chunks only). NewManifest hashes a
// reader into a manifest in O(chunk size) memory. A manifest from the network is converted
// with ManifestFromProto (or UnmarshalManifest), which runs Validate: a manifest that lies
// about sizes (chunk count against size, absurd sizes or chunk sizes) fails with
// ErrBadManifest before anything is allocated or written.
//
// # Receiving an object
//
//  1. Begin(m) returns a Partial: a sparse staging file of the object's size, a record of the
//     chunks held, and the manifest, under staging/. If the object is already being received
//     the handle shares that Partial; if a previous run left it staged, Begin resumes it and
//     Held tells what is already there (each recorded chunk is re-verified); if the object is
//     complete, every chunk is held.
//  2. WriteChunk(i, data) checks the chunk's length and SHA-256 against the manifest and only
//     then writes it at offset i*ChunkSize and records it (ErrChunkCorrupt otherwise, nothing
//     written). Chunks may come in any order, from any number of goroutines.
//  3. Commit, once every chunk is held: fsync, read back and verify the whole digest, write
//     the manifest, rename the data into objects/, fsync the directory. Only now do Has, List,
//     Open, ReadChunk and Export see the object. An object whose chunks verify but whose whole
//     digest does not (a lying manifest) is discarded with ErrDigestMismatch.
//  4. Close releases the handle and keeps what is held for a later resume; Abort discards it.
//
// A write error (a full disk) fails the WriteChunk or Commit that met it with the wrapped
// error (errors.Is(err, syscall.ENOSPC)); the chunk is not counted, nothing becomes visible,
// and the partial object can be resumed or aborted.
//
// # Sending an object
//
// Put (or Import, from a file) streams an object into the store through a temporary file and
// returns its manifest; ReadChunk and Open read it back; Export copies it out atomically.
// WithPathRoot confines Import and Export to one directory (ErrPathEscape otherwise), and
// neither may touch the store's own directory.
//
// # On disk
//
//	DIR/objects/<hex>            complete object bytes (visible)
//	DIR/objects/<hex>.manifest   its manifest (written before the bytes are renamed in)
//	DIR/staging/<hex>.data       object in progress, chunks at their offsets
//	DIR/staging/<hex>.held       record of verified chunks (little-endian uint32 indexes)
//	DIR/staging/<hex>.manifest   its manifest (written last: its presence means the others exist)
//	DIR/tmp/                     Put's temporary files, removed by Open
//	DIR/tags.json                tags NAME:VERSION -> digest (SetTag, Tags, Untag)
//
// # Tags, quota and repair
//
// A tag (ParseTag: NAME:VERSION) names an object; ParseRef tells a digest from a tag, and a
// malformed "sha256:..." is a digest error, never a tag. With WithQuota, Begin evicts complete
// objects, least recently used first (use is the manifest file's mtime, refreshed by Open at
// most once a minute), skipping tagged objects and those SetEvictPolicy pins. Demote takes a
// complete object whose chunk went bad back to staging with its other chunks held, so a fetch
// of the bad chunks repairs it; RemoveStaged discards a staged object.
//
// Manifests are stored in the protocol's encoding (treecast.v1.Manifest). Errors wrap the
// package's sentinel errors ("store: ...") and name the digest, chunk or path at fault.
package store
