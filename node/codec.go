package node

import (
	"fmt"
	"math/bits"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/treecast/treecast/node/transfer"
	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// The agent's gRPC data path: a codec and a buffer pool that keep the chunk bytes of a Push
// stream from being copied or cleared more than the wire needs.
//
// gRPC's default proto codec materializes every received message into a buffer of its
// default pool, then protobuf copies the bytes fields out of it; its pool clears a whole
// tier's buffer (1 MiB for a 64 KiB frame) on every Get, on both the sending and the
// receiving side. Per 64 KiB frame that was two copies and 2 MiB of clearing. Here:
//   - dirtyPool hands out buffers without clearing them (gRPC writes every byte it later
//     reads), in power-of-two tiers so a 64 KiB frame takes a 128 KiB buffer, not 1 MiB;
//   - chunkCodec decodes a PushRequest that carries a chunk frame by hand, and its Data
//     aliases the one buffer the message was assembled in (no second copy); every other
//     message goes through protobuf as before, and so does encoding (one copy into a pooled
//     buffer, which gRPC frees once written).

// The agent's gRPC server and client options for the data path: the codec and the pool
// below.
var (
	serverCodec = grpc.ForceServerCodecV2(chunkCodec{})
	serverPool  = experimental.BufferPool(sharedDirtyPool)
	clientCodec = grpc.WithDefaultCallOptions(grpc.ForceCodecV2(chunkCodec{}))
	clientPool  = experimental.WithBufferPool(sharedDirtyPool)
)

// Pool tiers: 2^minPoolShift to 2^maxPoolShift bytes; larger buffers are not pooled.
const (
	minPoolShift = 8
	maxPoolShift = 24
)

var sharedDirtyPool = newDirtyPool()

// dirtyPool is a mem.BufferPool of power-of-two tiers whose buffers are not cleared: Get
// returns a buffer of the asked length with whatever bytes it held before. Safe for
// concurrent use. Cost: O(1) per Get and Put, no clearing; memory is what the pools' users
// hold plus what sync.Pool keeps until the next GC.
type dirtyPool struct {
	tiers [maxPoolShift - minPoolShift + 1]sync.Pool
}

func newDirtyPool() *dirtyPool { return &dirtyPool{} }

// tier returns the tier index for a buffer of n bytes, or -1 when it is not pooled.
func tierOf(n int) int {
	if n > 1<<maxPoolShift {
		return -1
	}
	shift := max(bits.Len(uint(n-1)), minPoolShift)
	if n <= 1 {
		shift = minPoolShift
	}
	return shift - minPoolShift
}

// Get returns a buffer of length n (capacity the tier's size).
func (p *dirtyPool) Get(n int) *[]byte {
	t := tierOf(n)
	if t < 0 {
		b := make([]byte, n)
		return &b
	}
	if b, ok := p.tiers[t].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<(t+minPoolShift))
	return &b
}

// Put returns a buffer obtained from Get (or a prefix of it) to its tier.
func (p *dirtyPool) Put(b *[]byte) {
	c := cap(*b)
	if c < 1<<minPoolShift || c > 1<<maxPoolShift || c&(c-1) != 0 {
		return // not one of ours
	}
	*b = (*b)[:0]
	p.tiers[bits.Len(uint(c))-1-minPoolShift].Put(b)
}

var _ mem.BufferPool = (*dirtyPool)(nil)

// chunkCodec is gRPC's proto codec with the pool above, and a decoder for chunk frames that
// does not copy their bytes.
type chunkCodec struct{}

// Name is "proto": peers see the ordinary content type.
func (chunkCodec) Name() string { return "proto" }

// Marshal encodes v: a PushRequest carrying a chunk frame as a few header bytes and the
// frame's own bytes (no copy: the engine never modifies chunk bytes it has sent), anything else
// into one buffer of the dirty pool (small messages into a plain slice).
func (chunkCodec) Marshal(v any) (mem.BufferSlice, error) {
	if out, ok := v.(*pushFrameOut); ok {
		return out.marshal()
	}
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("node: codec: cannot marshal %T, not a proto message", v)
	}
	if req, ok := v.(*pb.PushRequest); ok {
		if c := req.GetChunk(); c != nil && len(c.GetData()) >= 4<<10 && len(c.ProtoReflect().GetUnknown()) == 0 {
			return encodeChunkRequest(c), nil
		}
	}
	size := proto.Size(m)
	opts := proto.MarshalOptions{UseCachedSize: true}
	if mem.IsBelowBufferPoolingThreshold(size) {
		b, err := opts.Marshal(m)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	buf := sharedDirtyPool.Get(size)
	out, err := opts.MarshalAppend((*buf)[:0], m)
	if err != nil {
		sharedDirtyPool.Put(buf)
		return nil, err
	}
	*buf = out
	return mem.BufferSlice{mem.NewBuffer(buf, sharedDirtyPool)}, nil
}

