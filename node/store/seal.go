package store

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/zeebo/blake3"
)

// HashAlg names the hash of a manifest's chunks (Manifest.Chunks and Parity.Hashes).
type HashAlg uint8

const (
	// SHA256 chunk hashes, with the SHA-256 chain that binds them to the digest (see Bound).
	SHA256 HashAlg = 0
	// BLAKE3 chunk hashes (256-bit output): about twice SHA-256's speed on a core with AVX2,
	// but they say nothing of the SHA-256 digest: a receiver takes that binding from the
	// manifest's Seal, or hashes the whole object at Commit.
	BLAKE3 HashAlg = 1
)

// String returns "sha256" or "blake3".
func (a HashAlg) String() string {
	switch a {
	case SHA256:
		return "sha256"
	case BLAKE3:
		return "blake3"
	}
	return fmt.Sprintf("hash(%d)", uint8(a))
}

// Sum returns the hash of a chunk's bytes under a. Cost: O(len(b)).
func (a HashAlg) Sum(b []byte) Hash {
	if a == BLAKE3 {
		return blake3.Sum256(b)
	}
	return sha256.Sum256(b)
}

// Seal is a node's signature over a manifest's layout (SealPayload): its word that the chunk
// hashes are those of the object the digest names. Only the node that hashed the object
// (Put) can make it; any receiver whose Sealer trusts the signer's certificate can check it.
type Seal struct {
	// Cert is the DER of the signer's certificate.
	Cert []byte
	// Sig is the signature over SealPayload.
	Sig []byte
}

// Sealer signs the manifests a store makes and checks the seals of those it receives: a
// node's TLS identity. WithSealer gives a store one.
type Sealer interface {
	// Seal signs payload.
	Seal(payload []byte) (Seal, error)
	// VerifySeal reports whether s is a valid signature over payload by a node the
	// cluster trusts (nil) or why not.
	VerifySeal(payload []byte, s Seal) error
}

// WithSealer makes the store's Put and Import cut objects with BLAKE3 chunk hashes and seal
// their manifests with sl, and makes Begin accept a BLAKE3 manifest whose seal sl verifies as
// Bound: its chunks, each verified against its BLAKE3 hash, then make the object, and Commit
// hashes nothing more. A BLAKE3 manifest without a seal, or whose seal does not verify, is
// received all the same, and Commit proves its digest by hashing the whole object. Without a
// Sealer, Put cuts SHA-256 manifests with a chain, which need no trust in anyone.
//
// The trade: with a seal, a receiver trusts the sealing node (a holder of a certificate of
// the cluster's CA) that the BLAKE3 hashes belong to the SHA-256 digest; a relay cannot
// forge it. Every byte a user takes out is still checked against the digest: Export and
// ExportTrusted (a channel's directory) and `treecast get` hash what they write.
func WithSealer(sl Sealer) Option { return func(s *Store) { s.sealer, s.seal = sl, true } }

// WithSealVerifier makes Begin accept sealed BLAKE3 manifests as WithSealer does, while Put
// and Import keep cutting SHA-256 manifests with a chain.
func WithSealVerifier(sl Sealer) Option { return func(s *Store) { s.sealer, s.seal = sl, false } }

// maxSealPart bounds a seal's certificate and signature from the network, in bytes each.
const maxSealPart = 16 << 10

// sealMagic starts every SealPayload, so that a signature over it means nothing else.
const sealMagic = "treecast manifest seal v1\x00"

// SealPayload returns the bytes a Seal signs: the digest, size, chunk size, hash algorithm
// and every data chunk hash, in a fixed binary layout. Parity is not covered: parity chunks
// only ever rebuild data chunks, which are verified against the sealed hashes. Cost:
// O(NumChunks()).
func (m Manifest) SealPayload() []byte {
	b := make([]byte, 0, len(sealMagic)+len(m.Digest)+8+4+1+8+len(m.Chunks)*len(Hash{}))
	b = append(b, sealMagic...)
	b = append(b, m.Digest[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Size))
	b = binary.BigEndian.AppendUint32(b, uint32(m.ChunkSize))
	b = append(b, byte(m.Alg))
	b = binary.BigEndian.AppendUint64(b, uint64(len(m.Chunks)))
	for i := range m.Chunks {
		b = append(b, m.Chunks[i][:]...)
	}
	return b
}

// checkSeal marks m sealed when its seal verifies with sl. Cost: one signature check and a
// SHA-256 of 32 bytes per chunk, once per object received.
func (m *Manifest) checkSeal(sl Sealer) {
	m.sealed = false
	if m.Alg != BLAKE3 || m.Seal == nil || sl == nil {
		return
	}
	m.sealed = sl.VerifySeal(m.SealPayload(), *m.Seal) == nil
}
