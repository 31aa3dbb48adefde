package store

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Hash is a SHA-256 sum: of a chunk, or of a whole object.
type Hash = [sha256.Size]byte

// Digest names an object: the SHA-256 of its bytes. Its text form is "sha256:<64 lower-case
// hex digits>"; the zero Digest is not a valid object name.
type Digest [sha256.Size]byte

const digestPrefix = "sha256:"

// DigestOf returns the digest of b. Cost: O(len(b)).
func DigestOf(b []byte) Digest { return Digest(sha256.Sum256(b)) }

// ParseDigest parses the text form of a digest. It is strict: exactly the "sha256:" prefix and
// 64 lower-case hex digits, nothing else (so a digest taken from the network can name a file
// and never a path). Errors wrap ErrBadDigest and quote the input. Cost: O(len(s)).
func ParseDigest(s string) (Digest, error) {
	var d Digest
	if len(s) != len(digestPrefix)+2*sha256.Size || s[:len(digestPrefix)] != digestPrefix {
		return d, fmt.Errorf("%w: %.80q is not sha256:<64 lower-case hex digits>", ErrBadDigest, s)
	}
	h := s[len(digestPrefix):]
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return d, fmt.Errorf("%w: %q has %q at position %d; want lower-case hex", ErrBadDigest, s, c, len(digestPrefix)+i)
		}
	}
	if _, err := hex.Decode(d[:], []byte(h)); err != nil {
		return d, fmt.Errorf("%w: %q: %v", ErrBadDigest, s, err)
	}
	return d, nil
}

// String returns "sha256:<hex>".
func (d Digest) String() string { return digestPrefix + d.Hex() }

// Hex returns the 64 hex digits of d: the object's file name in the store.
func (d Digest) Hex() string { return hex.EncodeToString(d[:]) }

// IsZero reports whether d is the zero Digest (no object).
func (d Digest) IsZero() bool { return d == Digest{} }

// MarshalText implements encoding.TextMarshaler (the "sha256:<hex>" form).
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseDigest's rules.
func (d *Digest) UnmarshalText(b []byte) error {
	p, err := ParseDigest(string(b))
	if err != nil {
		return err
	}
	*d = p
	return nil
}
