package node

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/treecast/treecast/node/transfer"
	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// checkChunkDecoder decodes b with decodeChunkRequest and with protobuf and fails unless they
// agree: the hand decoder either declines or gives the message protobuf gives.
func checkChunkDecoder(t *testing.T, b []byte) bool {
	t.Helper()
	var fast, ref pb.PushRequest
	ok := decodeChunkRequest(b, &fast)
	refErr := proto.Unmarshal(b, &ref)
	if !ok {
		return false
	}
	if refErr != nil {
		t.Fatalf("hand decoder accepted %x, protobuf says %v", b, refErr)
	}
	if !proto.Equal(&fast, &ref) {
		t.Fatalf("hand decoder gives %v, protobuf %v", &fast, &ref)
	}
	return true
}

func TestChunkDecoder(t *testing.T) {
	data := bytes.Repeat([]byte{1, 2, 3}, 30000)
	for _, c := range []*pb.Chunk{
		{Index: 7, Data: data, Offset: 65536, More: true},
		{Index: 0, Data: data},
		{Index: 1 << 40, Data: data[:1], Offset: 3},
		{Index: 3},
	} {
		b, err := proto.Marshal(&pb.PushRequest{Msg: &pb.PushRequest_Chunk{Chunk: c}})
		if err != nil {
			t.Fatal(err)
		}
		if !checkChunkDecoder(t, b) {
			t.Fatalf("declined a chunk frame %v", c)
		}
		// The data aliases the message: no copy.
		var req pb.PushRequest
		decodeChunkRequest(b, &req)
		if d := req.GetChunk().GetData(); len(d) > 0 && &d[0] != &b[len(b)-len(d)-chunkTail(c)] {
			t.Fatal("chunk data was copied")
		}
	}
	hdr, _ := proto.Marshal(&pb.PushRequest{Msg: &pb.PushRequest_Header{Header: &pb.PushHeader{TransferId: "x"}}})
	end, _ := proto.Marshal(&pb.PushRequest{Msg: &pb.PushRequest_End{End: &pb.PushEnd{}}})
	frame, _ := proto.Marshal(&pb.PushRequest{Msg: &pb.PushRequest_Chunk{Chunk: &pb.Chunk{Index: 1, Data: data}}})
	unknown := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.VarintType), 1))
	twice := append(append([]byte(nil), frame...), frame...)
	for name, b := range map[string][]byte{"header": hdr, "end": end, "unknown field": unknown, "two chunks": twice, "truncated": frame[:len(frame)-1]} {
		if checkChunkDecoder(t, b) {
			t.Fatalf("%s: the hand decoder should leave it to protobuf", name)
		}
	}
}

// chunkTail is how many encoded bytes follow Data in a marshalled chunk (offset and more).
func chunkTail(c *pb.Chunk) int {
	n := 0
	if c.Offset != 0 {
		n += 1 + protowire.SizeVarint(c.Offset)
	}
	if c.More {
		n += 2
	}
	return n
}

func FuzzChunkDecoder(f *testing.F) {
	for _, c := range []*pb.Chunk{{Index: 7, Data: []byte("abc"), Offset: 5, More: true}, {}} {
		b, _ := proto.Marshal(&pb.PushRequest{Msg: &pb.PushRequest_Chunk{Chunk: c}})
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkChunkDecoder(t, b) })
}

// TestCodecRoundTrip sends messages through the codec as gRPC would: marshal, split into
// several buffers, unmarshal.
func TestCodecRoundTrip(t *testing.T) {
	data := bytes.Repeat([]byte("treecast"), 20000)
	for _, m := range []proto.Message{
		&pb.PushRequest{Msg: &pb.PushRequest_Chunk{Chunk: &pb.Chunk{Index: 9, Data: data, Offset: 1 << 20, More: true}}},
		&pb.PushRequest{Msg: &pb.PushRequest_Header{Header: &pb.PushHeader{TransferId: "t", Plan: data}}},
		&pb.FetchResponse{Msg: &pb.FetchResponse_Chunk{Chunk: &pb.Chunk{Index: 2, Data: data}}},
		&pb.StatusRequest{},
	} {
		bs, err := chunkCodec{}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		flat := bs.Materialize()
		bs.Free()
		var split mem.BufferSlice
		for len(flat) > 0 {
			n := min(len(flat), 16<<10)
			split = append(split, mem.SliceBuffer(flat[:n]))
			flat = flat[n:]
		}
		got := m.ProtoReflect().New().Interface()
		if err := (chunkCodec{}).Unmarshal(split, got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, m) {
			t.Fatalf("round trip of %T differs", m)
		}
	}
}

