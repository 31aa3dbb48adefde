package transfer

import (
	"testing"
)

func TestBufPool(t *testing.T) {
	for _, n := range []int{1, 4 << 10, 64 << 10, 64<<10 + 1, 1 << 20, 3<<20 + 5, 64 << 20} {
		b := NewBuf(n)
		if len(b.B) != n {
			t.Fatalf("NewBuf(%d): len %d", n, len(b.B))
		}
		if c := cap(b.B); c != 1<<(bufTier(n)+minBufShift) {
			t.Fatalf("NewBuf(%d): cap %d is not its tier's", n, c)
		}
		b.B[0] = 7
		b.Free()
		c := NewBuf(n)
		if len(c.B) != n || c.refs.Load() != 1 {
			t.Fatalf("after Free, NewBuf(%d): len %d refs %d", n, len(c.B), c.refs.Load())
		}
		c.Free()
	}
	big := NewBuf(64<<20 + 1) // beyond the tiers: not pooled, Free is harmless
	big.Free()
	var nb *Buf
	nb.Ref().Free() // a nil Buf: no-op
}

func TestBufRefs(t *testing.T) {
	b := NewBuf(1 << 20)
	b.Ref()
	b.Free()
	if b.refs.Load() != 1 {
		t.Fatalf("refs %d after Ref and Free, want 1", b.refs.Load())
	}
	b.Free()
	defer func() {
		if recover() == nil {
			t.Fatal("a Free past the last reference did not panic")
		}
	}()
	b.Free()
}

func TestBufPoolIdleBound(t *testing.T) {
	// Freeing more than PoolIdle bytes keeps at most PoolIdle of them.
	var bufs []*Buf
	for range PoolIdle/(4<<20) + 8 {
		bufs = append(bufs, NewBuf(4<<20))
	}
	for _, b := range bufs {
		b.Free()
	}
	if idle := bufPool.idle.Load(); idle > PoolIdle {
		t.Fatalf("%d idle bytes, bound %d", idle, PoolIdle)
	}
}
