package transfer

import "context"

// decodeLag is how many groups a tree's piece may trail the group now arriving before the
// receiver stops waiting for it and decodes. It bounds the parity chunks held in memory to
// about decodeLag*M.
const decodeLag = 8

// decodeBehind decodes group g if a tree that owes it a piece is orphaned, and group
// g-decodeLag whatever its trees: a piece that far behind the others is late (a slow or
// stalled parent).
func (t *receiver) decodeBehind(ctx context.Context, g int) {
	t.decode(ctx, g, false)
	if h := g - decodeLag; h >= 0 {
		t.decode(ctx, h, true)
	}
}

// sweep decodes every group that can be: when a tree is orphaned, or has delivered all its
// pieces (the groups still missing data then wait only for slower trees). Cost O(groups).
func (t *receiver) sweep(ctx context.Context) {
	for g := range t.lay.groups() {
		t.decode(ctx, g, true)
	}
}

// decode rebuilds the missing data chunks of group g once it holds K of its pieces, when
// force is set or a tree that owes the group a missing piece is orphaned (otherwise the piece
// is on its way, and decoding would only make it a duplicate). Decoded chunks are verified
// against the manifest like received ones, written, and forwarded down their own tree, so the
// subtree below a broken tree keeps receiving. A decoded chunk that fails verification is
// dropped (counted, logged): its own tree may still bring it. Cost: K chunk reads and one
// Reed-Solomon reconstruction.
func (t *receiver) decode(ctx context.Context, g int, force bool) {
	l := t.lay
	lo, hi := l.dataOf(g)
	t.mu.Lock()
	if t.decoding[g] || t.groupDoneLocked(g) {
		if t.groupDoneLocked(g) {
			t.dropParityLocked(g)
		}
		t.mu.Unlock()
		return
	}
	have := l.k - (hi - lo) // a short group's missing pieces are zeros
	var missing []int
	for i := lo; i < hi; i++ {
		if bitGet(t.held, i) {
			have++
		} else {
			missing = append(missing, i)
		}
	}
	par := make([][]byte, l.m)
	var parBufs []*Buf // references to the pieces' buffers, dropped once decoded
	for j := range l.m {
		if p, ok := t.parity[l.n+g*l.m+j]; ok {
			par[j] = p.data
			parBufs = append(parBufs, p.buf)
			have++
		}
	}
	orphaned := false
	for _, i := range missing {
		s := l.tree(i)
		orphaned = orphaned || t.started[s] && t.claims[s] == nil
	}
	if have < l.k || !force && !orphaned {
		t.mu.Unlock()
		return
	}
	t.decoding[g] = true
	for _, b := range parBufs {
		b.Ref()
	}
	t.mu.Unlock()
	defer func() {
		for _, b := range parBufs {
			b.Free()
		}
		t.mu.Lock()
		t.decoding[g] = false
		if t.groupDoneLocked(g) {
			t.dropParityLocked(g)
		}
		t.mu.Unlock()
	}()

	miss := map[int]bool{}
	for _, i := range missing {
		miss[i] = true
	}
	sh, err := t.code.shards(g, func(i int) ([]byte, error) {
		if miss[i] {
			return nil, nil
		}
		return t.partial.ReadChunk(i)
	})
	if err != nil {
		t.e.log.Warn("decode: reading group", "transfer", t.id, "group", g, "err", err)
		return
	}
	copy(sh[l.k:], par)
	if err := t.code.enc.ReconstructData(sh); err != nil {
		t.e.log.Warn("decode failed", "transfer", t.id, "group", g, "err", err)
		return
	}
	for _, i := range missing {
		data := sh[i-lo][:t.smf.ChunkLen(i)]
		if err := t.partial.WriteChunk(i, data); err != nil {
			t.e.m.chunksBad.Inc()
			t.e.log.Warn("decoded chunk rejected", "transfer", t.id, "chunk", i, "err", err)
			continue
		}
		t.e.m.chunksDecoded.Inc()
		t.mu.Lock()
		t.decoded++
		t.mu.Unlock()
		if err := t.accept(ctx, i, data, nil); err != nil {
			return
		}
	}
}

// dropParityLocked forgets group g's parity chunks: the group is complete, and its parity can
// be encoded again from the data if a child still needs it.
func (t *receiver) dropParityLocked(g int) {
	for j := range t.lay.m {
		i := t.lay.n + g*t.lay.m + j
		if p, ok := t.parity[i]; ok {
			p.buf.Free()
			delete(t.parity, i)
		}
	}
}

// dropAllParityLocked forgets every parity chunk kept: the transfer is over.
func (t *receiver) dropAllParityLocked() {
	for i, p := range t.parity {
		p.buf.Free()
		delete(t.parity, i)
	}
}