// TestChunkEncoder: a chunk frame encodes as a PushRequest that protobuf decodes to the same
// message, with every field before the frame's bytes and the bytes last (the push wire reads
// them into place after the first few bytes), and the data not copied.
func TestChunkEncoder(t *testing.T) {
	data := bytes.Repeat([]byte{9, 8, 7}, 3000)
	for _, c := range []*pb.Chunk{
		{Index: 7, Data: data, Offset: 65536, More: true},
		{Index: 0, Data: data},
		{Index: 1 << 40, Data: data, Offset: 3},
		{Index: 5, Data: data, More: true},
	} {
		req := &pb.PushRequest{Msg: &pb.PushRequest_Chunk{Chunk: c}}
		bs, err := chunkCodec{}.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		got := bs.Materialize()
		var back pb.PushRequest
		if err := proto.Unmarshal(got, &back); err != nil || !proto.Equal(&back, req) {
			t.Fatalf("%v: protobuf decodes the encoding to %v (%v)", c.GetIndex(), back.GetChunk().GetIndex(), err)
		}
		if !bytes.Equal(got[len(got)-len(data):], data) {
			t.Fatalf("chunk %d: the frame's bytes do not end the message", c.GetIndex())
		}
		fr, start, n, _, ok := chunkFrameHead(got[:min(len(got), 48)], len(got))
		if !ok || start+n != len(got) || fr.Index != int(c.GetIndex()) || fr.Offset != int(c.GetOffset()) || fr.More != c.GetMore() {
			t.Fatalf("chunk %d: head decodes to %+v, bytes at %d+%d of %d (%v)", c.GetIndex(), fr, start, n, len(got), ok)
		}
		shared := false
		for _, b := range bs {
			if d := b.ReadOnlyData(); len(d) == len(data) && &d[0] == &data[0] {
				shared = true
			}
		}
		if !shared {
			t.Fatal("the frame's data was copied")
		}
	}
}

func TestDirtyPool(t *testing.T) {
	p := newDirtyPool()
	for _, n := range []int{0, 1, 255, 256, 257, 64 << 10, 64<<10 + 20, 1 << 24, 1<<24 + 1} {
		b := p.Get(n)
		if len(*b) != n || cap(*b) < n {
			t.Fatalf("Get(%d): len %d cap %d", n, len(*b), cap(*b))
		}
		if n > 256 && n <= 1<<24 && cap(*b) >= 2*n {
			t.Fatalf("Get(%d): capacity %d, want the next power of two", n, cap(*b))
		}
		p.Put(b)
	}
}

