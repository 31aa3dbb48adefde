package transfer

import (
	"fmt"
	"sync"

	"github.com/klauspost/reedsolomon"

	"github.com/treecast/treecast/node/store"
)

// layout maps an object's chunk indexes to the trees of a plan.
//
// Without parity, chunk i travels on tree i mod S. With Reed-Solomon parity (a forest of K
// data and M parity trees), the n data chunks form groups of K consecutive chunks (the last
// group may be short), each with M parity chunks; parity chunk j of group g has index
// n + g*M + j (the manifest's numbering). Data chunk i is piece i mod K of group i / K, parity
// chunk j is piece K+j, and piece p of group g travels on tree (p+g) mod (K+M): every tree
// carries at most one piece of each group, so a receiver that loses up to M trees still gets
// K pieces of every group and decodes the rest.
type layout struct {
	trees int // trees of the plan: S, or K+M
	k, m  int // data and parity pieces per group (m = 0: no parity)
	n     int // data chunks
}

// newLayout returns the layout of an n-chunk object on plan p.
func newLayout(p Plan, n int) layout {
	l := layout{trees: max(p.Stripes(), 1), n: n}
	if c, ok := p.(interface{ Coding() (int, int) }); ok {
		if k, m := c.Coding(); m > 0 {
			l.k, l.m = k, m
		}
	}
	return l
}

// total is the number of chunk indexes: data, then parity.
func (l layout) total() int { return l.n + l.groups()*l.m }

// groups is the number of parity groups (0 without parity).
func (l layout) groups() int {
	if l.m == 0 {
		return 0
	}
	return (l.n + l.k - 1) / l.k
}

func (l layout) isParity(i int) bool { return i >= l.n }

// group returns the parity group of chunk i.
func (l layout) group(i int) int {
	if i < l.n {
		return i / l.k
	}
	return (i - l.n) / l.m
}

// dataOf returns the data chunks [lo, hi) of group g.
func (l layout) dataOf(g int) (lo, hi int) { return g * l.k, min((g+1)*l.k, l.n) }

// tree returns the tree that carries chunk i.
func (l layout) tree(i int) int {
	if l.m == 0 {
		return i % l.trees
	}
	p := i % l.k
	if i >= l.n {
		p = l.k + (i-l.n)%l.m
	}
	return (p + l.group(i)) % l.trees
}

// chunks lists the chunks tree s carries, in sending order. Cost O(chunks of the tree).
func (l layout) chunks(s int) []int {
	var out []int
	if l.m == 0 {
		for i := s; i < l.n; i += l.trees {
			out = append(out, i)
		}
		return out
	}
	for g := range l.groups() {
		p := ((s-g)%l.trees + l.trees) % l.trees
		switch {
		case p < l.k && g*l.k+p < l.n:
			out = append(out, g*l.k+p)
		case p >= l.k:
			out = append(out, l.n+g*l.m+p-l.k)
		}
	}
	return out
}

// coder encodes and decodes the parity groups of one object. Pieces are zero-padded to the
// chunk size; a short last group is padded with zero pieces.
type coder struct {
	l    layout
	size int // chunk size
	enc  reedsolomon.Encoder
}

func newCoder(l layout, chunkSize int) (*coder, error) {
	enc, err := reedsolomon.New(l.k, l.m)
	if err != nil {
		return nil, fmt.Errorf("transfer: reed-solomon %d+%d: %w", l.k, l.m, err)
	}
	return &coder{l: l, size: chunkSize, enc: enc}, nil
}

// shards returns group g's K+M shards: data pieces read with read (zero for a short group's
// missing ones), padded to the chunk size; a piece read returns as nil stays nil (missing,
// for a reconstruction); parity left nil. Cost: K chunk reads and copies.
func (c *coder) shards(g int, read func(i int) ([]byte, error)) ([][]byte, error) {
	sh := make([][]byte, c.l.k+c.l.m)
	lo, hi := c.l.dataOf(g)
	for p := range c.l.k {
		var d []byte
		if i := lo + p; i < hi {
			var err error
			if d, err = read(i); err != nil {
				return nil, err
			}
			if d == nil {
				continue
			}
		}
		buf := make([]byte, c.size)
		copy(buf, d)
		sh[p] = buf
	}
	return sh, nil
}

// parity computes group g's M parity pieces from its data. Cost: K chunk reads and one
// Reed-Solomon encode (about K*M*chunk size table look-ups, vectorised).
func (c *coder) parity(g int, read func(i int) ([]byte, error)) ([][]byte, error) {
	sh, err := c.shards(g, read)
	if err != nil {
		return nil, err
	}
	for j := range c.l.m {
		sh[c.l.k+j] = make([]byte, c.size)
	}
	if err := c.enc.Encode(sh); err != nil {
		return nil, fmt.Errorf("transfer: encode group %d: %w", g, err)
	}
	return sh[c.l.k:], nil
}

// parityManifest returns m with the parity c computes from the data chunks read gives: every
// group encoded once to hash its parity pieces. Cost: one read of the object and one encode
// of every group.
func parityManifest(m Manifest, c *coder, read func(i int) ([]byte, error)) (Manifest, error) {
	sm, err := store.ManifestFromProto(m.Proto())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrManifest, err)
	}
	par := &store.Parity{DataShards: c.l.k, ParityShards: c.l.m}
	for g := range c.l.groups() {
		pieces, err := c.parity(g, read)
		if err != nil {
			return nil, err
		}
		for _, p := range pieces {
			par.Hashes = append(par.Hashes, sm.Alg.Sum(p))
		}
	}
	sm.Parity = par
	if err := sm.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrManifest, err)
	}
	return StoreManifest{sm}, nil
}

// groupCache keeps the parity of the last few groups encoded (at a source, or at a relay that
// completed a group without its parity), so that the M parity trees (and repairs) reading the
// same group encode it once.
type groupCache struct {
	c     *coder
	read  func(i int) ([]byte, error)
	mu    sync.Mutex
	order []int
	cache map[int][][]byte
}

const groupCacheSize = 8

func newGroupCache(c *coder, read func(i int) ([]byte, error)) *groupCache {
	return &groupCache{c: c, read: read, cache: map[int][][]byte{}}
}

// chunk returns parity chunk i.
func (gc *groupCache) chunk(i int) ([]byte, error) {
	g := gc.c.l.group(i)
	gc.mu.Lock()
	defer gc.mu.Unlock()
	pieces, ok := gc.cache[g]
	if !ok {
		var err error
		if pieces, err = gc.c.parity(g, gc.read); err != nil {
			return nil, err
		}
		if len(gc.order) == groupCacheSize {
			delete(gc.cache, gc.order[0])
			gc.order = gc.order[1:]
		}
		gc.order = append(gc.order, g)
		gc.cache[g] = pieces
	}
	return pieces[(i-gc.c.l.n)%gc.c.l.m], nil
}
