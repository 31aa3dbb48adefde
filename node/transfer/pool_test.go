package transfer

import "testing"

func TestChunkBufs(t *testing.T) {
	for _, n := range []int{1, 64 << 10, 64<<10 + 1, 1 << 20, 3<<20 + 5, 64 << 20, 64<<20 + 1} {
		b := getChunkBuf(n)
		if len(b) != 0 || cap(b) < n {
			t.Fatalf("getChunkBuf(%d): len %d cap %d", n, len(b), cap(b))
		}
		if tier := bufTier(n); tier >= 0 && cap(b) != 1<<(tier+minBufShift) {
			t.Fatalf("getChunkBuf(%d): cap %d is not its tier's", n, cap(b))
		}
		b = append(b, make([]byte, n)...)
		putChunkBuf(b)
		if c := getChunkBuf(n); cap(c) < n || len(c) != 0 {
			t.Fatalf("after put, getChunkBuf(%d): len %d cap %d", n, len(c), cap(c))
		}
	}
	putChunkBuf(make([]byte, 0, 100<<10)) // not a tier's size: dropped, no panic
}