// Unmarshal decodes data into v. A PushRequest carrying a chunk frame is decoded by
// decodeChunkRequest, its Data aliasing a buffer of its own; anything else by protobuf.
func (chunkCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if in, ok := v.(*pushFrameIn); ok {
		if data.Len() >= 4<<10 {
			if fr, ok := decodeChunkFrame(data); ok {
				in.frame, in.isFrame = fr, true
				return nil
			}
		}
		in.req = &pb.PushRequest{}
		v = in.req
	}
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("node: codec: cannot unmarshal into %T, not a proto message", v)
	}
	if req, ok := v.(*pb.PushRequest); ok && data.Len() >= 64<<10 {
		b := data.Materialize() // the message's own buffer: chunk data may alias it
		if decodeChunkRequest(b, req) {
			return nil
		}
		return proto.Unmarshal(b, m)
	}
	buf := data.MaterializeToBuffer(sharedDirtyPool)
	defer buf.Free()
	return proto.Unmarshal(buf.ReadOnlyData(), m)
}

// decodeChunkRequest decodes b into req when b is a PushRequest holding exactly one chunk
// and nothing else protobuf would decode differently (each Chunk field at most once, no
// unknown fields): then req's Chunk.Data aliases b, and it returns true. Otherwise it returns
// false and leaves req alone (the caller decodes with protobuf, which reports errors).
// Cost: O(number of fields), no copy.
func decodeChunkRequest(b []byte, req *pb.PushRequest) bool {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || num != 2 || typ != protowire.BytesType {
		return false
	}
	body, m := protowire.ConsumeBytes(b[n:])
	if m < 0 || n+m != len(b) {
		return false
	}
	c := &pb.Chunk{}
	var seen [5]bool
	for len(body) > 0 {
		num, typ, n := protowire.ConsumeTag(body)
		if n < 0 || num < 1 || num > 4 || seen[num] {
			return false
		}
		seen[num] = true
		body = body[n:]
		switch {
		case num == 2 && typ == protowire.BytesType:
			d, k := protowire.ConsumeBytes(body)
			if k < 0 {
				return false
			}
			c.Data = d[:len(d):len(d)]
			body = body[k:]
		case num != 2 && typ == protowire.VarintType:
			x, k := protowire.ConsumeVarint(body)
			if k < 0 {
				return false
			}
			switch num {
			case 1:
				c.Index = x
			case 3:
				c.Offset = x
			case 4:
				c.More = protowire.DecodeBool(x)
			}
			body = body[k:]
		default:
			return false
		}
	}
	proto.Reset(req)
	req.Msg = &pb.PushRequest_Chunk{Chunk: c}
	return true
}

// encodeChunkRequest encodes PushRequest{chunk: c} (see encodeChunk), with c.Data as its own
// buffer after the bytes before it. Cost: O(1) besides a small slice.
func encodeChunkRequest(c *pb.Chunk) mem.BufferSlice {
	return encodeChunk(c.Index, c.Offset, c.More, mem.SliceBuffer(c.Data))
}

// encodeChunk encodes a PushRequest holding one chunk frame whose bytes are data. Every other
// field (index, offset, more) comes before the bytes, and the bytes end the message: valid
// protobuf in any field order, and a receiver that has read the first few bytes knows where
// the frame's bytes go before it reads them (the push wire reads them straight into the
// chunk's buffer).
func encodeChunk(index, offset uint64, more bool, data mem.Buffer) mem.BufferSlice {
	var fields []byte
	if index != 0 {
		fields = protowire.AppendVarint(protowire.AppendTag(fields, 1, protowire.VarintType), index)
	}
	if offset != 0 {
		fields = protowire.AppendVarint(protowire.AppendTag(fields, 3, protowire.VarintType), offset)
	}
	if more {
		fields = protowire.AppendVarint(protowire.AppendTag(fields, 4, protowire.VarintType), 1)
	}
	body := len(fields) + protowire.SizeTag(2) + protowire.SizeBytes(data.Len())
	head := make([]byte, 0, 40)
	head = protowire.AppendVarint(protowire.AppendTag(head, 2, protowire.BytesType), uint64(body))
	head = append(head, fields...)
	head = protowire.AppendVarint(protowire.AppendTag(head, 2, protowire.BytesType), uint64(data.Len()))
	return mem.BufferSlice{mem.SliceBuffer(head), data}
}

// pushFrameOut is what a parent's Push stream sends for a chunk frame: the codec encodes it as
// a PushRequest holding the chunk, and hands the frame's bytes to gRPC without a copy. When
// the frame has a pooled buffer, gRPC holds a reference to it until the bytes are written.
type pushFrameOut struct{ f transfer.Frame }

func (o *pushFrameOut) marshal() (mem.BufferSlice, error) {
	f := o.f
	if f.Index < 0 || f.Offset < 0 {
		return nil, fmt.Errorf("node: codec: frame of chunk %d at offset %d", f.Index, f.Offset)
	}
	if len(f.Data) < 4<<10 { // small: one copy is cheaper than the bookkeeping
		return chunkCodec{}.Marshal(&pb.PushRequest{Msg: &pb.PushRequest_Chunk{Chunk: &pb.Chunk{Index: uint64(f.Index), Data: f.Data,
			Offset: uint64(f.Offset), More: f.More}}})
	}
	var data mem.Buffer = mem.SliceBuffer(f.Data)
	if f.Buf != nil {
		f.Buf.Ref() // dropped by gRPC once the bytes are written
		d := f.Data
		data = mem.NewBuffer(&d, bufRelease{f.Buf})
	}
	return encodeChunk(uint64(f.Index), uint64(f.Offset), f.More, data), nil
}