// checkFrameDecoder decodes b, split into gRPC-sized buffers at split, with decodeChunkFrame
// and with protobuf, and fails unless they agree: the frame decoder either declines or gives
// the chunk protobuf gives, its bytes in a pooled buffer.
func checkFrameDecoder(t *testing.T, b []byte, split int) bool {
	t.Helper()
	var bs mem.BufferSlice
	for rest := b; len(rest) > 0; {
		n := min(len(rest), max(split, 1))
		bs = append(bs, mem.SliceBuffer(rest[:n]))
		rest = rest[n:]
	}
	fr, ok := decodeChunkFrame(bs)
	var ref pb.PushRequest
	refErr := proto.Unmarshal(b, &ref)
	if !ok {
		return false
	}
	defer fr.Buf.Free()
	c := ref.GetChunk()
	if refErr != nil || c == nil {
		t.Fatalf("frame decoder accepted %x, protobuf says %v (%v)", b[:min(len(b), 40)], refErr, &ref)
	}
	if uint64(fr.Index) != c.GetIndex() || uint64(fr.Offset) != c.GetOffset() || fr.More != c.GetMore() || !bytes.Equal(fr.Data, c.GetData()) {
		t.Fatalf("frame decoder gives chunk %d at %d more %v (%d bytes), protobuf %d at %d more %v (%d bytes)",
			fr.Index, fr.Offset, fr.More, len(fr.Data), c.GetIndex(), c.GetOffset(), c.GetMore(), len(c.GetData()))
	}
	if fr.Buf == nil || &fr.Data[0] != &fr.Buf.B[0] {
		t.Fatal("the frame's bytes are not in its pooled buffer")
	}
	return true
}

func TestFrameDecoder(t *testing.T) {
	data := bytes.Repeat([]byte{1, 2, 3}, 30000)
	for _, c := range []*pb.Chunk{
		{Index: 7, Data: data, Offset: 65536, More: true},
		{Index: 0, Data: data},
		{Index: 1 << 40, Data: data[:5000], Offset: 3},
		{Index: 12, Data: data[:4096], More: true},
	} {
		b, err := proto.Marshal(&pb.PushRequest{Msg: &pb.PushRequest_Chunk{Chunk: c}})
		if err != nil {
			t.Fatal(err)
		}
		for _, split := range []int{1, 3, 16 << 10, len(b)} {
			if !checkFrameDecoder(t, b, split) {
				t.Fatalf("declined a chunk frame %v split at %d", c, split)
			}
		}
	}
	hdr, _ := proto.Marshal(&pb.PushRequest{Msg: &pb.PushRequest_Header{Header: &pb.PushHeader{TransferId: "x", Plan: data}}})
	frame, _ := proto.Marshal(&pb.PushRequest{Msg: &pb.PushRequest_Chunk{Chunk: &pb.Chunk{Index: 1, Data: data}}})
	twice := append(append([]byte(nil), frame...), frame...)
	big := proto.Uint64(1 << 41)
	tooBig, _ := proto.Marshal(&pb.PushRequest{Msg: &pb.PushRequest_Chunk{Chunk: &pb.Chunk{Index: *big, Data: data}}})
	for name, b := range map[string][]byte{"header": hdr, "two chunks": twice, "truncated": frame[:len(frame)-1], "index past 2^40": tooBig} {
		if checkFrameDecoder(t, b, 16<<10) {
			t.Fatalf("%s: the frame decoder should leave it to protobuf", name)
		}
	}
}

func FuzzFrameDecoder(f *testing.F) {
	for _, c := range []*pb.Chunk{{Index: 7, Data: bytes.Repeat([]byte("abc"), 2000), Offset: 5, More: true}, {}} {
		b, _ := proto.Marshal(&pb.PushRequest{Msg: &pb.PushRequest_Chunk{Chunk: c}})
		f.Add(b, 7)
	}
	f.Fuzz(func(t *testing.T, b []byte, split int) { checkFrameDecoder(t, b, split%(1<<16)) })
}

// TestFrameEncoderRefs: a frame in a pooled buffer is encoded without a copy, and the buffer
// stays referenced until gRPC frees what the codec gave it.
func TestFrameEncoderRefs(t *testing.T) {
	buf := transfer.NewBuf(64 << 10)
	for i := range buf.B {
		buf.B[i] = byte(i)
	}
	out := &pushFrameOut{f: transfer.Frame{Index: 3, Offset: 128 << 10, Data: buf.B, More: true, Buf: buf}}
	bs, err := chunkCodec{}.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	buf.Free() // the sender's reference: the encoded message still holds one
	want := &pb.PushRequest{Msg: &pb.PushRequest_Chunk{Chunk: &pb.Chunk{Index: 3, Data: buf.B, Offset: 128 << 10, More: true}}}
	var got pb.PushRequest
	if err := proto.Unmarshal(bs.Materialize(), &got); err != nil || !proto.Equal(&got, want) {
		t.Fatalf("a pooled frame does not decode to its chunk: %v", err)
	}
	var in pushFrameIn
	if err := (chunkCodec{}).Unmarshal(bs, &in); err != nil || !in.isFrame || in.frame.Index != 3 || !bytes.Equal(in.frame.Data, buf.B) {
		t.Fatalf("round trip: err %v, frame %v", err, in.isFrame)
	}
	in.frame.Buf.Free()
	bs.Free() // gRPC's free once written: the last reference, no panic
	defer func() {
		if recover() == nil {
			t.Fatal("the buffer was still referenced after gRPC freed the message")
		}
	}()
	buf.Free()
}

