package transfer

import (
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/treecast/treecast/node/internal/hugemem"
)

// Buffers of the data path. A push moves every byte through a few buffers per hop: the frame a
// chunk arrived in, the chunk it is assembled into, the chunk a source reads from its store.
// Allocating them fresh costs far more than the copies themselves (the runtime clears each new
// buffer, the kernel faults its pages in, and the garbage collector runs every few tens of
// megabytes), so they come from a pool and are counted: whoever keeps a buffer's bytes beyond
// a call holds a reference, and the buffer goes back to the pool when the last one is dropped.
//
// The pool is tiered by powers of two (4 KiB to 64 MiB) and keeps at most [PoolIdle] bytes
// of idle buffers in all; beyond that a freed buffer is left to the garbage collector. Unlike
// a sync.Pool it is not emptied by every garbage collection, which during a push runs often
// enough to empty it between two chunks. Memory therefore stays flat in the object size: the
// buffers in use are bounded by the streams' queues, the idle ones by PoolIdle.
//
// Buffers of 2 MiB and more (the chunks of large objects) are mapped apart on Linux, in
// transparent huge pages where the system grants them (madvise), and unmapped when the pool
// drops them: their first writes fault in a huge page at a time instead of 512 small ones,
// which in a virtual machine is most of what an agent's first push of a large object paid for
// its buffers (`treecast bench relay --size 256MiB`: the relay's CPU per GiB about a third
// lower). Buffers from 256 KiB to 1 MiB (the push wire's TLS buffers, the chunks of smaller
// objects) are carved out of huge-page slabs, at most 16 MiB of them, which the pool keeps
// for good. Both are outside the Go heap: PoolMapped counts them.

// Buf is a pooled buffer with a reference count: B holds the bytes. NewBuf returns it with
// one reference; Ref adds one, Free drops one, and the last Free returns it to the pool, after
// which nobody may touch B. A nil *Buf is valid (Ref and Free do nothing): the bytes of a
// frame without a Buf belong to the garbage collector. Freeing a buffer more often than it
// was referenced panics: its bytes could be handed out while still in use.
type Buf struct {
	B    []byte
	refs atomic.Int32
	// mapped: B's memory was mapped for it (hugeBufMin and over, Linux), not the garbage
	// collector's; unmapped when the pool drops it.
	mapped bool
	// pinned: B is a piece of a slab of the arena (see carve); the pool keeps it for good.
	pinned bool
}

const (
	minBufShift = 12 // 4 KiB
	maxBufShift = 26 // 64 MiB, the largest chunk
	// PoolIdle bounds the bytes of idle buffers the pool keeps.
	PoolIdle = 64 << 20
)

var bufPool struct {
	tiers [maxBufShift - minBufShift + 1]struct {
		mu   sync.Mutex
		free []*Buf
	}
	idle   atomic.Int64 // bytes in the free lists
	mapped atomic.Int64 // bytes of mapped buffers (in use or idle)
	inUse  atomic.Int64 // bytes of tier buffers handed out and not yet freed
}

// PoolInUse returns the bytes of the pool's buffers handed out by NewBuf and not yet freed
// by their last reference. Once every push of a process is over it is zero: anything else is
// a reference that was never dropped, whose buffer the pool never gets back (and, for a
// mapped one, memory that is never unmapped).
func PoolInUse() int64 { return bufPool.inUse.Load() }

// PoolMapped returns the bytes of the data path's buffers mapped outside the Go heap (in use
// or idle in the pool): what the heap's own figures leave out.
func PoolMapped() int64 { return bufPool.mapped.Load() }

// bufTier is the pool tier of a buffer of n bytes, or -1 when it is not pooled.
func bufTier(n int) int {
	if n > 1<<maxBufShift {
		return -1
	}
	if n <= 1<<minBufShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minBufShift
}

// NewBuf returns a buffer of n bytes with one reference. Its bytes are not cleared: they are
// whatever its last user left. Cost: O(1), or one allocation when its tier has no idle buffer.
func NewBuf(n int) *Buf {
	t := bufTier(n)
	if t < 0 {
		b := &Buf{B: make([]byte, n)}
		b.refs.Store(1)
		return b
	}
	tier := &bufPool.tiers[t]
	tier.mu.Lock()
	var b *Buf
	if k := len(tier.free); k > 0 {
		b = tier.free[k-1]
		tier.free[k-1] = nil
		tier.free = tier.free[:k-1]
	}
	tier.mu.Unlock()
	switch {
	case b == nil:
		b = newTierBuf(1 << (t + minBufShift))
	case !b.pinned:
		bufPool.idle.Add(-int64(cap(b.B)))
	}
	b.B = b.B[:n]
	b.refs.Store(1)
	bufPool.inUse.Add(int64(cap(b.B)))
	return b
}

