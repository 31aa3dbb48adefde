package transfer

// A Placer tells a [PlacingDownstream]'s reader where the bytes of the chunk frames it reads
// go before it reads them: into the buffer of the chunk they belong to. A receiver then
// copies a frame's bytes once, from the socket into the chunk, instead of into a buffer of
// the frame's and then into the chunk's. The receiver makes one per stream; the reader alone
// calls Place and Close, one call at a time.
type Placer struct {
	stripe int
	lay    layout
	size   func(i int) int // the length of chunk i
	cur    *Buf            // the chunk being placed (the placer's reference); nil between chunks
	index  int             // cur's chunk
	next   int             // the offset cur's next frame must have
}

// PlacingDownstream is a Downstream whose reader can read frames' bytes into place.
type PlacingDownstream interface {
	Downstream
	// SetPlacer hands the stream's reader p for the frames it reads from now on (frames
	// already read ahead keep buffers of their own). A stream that cannot place frames
	// ignores it (its reader copies them as usual).
	SetPlacer(p *Placer)
}

// newPlacer returns a Placer for the frames of stripe s of the receiver's transfer.
func (t *receiver) newPlacer(s int) *Placer {
	return &Placer{stripe: s, lay: t.lay, size: t.smf.ChunkLen}
}

// Place returns where the n bytes of the frame of chunk index at offset go (more: frames of
// the chunk follow) and the pooled buffer that holds them, with a reference for the frame:
// the reader reads the bytes into dst and returns a frame whose Data is dst, whose Buf is buf
// and whose Placed is set. A frame at offset 0 starts a chunk in a new buffer of the chunk's
// size (dropping one left unfinished: its sender gave it up); a later frame must continue
// the chunk placed last. For any other frame (a chunk of another stripe or out of range,
// bytes past the chunk's end, a frame that does not continue the chunk) Place returns nil,
// nil and the reader reads the frame into a buffer of its own: the receiver checks it as any
// other and refuses it. Cost O(1), and one buffer of the chunk's size per chunk.
func (p *Placer) Place(index, offset, n int, more bool) (dst []byte, buf *Buf) {
	if offset == 0 {
		if index < 0 || index >= p.lay.total() || p.lay.tree(index) != p.stripe || n > p.size(index) {
			return nil, nil
		}
		p.Close()
		p.cur, p.index, p.next = NewBuf(p.size(index)), index, 0
	}
	if p.cur == nil || index != p.index || offset != p.next || n < 0 || n > len(p.cur.B)-offset {
		return nil, nil
	}
	buf = p.cur
	buf.Ref()
	p.next = offset + n
	if !more {
		p.Close() // the frame's reference keeps the buffer
	}
	return buf.B[offset : offset+n : offset+n], buf
}

// Close drops the placer's reference to the chunk it was placing, if any. The reader calls
// it when it stops reading.
func (p *Placer) Close() {
	if p.cur != nil {
		p.cur.Free()
		p.cur = nil
	}
}

// NewPlacer returns a Placer for stripe s of an object of n chunks, whose lengths size gives,
// pushed on a plan of the given number of stripes without parity. A receiver makes its own;
// this one is for the tests of a PlacingDownstream.
func NewPlacer(s, stripes, n int, size func(i int) int) *Placer {
	return &Placer{stripe: s, lay: layout{trees: max(stripes, 1), n: n}, size: size}
}