// TestRawReadPlaced: on the push wire, the chunk frames a Placer places are read straight
// into their chunk's buffer (one buffer per chunk, each frame's bytes at its offset, the
// bytes the sender sent), and every other message (not a frame, a chunk of another stripe,
// a frame that does not continue its chunk, bytes past the chunk's end) arrives in a buffer
// of its own, intact.
func TestRawReadPlaced(t *testing.T) {
	const frame = 16 << 10
	sizes := []int{3 * frame, frame + 100, 2 * frame}    // chunks 0 and 2 in stripe 0, 1 in stripe 1
	object := make([]byte, sizes[0]+sizes[1]+sizes[2]+1) // a byte past the end for the frame too long
	for i := range object {
		object[i] = byte(i*31 + i>>8)
	}
	start := func(i int) int {
		s := 0
		for _, n := range sizes[:i] {
			s += n
		}
		return s
	}
	type msg struct {
		index, offset, n int
		more, placed     bool
	}
	msgs := []msg{
		{0, 0, frame, true, true},
		{0, frame, frame, true, true},
		{1, 0, sizes[1], false, false},     // stripe 1
		{0, frame, frame, true, false},     // does not continue chunk 0
		{0, 2 * frame, frame, false, true}, // its end
		{2, 0, frame, true, true},
		{2, frame, frame + 1, false, false}, // one byte past chunk 2
	}
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	go func() {
		w := newRawConn(client, bufio.NewReader(client), nil, 1<<20)
		_ = w.write(0, encodeHeaderForTest())
		for _, m := range msgs {
			data := object[start(m.index)+m.offset:][:m.n]
			_ = w.write(0, encodeChunk(uint64(m.index), uint64(m.offset), m.more, mem.SliceBuffer(data)))
		}
	}()
	r := newRawConn(server, newRawReader(server), nil, 1<<20)
	p := transfer.NewPlacer(0, 2, len(sizes), func(i int) int { return sizes[i] })
	defer p.Close()
	if _, b, fr, err := r.readPlaced(p); err != nil || fr != nil || b == nil {
		t.Fatalf("a header: frame %v, buffer %v, %v", fr != nil, b != nil, err)
	} else {
		b.Free()
	}
	chunkBuf := map[int]*transfer.Buf{}
	for _, m := range msgs {
		_, b, fr, err := r.readPlaced(p)
		if err != nil {
			t.Fatal(err)
		}
		want := object[start(m.index)+m.offset:][:m.n]
		if !m.placed {
			if fr != nil || b == nil {
				t.Fatalf("%+v: placed", m)
			}
			got, ok := parseChunkFrame(b.B)
			if !ok || !bytes.Equal(got.Data, want) {
				t.Fatalf("%+v: the message in its own buffer does not hold the frame", m)
			}
			b.Free()
			continue
		}
		if fr == nil || b != nil || !fr.Placed {
			t.Fatalf("%+v: not placed", m)
		}
		if fr.Index != m.index || fr.Offset != m.offset || fr.More != m.more || !bytes.Equal(fr.Data, want) {
			t.Fatalf("%+v: frame %d at %d (more %v) of %d bytes, or other bytes", m, fr.Index, fr.Offset, fr.More, len(fr.Data))
		}
		if len(fr.Buf.B) != sizes[m.index] || &fr.Data[0] != &fr.Buf.B[m.offset] {
			t.Fatalf("%+v: not at its offset in a buffer of the chunk's size", m)
		}
		if prev, ok := chunkBuf[m.index]; ok && prev != fr.Buf {
			t.Fatalf("%+v: a second buffer for one chunk", m)
		}
		chunkBuf[m.index] = fr.Buf
		fr.Buf.Free()
	}
}

