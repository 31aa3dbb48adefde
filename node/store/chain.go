package store

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"hash"
)

// SHA-256 chaining values (see Manifest.Chain). SHA-256 absorbs its input in 64-byte blocks,
// carrying a 32-byte state from block to block; after a prefix whose length is a multiple of
// 64 bytes the state is all there is to know about the prefix. crypto/sha256 saves and
// restores that state with encoding.BinaryMarshaler: "sha\x03", the eight state words
// (big-endian), the 64-byte block buffer and the length absorbed (big-endian uint64). A
// chaining value is the eight words; chainHash rebuilds a hash from one and the length.
const (
	chainMagic      = "sha\x03"
	chainMarshalLen = len(chainMagic) + sha256.Size + sha256.BlockSize + 8
)

// chainSupported tells whether this crypto/sha256 saves its state in the layout above
// (checked once, by a round trip). When it does not, NewManifest computes no chaining values
// and chained manifests are verified chunk by chunk against their SHA-256 sums and, at
// Commit, as a whole.
var chainSupported = checkChain()

func checkChain() bool {
	var blocks [3 * sha256.BlockSize]byte
	for i := range blocks {
		blocks[i] = byte(i*7 + 1)
	}
	h := sha256.New()
	h.Write(blocks[:2*sha256.BlockSize])
	cv, ok := chainValue(h)
	if !ok {
		return false
	}
	r, ok := chainHash(cv, 2*sha256.BlockSize)
	if !ok {
		return false
	}
	r.Write(blocks[2*sha256.BlockSize:])
	return bytes.Equal(r.Sum(nil), func() []byte { s := sha256.Sum256(blocks[:]); return s[:] }())
}

// chainValue returns the chaining value of h, which must have absorbed a multiple of 64
// bytes (false otherwise, or when the state's layout is not the one expected).
func chainValue(h hash.Hash) (Hash, bool) {
	m, ok := h.(encoding.BinaryMarshaler)
	if !ok {
		return Hash{}, false
	}
	b, err := m.MarshalBinary()
	if err != nil || len(b) != chainMarshalLen || string(b[:len(chainMagic)]) != chainMagic {
		return Hash{}, false
	}
	if binary.BigEndian.Uint64(b[chainMarshalLen-8:])%sha256.BlockSize != 0 {
		return Hash{}, false
	}
	return Hash(b[len(chainMagic) : len(chainMagic)+sha256.Size]), true
}

// chainHash returns a SHA-256 hash in the state cv after absorbing length bytes (a multiple
// of 64), ready for the bytes that follow.
func chainHash(cv Hash, length uint64) (hash.Hash, bool) {
	var b [chainMarshalLen]byte
	copy(b[:], chainMagic)
	copy(b[len(chainMagic):], cv[:])
	binary.BigEndian.PutUint64(b[chainMarshalLen-8:], length)
	h := sha256.New()
	u, ok := h.(encoding.BinaryUnmarshaler)
	if !ok || u.UnmarshalBinary(b[:]) != nil {
		return nil, false
	}
	return h, true
}