// hugeBufMin is the smallest tier whose buffers are mapped apart in huge pages where the
// system allows it (hugemem.Map).
const hugeBufMin = 2 << 20

// newTierBuf returns a new buffer of a tier's size n: for n of hugeBufMin or more, memory
// mapped for it in transparent huge pages where the system allows it, else the garbage
// collector's. Why: a fresh buffer's pages are faulted in one by one at their first write,
// and in a virtual machine a page fault is dear (about 15 microseconds a 4 KiB page measured
// in one, 3.7 CPU seconds per GiB, against well under a microsecond a page for a 2 MiB huge
// page): an agent's first push faults in every buffer it will keep in its pool, tens of MiB.
func newTierBuf(n int) *Buf {
	switch {
	case n >= hugeBufMin:
		if m := hugemem.Map(n); m != nil {
			bufPool.mapped.Add(int64(n))
			return &Buf{B: m, mapped: true}
		}
	case n >= arenaMin:
		if b := carve(n); b != nil {
			return b
		}
	}
	return &Buf{B: make([]byte, n)}
}

// The arena: buffers from arenaMin to under hugeBufMin (the push wire's TLS buffers, the
// chunks of objects under a few hundred MiB) are carved out of huge-page slabs, at most
// arenaMax bytes of them in all, and kept by the pool for good (past arenaMax, such buffers
// are the heap's again). They are counted by PoolMapped, not in PoolIdle.
const (
	arenaMin = 256 << 10
	arenaMax = 16 << 20
)

var arena struct {
	mu    sync.Mutex
	bytes int64
}

// carve maps a slab of one huge page for a buffer of n bytes (a tier's size, under
// hugeBufMin) and puts the slab's other pieces in n's tier, idle. It returns nil when the
// arena is full or the system maps nothing.
func carve(n int) *Buf {
	arena.mu.Lock()
	if arena.bytes+hugemem.PageSize > arenaMax {
		arena.mu.Unlock()
		return nil
	}
	arena.bytes += hugemem.PageSize
	arena.mu.Unlock()
	m := hugemem.Map(hugemem.PageSize)
	if m == nil {
		arena.mu.Lock()
		arena.bytes -= hugemem.PageSize
		arena.mu.Unlock()
		return nil
	}
	bufPool.mapped.Add(hugemem.PageSize)
	tier := &bufPool.tiers[bufTier(n)]
	tier.mu.Lock()
	for off := n; off+n <= len(m); off += n {
		tier.free = append(tier.free, &Buf{B: m[off : off+n : off+n], pinned: true})
	}
	tier.mu.Unlock()
	return &Buf{B: m[:n:n], pinned: true}
}

// Ref adds a reference to b and returns it.
func (b *Buf) Ref() *Buf {
	if b != nil {
		b.refs.Add(1)
	}
	return b
}

// Free drops a reference to b; the last one returns b to the pool.
func (b *Buf) Free() {
	if b == nil {
		return
	}
	switch r := b.refs.Add(-1); {
	case r > 0:
		return
	case r < 0:
		panic("transfer: a Buf freed more often than it was referenced")
	}
	c := cap(b.B)
	t := bufTier(c)
	if t < 0 || c != 1<<(t+minBufShift) {
		return // not a tier's size: the garbage collector takes it
	}
	bufPool.inUse.Add(-int64(c))
	// The arena's buffers are kept whatever the bound; the others count as idle.
	if !b.pinned && bufPool.idle.Add(int64(c)) > PoolIdle {
		bufPool.idle.Add(-int64(c))
		if b.mapped {
			hugemem.Unmap(b.B[:c])
			bufPool.mapped.Add(-int64(c))
			b.B = nil // a use after the last Free fails here rather than in unmapped memory
		}
		return
	}
	tier := &bufPool.tiers[t]
	tier.mu.Lock()
	tier.free = append(tier.free, b)
	tier.mu.Unlock()
}