// encodeHeaderForTest encodes a PushRequest that is not a chunk frame.
func encodeHeaderForTest() mem.BufferSlice {
	b, _ := proto.Marshal(&pb.PushRequest{Msg: &pb.PushRequest_End{End: &pb.PushEnd{}}})
	return mem.BufferSlice{mem.SliceBuffer(b)}
}

// countConn counts the writes that reach it and what they carried.
type countConn struct {
	net.Conn
	writes int
	got    []byte
}

func (c *countConn) Close() error { return nil }

func (c *countConn) Write(p []byte) (int, error) {
	c.writes++
	c.got = append(c.got, p...)
	return len(p), nil
}

// TestFlushConnGathers: between hold and flush, the 16 KiB records TLS would write one by one
// reach the connection in writes of at most flushConnMax, in order; outside them every
// write goes straight through.
func TestFlushConnGathers(t *testing.T) {
	cc := &countConn{}
	fc := &flushConn{Conn: cc}
	defer fc.Close() // its buffer back to the pool
	var want []byte
	put := func(n int) {
		p := bytes.Repeat([]byte{byte(len(want))}, n)
		want = append(want, p...)
		if _, err := fc.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	put(100) // a handshake's write: through at once
	if cc.writes != 1 {
		t.Fatalf("a write outside hold: %d writes", cc.writes)
	}
	fc.hold()
	for range 20 { // 320 KiB of records
		put(16 << 10)
	}
	if cc.writes != 2 {
		t.Fatalf("before the flush: %d writes, want 2 (one of 256 KiB gathered)", cc.writes)
	}
	if err := fc.flush(); err != nil {
		t.Fatal(err)
	}
	if cc.writes != 3 {
		t.Fatalf("after the flush: %d writes, want 3", cc.writes)
	}
	fc.hold()
	put(flushConnMax + 1) // larger than the buffer: straight through
	if err := fc.flush(); err != nil {
		t.Fatal(err)
	}
	put(10)
	if cc.writes != 5 || !bytes.Equal(cc.got, want) {
		t.Fatalf("%d writes, bytes in order %v", cc.writes, bytes.Equal(cc.got, want))
	}
}

// readCountConn serves data in reads of at most the caller's length, counting them.
type readCountConn struct {
	net.Conn
	data  *bytes.Reader
	reads int
}

func (c *readCountConn) Read(p []byte) (int, error) {
	c.reads++
	return c.data.Read(p)
}

func (c *readCountConn) Close() error { return nil }

// TestBufReadConn: before buffer, every read of crypto/tls reaches the socket; after it, the
// small reads TLS makes come from one socket read of up to rawTLSReadBuf bytes, in order.
func TestBufReadConn(t *testing.T) {
	data := make([]byte, 3*rawTLSReadBuf/2)
	for i := range data {
		data[i] = byte(i * 7)
	}
	rc := &readCountConn{data: bytes.NewReader(data)}
	bc := &bufReadConn{Conn: rc}
	var got []byte
	p := make([]byte, 5<<10) // about what crypto/tls asks for a record
	read := func() {
		n, err := bc.Read(p)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p[:n]...)
	}
	read()
	read()
	if rc.reads != 2 {
		t.Fatalf("unbuffered: %d socket reads for 2 reads", rc.reads)
	}
	bc.buffer()
	for len(got) < len(data) {
		read()
	}
	if rc.reads != 4 || !bytes.Equal(got, data) {
		t.Fatalf("buffered: %d socket reads in all (want 4: 2 before, then %d bytes in 2), bytes in order %v",
			rc.reads, len(data)-2*len(p), bytes.Equal(got, data))
	}
	// Closed, it gives its buffer back to the pool (the next one of its size) and reads no more.
	buf := bc.buf
	if err := bc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := bc.Read(p); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a read after Close: %v", err)
	}
	checkPooled(t, buf, "the read buffer")
}

