package transfer

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/treecast/treecast/node/internal/hugemem"
)

// TestBufHuge: buffers of the tiers from hugeBufMin up are mapped apart at a huge page
// boundary, hold what is written to them, go back to the pool when freed within the idle
// bound, and are unmapped (their bytes dropped) when freed beyond it.
func TestBufHuge(t *testing.T) {
	b := NewBuf(3<<20 + 5)
	if !b.mapped || PoolMapped() < int64(cap(b.B)) {
		t.Fatalf("a 4 MiB tier buffer is not mapped apart (mapped %v; %d bytes counted)", b.mapped, PoolMapped())
	}
	if p := uintptr(unsafe.Pointer(unsafe.SliceData(b.B))); p%hugemem.PageSize != 0 {
		t.Fatalf("buffer at %#x: not at a huge page boundary", p)
	}
	for i := range b.B[:cap(b.B)] {
		b.B[:cap(b.B)][i] = byte(i)
	}
	for i, v := range b.B[:cap(b.B)] {
		if v != byte(i) {
			t.Fatalf("byte %d reads %d", i, v)
		}
	}
	t.Logf("huge pages backing the buffer: %d KiB (0 where the system gives none)", anonHugeKiB(t, b.B))
	if small := NewBuf(hugeBufMin / 2); small.mapped {
		t.Fatal("a buffer below hugeBufMin is mapped apart")
	} else {
		small.Free()
	}
	b.Free()

	drainPool()
	var bufs []*Buf
	for range PoolIdle/(4<<20) + 4 {
		bufs = append(bufs, NewBuf(4<<20))
	}
	for _, b := range bufs {
		b.Free()
	}
	kept, dropped := 0, 0
	for _, b := range bufs {
		if b.B == nil {
			dropped++
		} else {
			kept++
		}
	}
	arena.mu.Lock()
	pinned := arena.bytes
	arena.mu.Unlock()
	if dropped == 0 || kept == 0 || int64(kept)*(4<<20) > PoolIdle || PoolMapped()-pinned > PoolIdle {
		t.Fatalf("%d buffers kept and %d unmapped; the pool keeps at most %d bytes", kept, dropped, PoolIdle)
	}
}

// TestBufArena: buffers from arenaMin to under hugeBufMin are pieces of huge-page slabs, at
// most arenaMax bytes of them, kept by the pool whatever its idle bound; past the arena they
// are the heap's.
func TestBufArena(t *testing.T) {
	const n = 1 << 20
	var bufs []*Buf
	pinned := 0
	for range 2 * arenaMax / n {
		b := NewBuf(n)
		if b.pinned {
			pinned++
			if p := uintptr(unsafe.Pointer(unsafe.SliceData(b.B))); p%n != 0 {
				t.Fatalf("an arena buffer at %#x, not at its size's boundary", p)
			}
		}
		b.B[0], b.B[n-1] = 1, 2
		bufs = append(bufs, b)
	}
	arena.mu.Lock()
	full := arena.bytes+hugemem.PageSize > arenaMax
	arena.mu.Unlock()
	if pinned > arenaMax/n || pinned == len(bufs) || (pinned == 0 && !full) {
		t.Fatalf("%d of %d buffers from the arena (at most %d; arena full: %v)", pinned, len(bufs), arenaMax/n, full)
	}
	idle := bufPool.idle.Load()
	for _, b := range bufs {
		if b.pinned {
			b.Free()
		}
	}
	if bufPool.idle.Load() != idle {
		t.Fatal("freed arena buffers count as idle")
	}
	again := 0
	for range pinned {
		b := NewBuf(n)
		if b.pinned {
			again++
		}
		defer b.Free()
	}
	if again != pinned {
		t.Fatalf("%d arena buffers back from the pool, %d freed", again, pinned)
	}
	for _, b := range bufs {
		if !b.pinned {
			b.Free()
		}
	}
}

// drainPool empties the pool's free lists (what earlier tests left there).
func drainPool() {
	for i := range bufPool.tiers {
		tier := &bufPool.tiers[i]
		tier.mu.Lock()
		var pinned []*Buf
		for _, b := range tier.free {
			switch {
			case b.pinned:
				pinned = append(pinned, b) // the arena's: kept
			case b.mapped:
				bufPool.idle.Add(-int64(cap(b.B)))
				bufPool.mapped.Add(-int64(cap(b.B)))
				hugemem.Unmap(b.B[:cap(b.B)])
			default:
				bufPool.idle.Add(-int64(cap(b.B)))
			}
		}
		tier.free = pinned
		tier.mu.Unlock()
	}
}

// anonHugeKiB returns the AnonHugePages of the mapping that holds b, from /proc/self/smaps.
func anonHugeKiB(t *testing.T, b []byte) int {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no smaps: %v", err)
	}
	defer f.Close()
	p := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uint64
		if n, _ := fmt.Sscanf(line, "%x-%x", &lo, &hi); n == 2 && strings.Contains(line, " ") && !strings.HasSuffix(strings.Fields(line)[0], ":") {
			in = lo <= p && p < hi
			continue
		}
		if in && strings.HasPrefix(line, "AnonHugePages:") {
			kb, _ := strconv.Atoi(strings.Fields(line)[1])
			return kb
		}
	}
	return 0
}
