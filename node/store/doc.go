// Package store is treecast's content-addressed object store: the chunks a node receives,
// verified, written into place, and visible only once the whole object is.
//
// # Names and manifests
//
// An object is named by its Digest, the SHA-256 of its bytes ("sha256:<64 hex>";
// ParseDigest is strict, so a digest from the network can only ever name a file of the store,
// never a path). A Manifest gives the object's size, its chunk size and the SHA-256 (or
// BLAKE3, see below) of every chunk (and optionally Reed-Solomon parity parameters and parity
// chunk hashes, which the agent verifies and forwards; the store keeps data chunks only).
// NewManifest hashes a reader into a manifest in O(chunk size) memory, with the SHA-256
// chain described below. A manifest from the network is converted with ManifestFromProto
// (or UnmarshalManifest), which runs Validate: a manifest that lies about sizes (chunk count
// against size, absurd sizes or chunk sizes, a chain of the wrong length) fails with
// ErrBadManifest before anything is allocated or written.
//
// # Hashing each byte once: the SHA-256 chain
//
// A content address must hold: an object visible under a digest hashes to that digest. The
// obvious receiver hashes every chunk against the manifest and then the whole object again,
// two SHA-256 passes per byte. A manifest from NewManifest (chunk size a multiple of 64 bytes,
// as every size the planner picks) also carries Chain: SHA-256's 32-byte internal state
// after each chunk but the last, which the source gets for free while it hashes the whole.
// SHA-256 is iterative: its state after chunk i is a function of the state after chunk i-1 and
// chunk i's bytes only. So VerifyChunk checks chunk i by resuming SHA-256 from Chain[i-1]
// (the standard initial state for chunk 0), absorbing the chunk and comparing with Chain[i],
// and the last chunk by finishing the hash and comparing with the digest. Each byte is hashed
// once, chunks still verify in any order and on any goroutine, and when every chunk has
// verified the object provably hashes to its digest: a lying manifest (a chain or a digest
// that does not belong to the chunks) fails at a chunk, before anything is written, and is
// fetched again as any corrupt chunk. Forging a chunk that passes is finding a SHA-256 second
// preimage, the same assumption the digest itself rests on. Such a manifest is Bound, and
// Commit then hashes nothing; a manifest without a chain (an odd chunk size, or an older
// sender) is verified chunk by chunk and as a whole at Commit, as before. Users keep plain
// SHA-256 digests: `treecast get` still checks the bytes it writes against the digest, and
// Export re-verifies on its way out. The chain costs 32 bytes per chunk in the manifest.
//
// # BLAKE3 and seals: half the hashing, for trust in a node
//
// BLAKE3 hashes about twice as fast as SHA-256 on a core with AVX2 (3.1 against 1.6 GB/s
// on a 4 MiB chunk, one core of an AMD EPYC, SHA-256 on its SHA extensions), but a BLAKE3
// chunk hash says nothing of the SHA-256 digest. A store given a Sealer (WithSealer: an agent with TLS, whose Sealer
// signs with the node's key and trusts the node certificates of the cluster's CA) cuts
// objects with BLAKE3 chunk hashes (Manifest.Alg) and seals the manifest: a signature over
// its layout (SealPayload) by the node that hashed the object with both. A receiving store
// whose Sealer verifies the seal treats the manifest as Bound: each chunk is verified with
// BLAKE3 alone and Commit hashes nothing. The trade is trust: such an object hashes to its
// digest on the word of a node of the cluster, not by proof; a relay that rewrites the
// manifest breaks the seal, and a manifest whose seal is missing or does not verify is still
// received, with the whole SHA-256 at Commit (ErrDigestMismatch if the bytes are not the
// digest's). `treecast get`, Export and ExportTrusted hash every byte they write against the
// digest whatever the manifest, so a lying node can make a copy unreadable, never make it
// read as another object. WithSealVerifier accepts seals but keeps SHA-256 for the objects
// the store cuts itself (the agent's SHA256Chunks).
//
// # Receiving an object
//
//  1. Begin(m) returns a Partial: a staging file of the object's size (its blocks allocated
//     up front where the file system can), a record of the chunks held, and the manifest,
//     under staging/. If the object is already being received the handle shares that
//     Partial; if a previous run left it staged, Begin resumes it and Held tells what is
//     already there (each recorded chunk is re-verified); if the object is complete, every
//     chunk is held.
//  2. WriteChunk(i, data) checks the chunk's length and SHA-256 against the manifest and only
//     then writes it at offset i*ChunkSize and records it (ErrChunkCorrupt otherwise, nothing
//     written). Chunks may come in any order, from any number of goroutines.
//  3. Commit, once every chunk is held: fsync, verify the whole digest unless the manifest
//     is Bound (the chunks proved it), write the manifest, rename the data into objects/,
//     fsync the directory. Only now do Has, List, Open, ReadChunk and Export see the object.
//     An object whose chunks verify but whose whole digest does not (a lying manifest
//     without a chain) is discarded with ErrDigestMismatch.
//  4. Close releases the handle and keeps what is held for a later resume; Abort discards it.
//
// Chunk writes whose buffer, offset and length are 4 KiB-aligned (every chunk but the last,
// for the power-of-two chunk sizes the planner picks, from the receiver's pooled buffers) go
// to the device with O_DIRECT where the file system allows it: no copy into the page cache
// and no page cache to allocate, which in a virtual machine costs about as much CPU as
// hashing. Other writes, and every read, go through the page cache. The price: a received
// object is not in the page cache, so its first read goes to the disk.
//
// A write error (a full disk) fails the WriteChunk or Commit that met it with the wrapped
// error (errors.Is(err, syscall.ENOSPC)); the chunk is not counted, nothing becomes visible,
// and the partial object can be resumed or aborted.
//
// # Sending an object
//
// Put (or Import, from a file) streams an object into the store through a temporary file and
// returns its manifest; ReadChunk and Open read it back; Export copies it out atomically. Put
// reads and hashes the object in blocks of whole chunks (4 MiB at least) while a goroutine of
// its own writes the block before, aligned blocks with O_DIRECT as a receiver's chunks: the
// disk's time overlaps the hashing, and the source spends no CPU filling the page cache (on a
// 2-core VM, BenchmarkPutFile's 1 GiB Put took about 1.1 CPU seconds less). As for a received
// object, the first reads of its chunks (the push that follows) go to the disk.
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