// checkPooled fails unless buf went back to the pool: the next buffer of its size is it.
func checkPooled(t *testing.T, buf *transfer.Buf, what string) {
	t.Helper()
	next := transfer.NewBuf(len(buf.B))
	defer next.Free()
	if next != buf {
		t.Fatalf("%s did not go back to the pool", what)
	}
}

// TestFlushConnClose: Close ends a write blocked on the connection, and only then gives the
// gathering buffer back to the pool; writes after it fail.
func TestFlushConnClose(t *testing.T) {
	client, server := net.Pipe() // a write blocks until the other end reads
	defer server.Close()
	fc := &flushConn{Conn: client}
	fc.hold()
	if _, err := fc.Write(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	buf := fc.buf
	if buf == nil {
		t.Fatal("no buffer after a held write")
	}
	werr := make(chan error, 1)
	go func() {
		_, err := fc.Write(make([]byte, flushConnMax)) // flushes the 100 bytes first: blocks
		werr <- err
	}()
	// Read one byte: the flush is under way (and holds the buffer) when Close comes.
	if _, err := io.ReadFull(server, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if err := fc.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-werr:
		if err == nil {
			t.Fatal("the blocked write succeeded on a closed connection")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the blocked write")
	}
	if _, err := fc.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a write after Close: %v", err)
	}
	checkPooled(t, buf, "the gathering buffer")
}

// TestFlushConnCloseWhileHeld closes a connection between a gathered write and its flush (a
// stream cut while a frame's records are being gathered): the flush fails with
// net.ErrClosed and touches no buffer.
func TestFlushConnCloseWhileHeld(t *testing.T) {
	fc := &flushConn{Conn: &countConn{}}
	fc.hold()
	if _, err := fc.Write(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	buf := fc.buf
	if err := fc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fc.flush(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a flush after Close: %v, want net.ErrClosed", err)
	}
	if err := fc.flush(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a second flush after Close: %v, want net.ErrClosed", err)
	}
	checkPooled(t, buf, "the gathering buffer")
}

// BenchmarkRawReadPlaced reads chunk frames from a TCP connection on loopback with the push
// wire's reader, placing them into their chunks, as a child does (512 KiB chunks in frames
// of 64 KiB and 1 MiB chunks in frames of 256 KiB).
func BenchmarkRawReadPlaced(b *testing.B) {
	for _, c := range []struct{ chunk, frame int }{{512 << 10, 64 << 10}, {4 << 20, 256 << 10}} {
		b.Run(fmt.Sprintf("frame=%dKiB", c.frame>>10), func(b *testing.B) {
			const chunks = 64
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			data := make([]byte, c.chunk)
			go func() {
				conn, err := l.Accept()
				if err != nil {
					return
				}
				defer conn.Close()
				w := newRawConn(conn, newRawReader(conn), nil, 8<<20)
				for i := 0; ; i++ {
					for off := 0; off < c.chunk; off += c.frame {
						if w.write(0, encodeChunk(uint64(i%chunks), uint64(off), off+c.frame < c.chunk, mem.SliceBuffer(data[off:off+c.frame]))) != nil {
							return
						}
					}
				}
			}()
			conn, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			r := newRawConn(conn, newRawReader(conn), nil, 8<<20)
			p := transfer.NewPlacer(0, 1, chunks, func(int) int { return c.chunk })
			defer p.Close()
			b.SetBytes(int64(c.frame))
			for b.Loop() {
				_, buf, fr, err := r.readPlaced(p)
				if err != nil || fr == nil {
					b.Fatalf("frame %v, %v", fr != nil, err)
				}
				buf.Free()
				fr.Buf.Free()
			}
		})
	}
}
