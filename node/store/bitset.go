package store

import (
	"fmt"
	"math/bits"
)

// Bitset is a fixed-length set of chunk indexes: which chunks a node holds. The zero Bitset
// has length 0. A Bitset is a value: Clone before sharing one that is still being changed.
type Bitset struct {
	n int
	w []uint64
}

// NewBitset returns an empty Bitset of n bits. Cost: O(n/64). It panics if n < 0.
func NewBitset(n int) Bitset {
	if n < 0 {
		panic("store: negative bitset length")
	}
	return Bitset{n: n, w: make([]uint64, (n+63)/64)}
}

// Len returns the number of bits (set or not).
func (b Bitset) Len() int { return b.n }

// Has reports whether bit i is set; false for i outside [0, Len()).
func (b Bitset) Has(i int) bool {
	return i >= 0 && i < b.n && b.w[i/64]&(1<<(uint(i)%64)) != 0
}

// Set sets bit i. It panics if i is outside [0, Len()).
func (b *Bitset) Set(i int) {
	if i < 0 || i >= b.n {
		panic(fmt.Sprintf("store: bit %d outside bitset of %d", i, b.n))
	}
	b.w[i/64] |= 1 << (uint(i) % 64)
}

// Count returns the number of set bits. Cost: O(Len()/64).
func (b Bitset) Count() int {
	c := 0
	for _, w := range b.w {
		c += bits.OnesCount64(w)
	}
	return c
}

// Full reports whether every bit is set. Cost: O(Len()/64).
func (b Bitset) Full() bool { return b.Count() == b.n }

// Indexes returns the set bits in increasing order. Cost: O(Len()/64 + Count()).
func (b Bitset) Indexes() []int {
	out := make([]int, 0, b.Count())
	for wi, w := range b.w {
		for w != 0 {
			out = append(out, wi*64+bits.TrailingZeros64(w))
			w &= w - 1
		}
	}
	return out
}

// Clone returns an independent copy of b. Cost: O(Len()/64).
func (b Bitset) Clone() Bitset {
	return Bitset{n: b.n, w: append([]uint64(nil), b.w...)}
}

// Bytes encodes b as the protocol's chunk bitmap: bit i in bit i%8 of byte i/8, least
// significant bit first, ceil(Len()/8) bytes. Cost: O(Len()/8).
func (b Bitset) Bytes() []byte {
	out := make([]byte, (b.n+7)/8)
	for i := range out {
		out[i] = byte(b.w[i/8] >> (8 * (uint(i) % 8)))
	}
	return out
}

// BitsetFromBytes decodes a chunk bitmap of n bits (as Bytes encodes it) received from the
// network. It accepts a bitmap shorter than ceil(n/8) bytes (missing bytes are zero) and
// refuses, with ErrBadBitmap, a longer one or one with bits set at or past n. Cost: O(n/8).
func BitsetFromBytes(p []byte, n int) (Bitset, error) {
	if n < 0 {
		return Bitset{}, fmt.Errorf("%w: negative length %d", ErrBadBitmap, n)
	}
	if len(p) > (n+7)/8 {
		return Bitset{}, fmt.Errorf("%w: %d bytes for %d chunks (at most %d)", ErrBadBitmap, len(p), n, (n+7)/8)
	}
	b := NewBitset(n)
	for i, c := range p {
		if c == 0 {
			continue
		}
		if hi := i*8 + 7 - bits.LeadingZeros8(c); hi >= n {
			return Bitset{}, fmt.Errorf("%w: bit %d set, past the %d chunks", ErrBadBitmap, hi, n)
		}
		b.w[i/8] |= uint64(c) << (8 * (uint(i) % 8))
	}
	return b, nil
}