// bufRelease is the mem.BufferPool of one pooled frame buffer: gRPC's Put, when the last of
// its references to the bytes is freed, drops the reference the encoder took.
type bufRelease struct{ b *transfer.Buf }

func (r bufRelease) Get(n int) *[]byte { b := make([]byte, n); return &b } // never called: gRPC only returns
func (r bufRelease) Put(*[]byte)       { r.b.Free() }

// pushFrameIn is what a child's Push stream receives into: a chunk frame decoded by
// decodeChunkFrame (its bytes in a pooled buffer), or any other PushRequest in req.
type pushFrameIn struct {
	frame   transfer.Frame
	isFrame bool
	req     *pb.PushRequest
}

// decodeChunkFrame decodes a PushRequest holding exactly one chunk frame (each Chunk field at
// most once, no unknown fields), reading its few header bytes in place and copying the chunk's
// bytes once, from gRPC's receive buffers into a pooled buffer (the frame's Buf). It returns
// false for anything else, which the caller decodes with protobuf. Cost: one copy of the
// frame's bytes, O(1) otherwise.
func decodeChunkFrame(data mem.BufferSlice) (transfer.Frame, bool) {
	total := data.Len()
	var headBuf [48]byte
	head := headBuf[:min(total, len(headBuf))]
	copyAt(data, 0, head)
	fr, dataStart, dataLen, seen, ok := chunkFrameHead(head, total)
	if !ok {
		return transfer.Frame{}, false
	}
	end := dataStart + dataLen
	if total-end > 32 { // more than the few fields that may follow the bytes
		return transfer.Frame{}, false
	}
	var tailBuf [32]byte
	tail := tailBuf[:total-end]
	copyAt(data, end, tail)
	for at := 0; at < len(tail); { // a second bytes field fails as seen twice
		k := chunkField(tail[at:], &fr, &seen)
		if k <= 0 {
			return transfer.Frame{}, false
		}
		at += k
	}
	fr.Buf = transfer.NewBuf(dataLen)
	copyAt(data, dataStart, fr.Buf.B)
	fr.Data = fr.Buf.B
	return fr, true
}

// chunkFrameHead decodes the start of a PushRequest of total bytes holding one chunk frame,
// of which head holds the first bytes: the fields before the chunk's bytes (each at most
// once, no unknown ones). It returns them in fr, where the bytes start and how many there
// are, and which fields it saw; false when head does not reach the bytes or holds anything
// else. Cost: O(len(head)).
func chunkFrameHead(head []byte, total int) (fr transfer.Frame, dataStart, dataLen int, seen [5]bool, ok bool) {
	num, typ, n := protowire.ConsumeTag(head)
	if n < 0 || num != 2 || typ != protowire.BytesType {
		return fr, 0, 0, seen, false
	}
	bodyLen, m := protowire.ConsumeVarint(head[n:])
	if m < 0 || uint64(n+m)+bodyLen != uint64(total) {
		return fr, 0, 0, seen, false
	}
	for pos := n + m; pos < len(head); {
		if num, typ, k := protowire.ConsumeTag(head[pos:]); k > 0 && num == 2 && typ == protowire.BytesType && !seen[2] {
			l, j := protowire.ConsumeVarint(head[pos+k:])
			if j < 0 || l > uint64(total-(pos+k+j)) {
				return fr, 0, 0, seen, false
			}
			seen[2] = true
			return fr, pos + k + j, int(l), seen, true
		}
		k := chunkField(head[pos:], &fr, &seen)
		if k <= 0 {
			return fr, 0, 0, seen, false
		}
		pos += k
	}
	return fr, 0, 0, seen, false
}

// chunkField decodes one of a Chunk's varint fields (index, offset, more) at the start of b
// into fr and returns its length: 0 or less for anything else, a field seen before, or a
// value out of bounds.
func chunkField(b []byte, fr *transfer.Frame, seen *[5]bool) int {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || typ != protowire.VarintType || (num != 1 && num != 3 && num != 4) || seen[num] {
		return -1
	}
	seen[num] = true
	x, k := protowire.ConsumeVarint(b[n:])
	if k < 0 {
		return -1
	}
	switch num {
	case 1:
		if x > 1<<40 {
			return -1
		}
		fr.Index = int(x)
	case 3:
		if x > MaxChunkSize {
			return -1
		}
		fr.Offset = int(x)
	case 4:
		fr.More = protowire.DecodeBool(x)
	}
	return n + k
}

// copyAt copies bytes of data from offset off into dst (as many as dst holds).
func copyAt(data mem.BufferSlice, off int, dst []byte) {
	for _, b := range data {
		if len(dst) == 0 {
			return
		}
		bs := b.ReadOnlyData()
		if off >= len(bs) {
			off -= len(bs)
			continue
		}
		n := copy(dst, bs[off:])
		dst, off = dst[n:], 0
	}
}
