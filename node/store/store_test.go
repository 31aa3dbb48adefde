package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// object returns size pseudo-random bytes (seeded) and their manifest.
func object(t testing.TB, seed uint64, size, chunk int) ([]byte, Manifest) {
	t.Helper()
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	m, err := NewManifest(bytes.NewReader(data), chunk)
	if err != nil {
		t.Fatal(err)
	}
	return data, m
}

func chunkOf(data []byte, m Manifest, i int) []byte {
	off := i * m.ChunkSize
	return data[off : off+m.ChunkLen(i)]
}

func openStore(t testing.TB, opts ...Option) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// receive writes every chunk of data into a new partial, in a seeded random order.
func receive(t *testing.T, s *Store, data []byte, m Manifest, seed uint64) *Partial {
	t.Helper()
	p, err := s.Begin(m)
	if err != nil {
		t.Fatal(err)
	}
	order := rand.New(rand.NewPCG(seed, 1)).Perm(m.NumChunks())
	for _, i := range order {
		if err := p.WriteChunk(i, chunkOf(data, m, i)); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
	}
	return p
}

func readAll(t *testing.T, s *Store, d Digest) []byte {
	t.Helper()
	f, err := s.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNewManifestAgainstReference(t *testing.T) {
	for _, tc := range []struct{ size, chunk int }{{0, 4}, {1, 4}, {4, 4}, {5, 4}, {1000, 7}, {4096, 1024}, {3, 100}} {
		t.Run(fmt.Sprintf("%d/%d", tc.size, tc.chunk), func(t *testing.T) {
			data, m := object(t, uint64(tc.size), tc.size, tc.chunk)
			if m.Digest != DigestOf(data) || m.Size != int64(tc.size) || m.ChunkSize != tc.chunk {
				t.Fatalf("manifest %v/%d/%d for %d bytes", m.Digest, m.Size, m.ChunkSize, tc.size)
			}
			// Reference: cut the slice by hand.
			var want []Hash
			for off := 0; off < len(data); off += tc.chunk {
				want = append(want, sha256.Sum256(data[off:min(off+tc.chunk, len(data))]))
			}
			if len(want) != m.NumChunks() {
				t.Fatalf("%d chunks, want %d", m.NumChunks(), len(want))
			}
			for i := range want {
				if want[i] != m.Chunks[i] || len(chunkOf(data, m, i)) != m.ChunkLen(i) {
					t.Fatalf("chunk %d differs", i)
				}
			}
			if err := m.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestPutRoundTrip(t *testing.T) {
	s := openStore(t)
	data, want := object(t, 1, 10_000, 1024)
	m, err := s.Put(bytes.NewReader(data), 1024)
	if err != nil {
		t.Fatal(err)
	}
	if !m.SameLayout(want) || !s.Has(m.Digest) {
		t.Fatalf("Put manifest %+v differs from NewManifest's, or object not visible", m.Digest)
	}
	if got := readAll(t, s, m.Digest); !bytes.Equal(got, data) {
		t.Fatal("object bytes differ")
	}
	for i := range m.NumChunks() {
		c, err := s.ReadChunk(m.Digest, i)
		if err != nil || !bytes.Equal(c, chunkOf(data, m, i)) {
			t.Fatalf("chunk %d: %v", i, err)
		}
	}
	if _, err := s.ReadChunk(m.Digest, m.NumChunks()); !errors.Is(err, ErrChunkIndex) {
		t.Fatalf("ReadChunk past the end: %v", err)
	}
	// Manifests survive a reopen.
	s2, err := Open(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	m2, err := s2.Manifest(m.Digest)
	if err != nil || !m2.SameLayout(m) {
		t.Fatalf("reopened manifest: %v", err)
	}
	list, err := s2.List()
	if err != nil || len(list) != 1 || !list[0].Complete || list[0].Manifest.Digest != m.Digest {
		t.Fatalf("List after reopen: %+v, %v", list, err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := s2.Export(m.Digest, out); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); !bytes.Equal(b, data) {
		t.Fatal("exported bytes differ")
	}
	// Put again with another chunk size: same object, new layout for ReadChunk.
	m3, err := s2.Put(bytes.NewReader(data), 4000)
	if err != nil || m3.Digest != m.Digest || m3.ChunkSize != 4000 {
		t.Fatalf("re-Put: %v", err)
	}
	if c, err := s2.ReadChunk(m.Digest, 2); err != nil || !bytes.Equal(c, data[8000:]) {
		t.Fatalf("chunk 2 in the new layout: %v", err)
	}
	if err := s2.Remove(m.Digest); err != nil || s2.Has(m.Digest) {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := s2.Open(m.Digest); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open after Remove: %v", err)
	}
}

func TestPartialRoundTrip(t *testing.T) {
	for _, tc := range []struct{ size, chunk int }{{0, 16}, {1, 16}, {16, 16}, {1000, 16}, {1000, 999}, {65536, 4096}} {
		t.Run(fmt.Sprintf("%d/%d", tc.size, tc.chunk), func(t *testing.T) {
			for _, order := range []string{"random", "inorder", "reverse", "firstlast", "pairs"} {
				t.Run(order, func(t *testing.T) {
					s := openStore(t)
					data, m := object(t, 2, tc.size, tc.chunk)
					p, err := s.Begin(m)
					if err != nil {
						t.Fatal(err)
					}
					defer p.Close()
					for _, i := range chunkOrder(order, m.NumChunks()) {
						if err := p.WriteChunk(i, chunkOf(data, m, i)); err != nil {
							t.Fatalf("chunk %d: %v", i, err)
						}
					}
					if !p.Complete() || p.Held().Count() != m.NumChunks() {
						t.Fatalf("held %d of %d", p.Held().Count(), m.NumChunks())
					}
					if err := p.Commit(); err != nil {
						t.Fatal(err)
					}
					if !p.Committed() || !bytes.Equal(readAll(t, s, m.Digest), data) {
						t.Fatal("committed object differs")
					}
					if err := p.Commit(); err != nil {
						t.Fatalf("second Commit: %v", err)
					}
					ps, _ := s.Partials()
					if len(ps) != 0 {
						t.Fatalf("partials left after commit: %+v", ps)
					}
					if ents, _ := os.ReadDir(filepath.Join(s.Dir(), stagingDir)); len(ents) != 0 {
						t.Fatalf("staging files left: %v", ents)
					}
				})
			}
		})
	}
}

// chunkOrder returns an arrival order of n chunks: the whole-object hash is fed in order as
// chunks become contiguous, so every shape of arrival must give the same digest.
func chunkOrder(order string, n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	switch order {
	case "random":
		rand.New(rand.NewPCG(uint64(n), 3)).Shuffle(n, func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
	case "reverse":
		slices.Reverse(idx)
	case "firstlast":
		if n > 0 {
			idx = append(idx[1:], 0)
		}
	case "pairs": // 1 0 3 2 5 4 ...: two stripes slightly out of step
		for i := 0; i+1 < n; i += 2 {
			idx[i], idx[i+1] = idx[i+1], idx[i]
		}
	}
	return idx
}

func TestCorruptChunkRejected(t *testing.T) {
	s := openStore(t)
	data, m := object(t, 4, 100, 10)
	p, err := s.Begin(m)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	flipped := bytes.Clone(chunkOf(data, m, 3))
	flipped[5] ^= 0x10
	for name, tc := range map[string]struct {
		i    int
		data []byte
		want error
	}{
		"bit flip":  {3, flipped, ErrChunkCorrupt},
		"short":     {3, chunkOf(data, m, 3)[:9], ErrChunkCorrupt},
		"long":      {3, append(bytes.Clone(chunkOf(data, m, 3)), 0), ErrChunkCorrupt},
		"wrong idx": {4, chunkOf(data, m, 3), ErrChunkCorrupt},
		"negative":  {-1, chunkOf(data, m, 3), ErrChunkIndex},
		"past end":  {10, chunkOf(data, m, 3), ErrChunkIndex},
	} {
		if err := p.WriteChunk(tc.i, tc.data); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}
	if p.Held().Count() != 0 {
		t.Fatalf("corrupt chunks counted: %v", p.Held().Indexes())
	}
	// Nothing was written: the staging file is still all zeros.
	b, err := os.ReadFile(s.stagingPath(m.Digest, dataExt))
	if err != nil || !bytes.Equal(b, make([]byte, 100)) {
		t.Fatalf("staging file changed by rejected chunks (%v)", err)
	}
	if err := p.WriteChunk(3, chunkOf(data, m, 3)); err != nil || !p.Has(3) {
		t.Fatalf("good chunk after bad ones: %v", err)
	}
}

func TestNotVisibleUntilCommit(t *testing.T) {
	s := openStore(t)
	data, m := object(t, 5, 1000, 100)
	p, err := s.Begin(m)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	check := func(stage string, want bool) {
		t.Helper()
		_, openErr := s.Open(m.Digest)
		_, mErr := s.Manifest(m.Digest)
		list, _ := s.List()
		if s.Has(m.Digest) != want || (openErr == nil) != want || (mErr == nil) != want || (len(list) == 1) != want {
			t.Fatalf("%s: visible=%v open=%v manifest=%v list=%d, want visible=%v", stage, s.Has(m.Digest), openErr, mErr, len(list), want)
		}
		if !want && !errors.Is(openErr, ErrNotFound) {
			t.Fatalf("%s: Open: %v, want ErrNotFound", stage, openErr)
		}
	}
	check("begun", false)
	for i := range m.NumChunks() - 1 {
		if err := p.WriteChunk(i, chunkOf(data, m, i)); err != nil {
			t.Fatal(err)
		}
	}
	check("all but one chunk", false)
	if err := p.Commit(); !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "9 of 10") {
		t.Fatalf("Commit of incomplete object: %v", err)
	}
	check("failed commit", false)
	if err := p.WriteChunk(9, chunkOf(data, m, 9)); err != nil {
		t.Fatal(err)
	}
	check("complete, not committed", false)
	if info, err := s.Stat(m.Digest); err != nil || info.Complete || info.Held != 10 {
		t.Fatalf("Stat of partial: %+v, %v", info, err)
	}
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	check("committed", true)
}

func TestRestartResumes(t *testing.T) {
	dir := t.TempDir()
	data, m := object(t, 6, 5000, 128)
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Begin(m)
	if err != nil {
		t.Fatal(err)
	}
	written := map[int]bool{}
	for _, i := range rand.New(rand.NewPCG(1, 2)).Perm(m.NumChunks())[:20] {
		if err := p.WriteChunk(i, chunkOf(data, m, i)); err != nil {
			t.Fatal(err)
		}
		written[i] = true
	}
	p.Close() // the process "stops": files closed, nothing committed
	s.Close()

	// Corrupt one held chunk on disk: the resume must not count it.
	var bad int
	for i := range written {
		bad = i
		break
	}
	f, err := os.OpenFile(filepath.Join(dir, stagingDir, m.Digest.Hex()+dataExt), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{^chunkOf(data, m, bad)[0]}, int64(bad*m.ChunkSize))
	f.Close()
	delete(written, bad)

	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := s2.Partials()
	if err != nil || len(ps) != 1 || ps[0].Held != 20 {
		t.Fatalf("staged partials before Begin: %+v, %v (want one with 20 recorded chunks)", ps, err)
	}
	p2, err := s2.Begin(m)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	held := p2.Held()
	if held.Count() != len(written) {
		t.Fatalf("resumed with %d chunks, want %d", held.Count(), len(written))
	}
	for i := range written {
		if !held.Has(i) {
			t.Fatalf("chunk %d lost on resume", i)
		}
	}
	if held.Has(bad) {
		t.Fatalf("corrupted chunk %d counted on resume", bad)
	}
	for i := range m.NumChunks() {
		if !held.Has(i) {
			if err := p2.WriteChunk(i, chunkOf(data, m, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p2.Commit(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, s2, m.Digest), data) {
		t.Fatal("resumed object differs")
	}
	// Begin on a complete object: every chunk held, already committed, chunks readable.
	p3, err := s2.Begin(m)
	if err != nil || !p3.Committed() || !p3.Complete() {
		t.Fatalf("Begin on a complete object: %v", err)
	}
	defer p3.Close()
	if c, err := p3.ReadChunk(7); err != nil || !bytes.Equal(c, chunkOf(data, m, 7)) {
		t.Fatalf("ReadChunk on complete handle: %v", err)
	}
}

func TestResumeWithOtherLayoutStartsFresh(t *testing.T) {
	s := openStore(t)
	data, m := object(t, 7, 1000, 100)
	p, _ := s.Begin(m)
	p.WriteChunk(0, chunkOf(data, m, 0))
	p.Close()
	m2, _ := NewManifest(bytes.NewReader(data), 250)
	p2, err := s.Begin(m2)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if p2.Held().Count() != 0 {
		t.Fatal("chunks of another layout counted")
	}
	// While p2 is active, a third transfer with the first layout conflicts.
	if _, err := s.Begin(m); !errors.Is(err, ErrManifestConflict) {
		t.Fatalf("Begin with another layout while active: %v", err)
	}
}

func TestSharedPartialAndAbort(t *testing.T) {
	s := openStore(t)
	data, m := object(t, 8, 2000, 100)
	a, _ := s.Begin(m)
	b, err := s.Begin(m)
	if err != nil {
		t.Fatal(err)
	}
	a.WriteChunk(1, chunkOf(data, m, 1))
	if !b.Has(1) {
		t.Fatal("handles of one object do not share chunks")
	}
	a.Close()
	if err := a.WriteChunk(2, chunkOf(data, m, 2)); !errors.Is(err, ErrClosed) {
		t.Fatalf("write on closed handle: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := b.WriteChunk(2, chunkOf(data, m, 2)); err != nil {
		t.Fatalf("other handle after Close: %v", err)
	}
	c, _ := s.Begin(m)
	if err := c.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteChunk(3, chunkOf(data, m, 3)); !errors.Is(err, ErrAborted) {
		t.Fatalf("write after another handle aborted: %v", err)
	}
	if err := b.Commit(); !errors.Is(err, ErrAborted) {
		t.Fatalf("commit after abort: %v", err)
	}
	b.Close()
	if ents, _ := os.ReadDir(filepath.Join(s.Dir(), stagingDir)); len(ents) != 0 {
		t.Fatalf("staging files left after Abort: %v", ents)
	}
	d, _ := s.Begin(m)
	defer d.Close()
	if d.Held().Count() != 0 {
		t.Fatal("Begin after Abort resumed discarded chunks")
	}
}

func TestConcurrentWriters(t *testing.T) {
	s := openStore(t)
	const objects, writers = 3, 4
	var wg sync.WaitGroup
	errs := make(chan error, objects*writers)
	datas := make([][]byte, objects)
	mans := make([]Manifest, objects)
	for o := range objects {
		datas[o], mans[o] = object(t, uint64(10+o), 20_000+o, 256)
	}
	for o := range objects {
		for w := range writers {
			wg.Go(func() {
				p, err := s.Begin(mans[o])
				if err != nil {
					errs <- err
					return
				}
				defer p.Close()
				for _, i := range rand.New(rand.NewPCG(uint64(o), uint64(w))).Perm(mans[o].NumChunks()) {
					if err := p.WriteChunk(i, chunkOf(datas[o], mans[o], i)); err != nil {
						errs <- err
						return
					}
					if _, err := p.ReadChunk(i); err != nil {
						errs <- err
						return
					}
				}
				if err := p.Commit(); err != nil {
					errs <- err
				}
				s.Partials()
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for o := range objects {
		if !bytes.Equal(readAll(t, s, mans[o].Digest), datas[o]) {
			t.Fatalf("object %d differs", o)
		}
	}
	if list, _ := s.List(); len(list) != objects {
		t.Fatalf("%d objects listed, want %d", len(list), objects)
	}
}

func TestLyingManifests(t *testing.T) {
	data, good := object(t, 9, 1000, 100)
	h := good.Chunks[0]
	mut := func(f func(m *Manifest)) Manifest {
		m := good
		m.Chunks = append([]Hash(nil), good.Chunks...)
		f(&m)
		return m
	}
	for name, m := range map[string]Manifest{
		"too few chunks":       mut(func(m *Manifest) { m.Chunks = m.Chunks[:9] }),
		"too many chunks":      mut(func(m *Manifest) { m.Chunks = append(m.Chunks, h) }),
		"size larger":          mut(func(m *Manifest) { m.Size = 1001 }),
		"negative size":        mut(func(m *Manifest) { m.Size = -1 }),
		"absurd size":          mut(func(m *Manifest) { m.Size = 1 << 60 }),
		"zero chunk size":      mut(func(m *Manifest) { m.ChunkSize = 0 }),
		"huge chunk size":      mut(func(m *Manifest) { m.ChunkSize = MaxChunkSize + 1 }),
		"zero digest":          mut(func(m *Manifest) { m.Digest = Digest{} }),
		"empty but digest":     {Digest: good.Digest, ChunkSize: 10},
		"parity K=0":           mut(func(m *Manifest) { m.Parity = &Parity{DataShards: 0, ParityShards: 1} }),
		"parity K+M>256":       mut(func(m *Manifest) { m.Parity = &Parity{DataShards: 200, ParityShards: 57} }),
		"parity hashes count":  mut(func(m *Manifest) { m.Parity = &Parity{DataShards: 4, ParityShards: 2, Hashes: make([]Hash, 5)} }),
		"parity hashes absent": mut(func(m *Manifest) { m.Parity = &Parity{DataShards: 3, ParityShards: 1} }),
	} {
		t.Run(name, func(t *testing.T) {
			if err := m.Validate(); !errors.Is(err, ErrBadManifest) {
				t.Fatalf("Validate: %v", err)
			}
			s := openStore(t)
			if _, err := s.Begin(m); !errors.Is(err, ErrBadManifest) {
				t.Fatalf("Begin: %v", err)
			}
			if _, err := UnmarshalManifest(mustMarshal(t, m)); err == nil {
				t.Fatal("UnmarshalManifest accepted it")
			}
		})
	}
	withParity := mut(func(m *Manifest) { m.Parity = &Parity{DataShards: 4, ParityShards: 2, Hashes: make([]Hash, 6)} })
	if err := withParity.Validate(); err != nil {
		t.Fatalf("valid parity manifest: %v", err)
	}
	if back, err := UnmarshalManifest(mustMarshal(t, withParity)); err != nil || !back.SameLayout(withParity) || back.NumParity() != 6 || back.ChunkLen(12) != 100 {
		t.Fatalf("parity round trip: %v", err)
	}

	// Chunks that match their hashes but a digest that does not: Commit discards.
	t.Run("digest lies", func(t *testing.T) {
		s := openStore(t)
		m := mut(func(m *Manifest) { m.Digest = DigestOf([]byte("something else")) })
		p := receive(t, s, data, m, 1)
		defer p.Close()
		if err := p.Commit(); !errors.Is(err, ErrDigestMismatch) {
			t.Fatalf("Commit: %v", err)
		}
		if s.Has(m.Digest) || s.Has(good.Digest) {
			t.Fatal("object visible after digest mismatch")
		}
		if ents, _ := os.ReadDir(filepath.Join(s.Dir(), stagingDir)); len(ents) != 0 {
			t.Fatalf("staging files left: %v", ents)
		}
	})
}

func mustMarshal(t *testing.T, m Manifest) []byte {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseDigest(t *testing.T) {
	good := DigestOf([]byte("x"))
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{good.String(), true},
		{strings.ToUpper(good.String()), false},
		{"sha256:" + strings.ToUpper(good.Hex()), false},
		{good.Hex(), false},
		{"sha512:" + good.Hex(), false},
		{good.String()[:70], false},
		{good.String() + "0", false},
		{"sha256:../../../../etc/passwd", false},
		{"sha256:" + strings.Repeat("g", 64), false},
		{"sha256:" + good.Hex()[:62] + "/x", false},
		{"", false},
		{" " + good.String(), false},
	} {
		d, err := ParseDigest(tc.in)
		if tc.ok != (err == nil) || (!tc.ok && !errors.Is(err, ErrBadDigest)) {
			t.Errorf("ParseDigest(%q) = %v", tc.in, err)
		}
		if tc.ok && d != good {
			t.Errorf("ParseDigest(%q) = %v", tc.in, d)
		}
	}
	var d Digest
	if err := d.UnmarshalText([]byte(good.String())); err != nil || d != good {
		t.Fatal(err)
	}
}

func TestBitset(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 63, 64, 65, 200} {
		b := NewBitset(n)
		ref := map[int]bool{}
		r := rand.New(rand.NewPCG(uint64(n), 3))
		for range n / 2 {
			i := r.IntN(n)
			b.Set(i)
			ref[i] = true
		}
		if b.Count() != len(ref) || b.Full() != (len(ref) == n) {
			t.Fatalf("n=%d: count %d, want %d", n, b.Count(), len(ref))
		}
		back, err := BitsetFromBytes(b.Bytes(), n)
		if err != nil {
			t.Fatal(err)
		}
		for i := -1; i <= n; i++ {
			if b.Has(i) != ref[i] || back.Has(i) != ref[i] {
				t.Fatalf("n=%d bit %d", n, i)
			}
		}
		if len(b.Indexes()) != len(ref) {
			t.Fatal("Indexes length")
		}
	}
	if _, err := BitsetFromBytes([]byte{0x10}, 4); !errors.Is(err, ErrBadBitmap) {
		t.Fatalf("bit past the end: %v", err)
	}
	if _, err := BitsetFromBytes([]byte{0, 0}, 8); !errors.Is(err, ErrBadBitmap) {
		t.Fatalf("bitmap too long: %v", err)
	}
	if b, err := BitsetFromBytes([]byte{0x01}, 20); err != nil || !b.Has(0) || b.Count() != 1 {
		t.Fatalf("short bitmap: %v", err)
	}
}

func TestPaths(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	os.Symlink(outside, filepath.Join(root, "link"))
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"a/b/file", true},
		{filepath.Join(root, "file"), true},
		{"../x", false},
		{"a/../../x", false},
		{filepath.Join(outside, "file"), false},
		{"link/file", false},
		{"link", false},
	} {
		_, err := Within(root, tc.path)
		if tc.ok != (err == nil) || (!tc.ok && !errors.Is(err, ErrPathEscape)) {
			t.Errorf("Within(root, %q) = %v", tc.path, err)
		}
	}
	s := openStore(t, WithPathRoot(root))
	data, _ := object(t, 11, 100, 10)
	in := filepath.Join(outside, "in")
	os.WriteFile(in, data, 0o644)
	if _, err := s.Import(in, 10); !errors.Is(err, ErrPathEscape) {
		t.Fatalf("Import outside root: %v", err)
	}
	os.WriteFile(filepath.Join(root, "in"), data, 0o644)
	m, err := s.Import(filepath.Join(root, "in"), 10)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Export(m.Digest, filepath.Join(root, "link", "out")); !errors.Is(err, ErrPathEscape) {
		t.Fatalf("Export through a symlink out of root: %v", err)
	}
	if err := s.Export(m.Digest, filepath.Join(root, "out")); err != nil {
		t.Fatal(err)
	}
	// Without a root, Export still refuses the store's own directory.
	s2 := openStore(t)
	s2.Put(bytes.NewReader(data), 10)
	if err := s2.Export(m.Digest, filepath.Join(s2.Dir(), objectsDir, "x")); !errors.Is(err, ErrPathEscape) {
		t.Fatalf("Export into the store: %v", err)
	}
	if err := s2.Export(DigestOf(nil), filepath.Join(t.TempDir(), "y")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Export of unknown object: %v", err)
	}
}

// failingFile fails writes with ENOSPC once the shared budget of bytes is spent.
type failingFile struct {
	File
	budget *int64
	mu     *sync.Mutex
}

func (f failingFile) spend(n int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if *f.budget < int64(n) {
		return &os.PathError{Op: "write", Path: "test", Err: syscall.ENOSPC}
	}
	*f.budget -= int64(n)
	return nil
}

func (f failingFile) Write(p []byte) (int, error) {
	if err := f.spend(len(p)); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f failingFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.spend(len(p)); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

// diskWithRoom returns an OpenFile hook whose files fail with ENOSPC after budget bytes.
func diskWithRoom(budget int64) (OpenFileFunc, func(int64)) {
	var mu sync.Mutex
	open := func(name string, flag int, perm os.FileMode) (File, error) {
		f, err := os.OpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		return failingFile{File: f, budget: &budget, mu: &mu}, nil
	}
	return open, func(n int64) { mu.Lock(); budget = n; mu.Unlock() }
}

func TestFullDisk(t *testing.T) {
	open, setRoom := diskWithRoom(5000)
	s := openStore(t, WithOpenFile(open))
	data, m := object(t, 12, 10_000, 1000)

	// Put: nothing visible, nothing left in tmp.
	if _, err := s.Put(bytes.NewReader(data), 1000); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Put on a full disk: %v", err)
	}
	if s.Has(m.Digest) {
		t.Fatal("object visible after failed Put")
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Dir(), tmpDir)); len(ents) != 0 {
		t.Fatalf("tmp files left: %v", ents)
	}

	// Receive: the chunk that hits the full disk fails and is not counted; the rest resumes.
	setRoom(5000)
	p, err := s.Begin(m)
	if err != nil {
		t.Fatal(err)
	}
	var failedAt = -1
	for i := range m.NumChunks() {
		if err := p.WriteChunk(i, chunkOf(data, m, i)); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("chunk %d: %v", i, err)
			}
			failedAt = i
			break
		}
	}
	if failedAt < 0 || p.Has(failedAt) {
		t.Fatalf("full disk not reported, or failed chunk %d counted", failedAt)
	}
	if err := p.Commit(); !errors.Is(err, ErrIncomplete) || s.Has(m.Digest) {
		t.Fatalf("Commit after full disk: %v", err)
	}
	p.Close()
	setRoom(1 << 30) // space freed
	p2, err := s.Begin(m)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if got := p2.Held().Count(); got != failedAt {
		t.Fatalf("resumed with %d chunks, want %d", got, failedAt)
	}
	for i := failedAt; i < m.NumChunks(); i++ {
		if err := p2.WriteChunk(i, chunkOf(data, m, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p2.Commit(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, s, m.Digest), data) {
		t.Fatal("object differs")
	}
}

func TestFullDiskCommitKeepsResumable(t *testing.T) {
	open, setRoom := diskWithRoom(1 << 30)
	s := openStore(t, WithOpenFile(open))
	data, m := object(t, 13, 4000, 1000)
	p := receive(t, s, data, m, 2)
	defer p.Close()
	setRoom(0) // the manifest write fails
	if err := p.Commit(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Commit on a full disk: %v", err)
	}
	if s.Has(m.Digest) || p.Committed() {
		t.Fatal("object visible after failed Commit")
	}
	setRoom(1 << 30)
	if err := p.Commit(); err != nil || !s.Has(m.Digest) {
		t.Fatalf("Commit once space is back: %v", err)
	}
}

// TestTmpfsFullDisk fills a real, tiny tmpfs (root only).
func TestTmpfsFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs; the injected-error tests cover the logic")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=256k"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); the injected-error tests cover the logic", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data, m := object(t, 14, 1<<20, 16<<10)
	if _, err := s.Put(bytes.NewReader(data), 16<<10); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Put of 1 MiB on a 256 KiB tmpfs: %v", err)
	}
	p, err := s.Begin(m)
	if err != nil {
		t.Fatal(err)
	}
	var werr error
	for i := 0; i < m.NumChunks() && werr == nil; i++ {
		werr = p.WriteChunk(i, chunkOf(data, m, i))
	}
	if !errors.Is(werr, syscall.ENOSPC) {
		t.Fatalf("WriteChunk on a full tmpfs: %v", werr)
	}
	if err := p.Commit(); err == nil || s.Has(m.Digest) {
		t.Fatalf("Commit after a full disk: %v", err)
	}
	if err := p.Abort(); err != nil {
		t.Fatal(err)
	}
	// Space is back: a small object goes through.
	small, sm := object(t, 15, 10_000, 1000)
	if _, err := s.Put(bytes.NewReader(small), 1000); err != nil || !s.Has(sm.Digest) {
		t.Fatalf("small Put after abort: %v", err)
	}
}

func TestClosedStore(t *testing.T) {
	s := openStore(t)
	s.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, m := object(t, 16, 10, 5)
	if _, err := s.Begin(m); !errors.Is(err, ErrClosed) {
		t.Fatalf("Begin on closed store: %v", err)
	}
	if _, err := s.Put(strings.NewReader("x"), 5); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put on closed store: %v", err)
	}
}

// TestAbortForCause: the reason given to AbortFor comes with the ErrAborted of every handle's
// later write and commit, including the aborting handle's own (closed by the abort), so a
// writer that lost the race to a full disk says why; a plain Close still says ErrClosed.
func TestAbortForCause(t *testing.T) {
	s := openStore(t)
	data, m := object(t, 23, 10_000, 1000)
	h1, err := s.Begin(m)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := s.Begin(m)
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	cause := errors.New("no space left on device (test)")
	if err := h1.AbortFor(cause); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"write on the other handle":    h2.WriteChunk(0, chunkOf(data, m, 0)),
		"commit on the other handle":   h2.Commit(),
		"write on the aborting handle": h1.WriteChunk(1, chunkOf(data, m, 1)),
	} {
		if !errors.Is(err, ErrAborted) || !errors.Is(err, cause) {
			t.Errorf("%s: %v, want ErrAborted wrapping the cause", name, err)
		}
	}
	h3, err := s.Begin(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := h3.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h3.WriteChunk(0, chunkOf(data, m, 0)); !errors.Is(err, ErrClosed) {
		t.Errorf("write after Close: %v, want ErrClosed", err)
	}
}

func TestAbortRacesWriters(t *testing.T) {
	s := openStore(t)
	data, m := object(t, 17, 50_000, 500)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	start := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			p, err := s.Begin(m)
			if err != nil {
				errs <- err
				return
			}
			defer p.Close()
			<-start
			for _, i := range rand.New(rand.NewPCG(uint64(w), 9)).Perm(m.NumChunks()) {
				if err := p.WriteChunk(i, chunkOf(data, m, i)); err != nil {
					if !errors.Is(err, ErrAborted) {
						errs <- err
					}
					return
				}
			}
			if err := p.Commit(); err != nil && !errors.Is(err, ErrAborted) {
				errs <- err
			}
		})
	}
	aborter, err := s.Begin(m)
	if err != nil {
		t.Fatal(err)
	}
	close(start)
	if err := aborter.Abort(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Either the writers committed before the abort (then the object is whole), or nothing
	// is visible; never a half object, and no staging files either way.
	if s.Has(m.Digest) && !bytes.Equal(readAll(t, s, m.Digest), data) {
		t.Fatal("visible object differs")
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Dir(), stagingDir)); len(ents) != 0 {
		t.Fatalf("staging files left: %v", ents)
	}
}

func TestExportDetectsDiskCorruption(t *testing.T) {
	s := openStore(t)
	data, _ := object(t, 18, 3000, 1000)
	m, err := s.Put(bytes.NewReader(data), 1000)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(data)
	bad[1234] ^= 1
	if err := os.WriteFile(s.objectPath(m.Digest), bad, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := s.Export(m.Digest, out); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("Export of a corrupted object: %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("Export left %s behind (%v)", out, err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 0 {
		t.Fatalf("temporary export files left: %v", ents)
	}
	c, err := s.ReadChunk(m.Digest, 1)
	if err != nil || m.VerifyChunk(1, c) == nil {
		t.Fatalf("VerifyChunk does not catch the corrupted chunk (%v)", err)
	}
}

// Fresh is true only while nothing of the object is here: not in progress, not staged by
// an earlier run, not complete.
func TestFresh(t *testing.T) {
	s := openStore(t)
	data, m := object(t, 5, 1000, 100)
	if !s.Fresh(m.Digest) {
		t.Fatal("Fresh false for an object never seen")
	}
	p, err := s.Begin(m)
	if err != nil {
		t.Fatal(err)
	}
	if s.Fresh(m.Digest) {
		t.Error("Fresh true while the object is in progress")
	}
	if err := p.WriteChunk(0, chunkOf(data, m, 0)); err != nil {
		t.Fatal(err)
	}
	p.Close() // staged, resumable
	if s.Fresh(m.Digest) {
		t.Error("Fresh true for a staged object (Begin would resume it)")
	}
	p, err = s.Begin(m)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < m.NumChunks(); i++ {
		if err := p.WriteChunk(i, chunkOf(data, m, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if s.Fresh(m.Digest) {
		t.Error("Fresh true for a complete object")
	}
}
