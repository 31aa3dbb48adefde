package transfer

import (
	"math/bits"
	"sync"
)

// Chunk buffers: a receiver assembles each chunk that arrives in several frames in a buffer
// of the chunk's size. Buffers whose chunk nobody kept after it was verified and written (a
// leaf's chunks, a relay's chunks cut through to every child) go back to a pool, so that a
// push allocates a few chunk buffers per stream instead of one per chunk. The pool is tiered
// by powers of two (chunk sizes are powers of two but the last); sync.Pool lets the GC
// reclaim idle buffers, so memory stays flat in the object size and the number of pushes.

const (
	minBufShift = 16 // 64 KiB: smaller chunks arrive in one frame and need no buffer
	maxBufShift = 26 // 64 MiB, the largest chunk
)

var chunkBufs [maxBufShift - minBufShift + 1]sync.Pool

// bufTier is the pool tier of a buffer of capacity c, or -1.
func bufTier(c int) int {
	if c <= 1<<minBufShift || c > 1<<maxBufShift {
		return -1
	}
	return bits.Len(uint(c-1)) - minBufShift
}

// getChunkBuf returns an empty buffer with room for n bytes (its old bytes are not cleared:
// the caller appends). Cost: O(1), or one allocation when the tier's pool is empty.
func getChunkBuf(n int) []byte {
	t := bufTier(n)
	if t < 0 {
		return make([]byte, 0, n)
	}
	if b, ok := chunkBufs[t].Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, 1<<(t+minBufShift))
}

// putChunkBuf returns a buffer from getChunkBuf to the pool. The caller must hold no other
// reference to it, nor have handed one out.
func putChunkBuf(b []byte) {
	c := cap(b)
	t := bufTier(c)
	if t < 0 || c != 1<<(t+minBufShift) {
		return
	}
	b = b[:0]
	chunkBufs[t].Put(&b)
}
