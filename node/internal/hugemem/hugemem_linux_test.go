package hugemem

import (
	"testing"
	"unsafe"
)

// TestMap: Map gives n bytes at a huge page boundary that hold what is written to them, and
// refuses sizes that are not whole huge pages.
func TestMap(t *testing.T) {
	for _, n := range []int{0, -PageSize, PageSize - 4096, 3 * PageSize / 2} {
		if b := Map(n); b != nil {
			t.Fatalf("Map(%d) mapped %d bytes", n, len(b))
		}
	}
	b := Map(2 * PageSize)
	if b == nil {
		t.Skip("no anonymous mapping here")
	}
	defer Unmap(b)
	if len(b) != 2*PageSize || cap(b) != len(b) {
		t.Fatalf("len %d cap %d", len(b), cap(b))
	}
	if p := uintptr(unsafe.Pointer(unsafe.SliceData(b))); p%PageSize != 0 {
		t.Fatalf("mapped at %#x, not at a huge page boundary", p)
	}
	for i := range b {
		b[i] = byte(i * 7)
	}
	for i, v := range b {
		if v != byte(i*7) {
			t.Fatalf("byte %d reads %d", i, v)
		}
	}
}
