package node

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/treecast/treecast/node/transfer"
	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// The Push stream's own wire: chunks travel between agents on a connection of their own, not
// as gRPC messages. gRPC splits every message into 16 KiB HTTP/2 frames, copies each frame
// out of its read buffer, hands it from its reader goroutine to the stream's, and copies the
// frames it sends into its write buffer: four copies and two goroutine hand-offs per hop that
// a relay pays on every byte. The raw wire reads a chunk frame from the socket straight into a
// pooled buffer and writes frames from the chunk's own buffer (writev), with nothing between.
//
// It is the same Push RPC, on the same port: a client opens a TCP connection to the agent's
// gRPC address and, with TLS, negotiates the ALPN protocol rawALPN instead of "h2" (without
// TLS it sends rawMagic, 24 bytes, where gRPC would send the HTTP/2 preface); the agent's listener
// (muxListener) hands such connections to the raw server and every other to gRPC. The
// server answers rawMagic, then both sides exchange the Push stream's messages, each as a
// 5-byte prefix (a flag byte and a big-endian length) and the message encoded by the agent's
// codec: PushRequests up (closed by an end message, flag rawEnd: a connection that ends
// without it is a broken stream, as gRPC's is), PushResponses down, and at the end a status (flag rawTrailer, a
// big-endian code and the message) that gives the client what gRPC's stream status would. Authentication,
// authorization, the stream limits and the handler are the gRPC service's own: the raw
// server runs service.Push behind the same interceptor, the peer's verified certificate in
// the context. One connection carries one stream, and closing it ends the stream; a client
// whose agent does not speak the raw wire falls back to the gRPC Push RPC.

const (
	rawALPN    = "treecast-push/1"
	rawMagic   = "TREECAST-PUSH/1 RAWWIRE\n" // as long as HTTP/2's preface: a gRPC server reads it whole and refuses it at once
	rawTrailer = 0x80                        // flag of the stream's final status (server to client)
	rawEnd     = 0x40                        // flag of the end of the requests: without it, the end of the connection is a failure
	rawPrefix  = 5
)

// errNoRaw is returned by openRawPush when the agent does not speak the raw wire.
var errNoRaw = errors.New("node: agent does not serve the raw push wire")

// rawMsgLimit bounds one message on the raw wire, as Limits.MaxMessage bounds a gRPC message
// (a header carries the manifest and the plan; a chunk frame is FrameSize).
func (a *Agent) rawMsgLimit() int { return a.cfg.Limits.MaxMessage }

// rawConn is one end of a raw Push stream: buffered reads (a chunk frame's bytes are read past
// the buffer, straight into their pooled buffer) and gathered writes.
type rawConn struct {
	c     net.Conn
	r     *bufio.Reader
	g     gatherWriter  // a connection with writev (plain TCP): a message in one writev
	w     *bufio.Writer // for one without writev (the server's TLS): one write per message
	fc    *flushConn    // the client's TLS: the records of a message leave in one write
	limit int
	wmu   sync.Mutex
	hdr   [rawPrefix]byte
	small []byte // the small pieces of a message, gathered into one TLS record (with fc)
}

// flushConnMax bounds what a flushConn gathers before it writes (a 1 MiB frame leaves in
// four writes instead of 64).
const flushConnMax = 256 << 10

// flushConn sits under a TLS connection and gathers the records of one message into one
// write: crypto/tls writes every record (at most 16 KiB) with a write of its own, a system
// call each, which costs a sender more than encrypting the record. Between hold and flush
// what TLS writes is appended to a buffer (written whenever it would exceed flushConnMax);
// outside them writes go straight through (the handshake, alerts). The buffer comes from the
// data path's pool at the first hold and goes back to it when the connection closes.
type flushConn struct {
	net.Conn
	connBuf // the gathered bytes are buf.B[:n]; buf is taken at the first hold
	holding bool
	n       int
}

// connBuf is a connection's buffer from the data path's pool and the lock its reads or writes
// hold while they use it.
type connBuf struct {
	mu     sync.Mutex
	buf    *transfer.Buf // nil until taken, and after close
	closed bool
}

// closeAndFree closes c, which ends a read or write in progress, then, once none holds the
// lock, marks the buffer closed and returns it to the pool.
func (b *connBuf) closeAndFree(c net.Conn) error {
	err := c.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.buf != nil {
		b.buf.Free()
		b.buf = nil
	}
	return err
}

func (c *flushConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	if !c.holding {
		return c.Conn.Write(p)
	}
	if c.n+len(p) > flushConnMax {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > flushConnMax {
			return c.Conn.Write(p)
		}
	}
	if c.buf == nil {
		c.buf = transfer.NewBuf(flushConnMax)
	}
	c.n += copy(c.buf.B[c.n:], p)
	return len(p), nil
}

// hold starts gathering writes.
func (c *flushConn) hold() {
	c.mu.Lock()
	c.holding = true
	c.mu.Unlock()
}

// flush writes what was gathered and lets writes through again.
func (c *flushConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holding = false
	return c.flushLocked()
}

func (c *flushConn) flushLocked() error {
	if c.closed { // closed while gathering: its buffer is back in the pool
		c.n = 0
		return net.ErrClosed
	}
	if c.n == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf.B[:c.n])
	c.n = 0
	return err
}

// Close closes the connection, which ends a write in progress, then returns the buffer to
// the pool once no write uses it.
func (c *flushConn) Close() error { return c.closeAndFree(c.Conn) }

// rawReadBuf is the read buffer of a raw Push stream's server (the child, which reads the
// chunk frames: a frame's head is peeked there, its bytes read past it), and rawAnswerBuf
// that of its client, which reads only the child's answers.
const (
	rawReadBuf   = 32 << 10
	rawAnswerBuf = 4 << 10
)

// rawReaders keeps the read buffers of ended server streams for the next ones: a stream's
// buffers, fresh, cost more than its handshake when a push opens a hundred streams at once
// on a busy host (the runtime clears them and the kernel faults their pages in).
var rawReaders = make(chan *bufio.Reader, 64)

// newRawReader returns a server stream's read buffer over c, a kept one if any.
func newRawReader(c io.Reader) *bufio.Reader {
	select {
	case r := <-rawReaders:
		r.Reset(c)
		return r
	default:
		return bufio.NewReaderSize(c, rawReadBuf)
	}
}

// keepRawReader keeps r for another stream; nothing may read it any more.
func keepRawReader(r *bufio.Reader) {
	r.Reset(nil)
	select {
	case rawReaders <- r:
	default:
	}
}

// newRawConn returns a raw Push stream's end on c, reading through r (a bufio.Reader over c).
// fc, when not nil, is the flushConn under c's TLS (the client's).
func newRawConn(c net.Conn, r *bufio.Reader, fc *flushConn, limit int) *rawConn {
	rc := &rawConn{c: c, r: r, fc: fc, limit: limit}
	rc.g, _ = c.(gatherWriter)
	if rc.g == nil && fc == nil {
		// net.Buffers would write each piece on its own: with TLS, a record (and a system
		// call) for the 5-byte prefix and another for the message's header. (The server
		// writes only answers: a small buffer.)
		rc.w = bufio.NewWriterSize(c, 8<<10)
	}
	return rc
}

// write sends one message: the prefix and the encoded bytes in one writev, then frees them.
func (rc *rawConn) write(flag byte, msg mem.BufferSlice) error {
	defer msg.Free()
	n := msg.Len()
	if n > rc.limit {
		return fmt.Errorf("node: raw push: a %d-byte message, at most %d", n, rc.limit)
	}
	rc.wmu.Lock()
	defer rc.wmu.Unlock()
	rc.hdr[0] = flag
	binary.BigEndian.PutUint32(rc.hdr[1:], uint32(n))
	if rc.fc != nil {
		return rc.writeGathered(msg)
	}
	if rc.w != nil {
		_, _ = rc.w.Write(rc.hdr[:])
		for _, b := range msg {
			_, _ = rc.w.Write(b.ReadOnlyData())
		}
		return rc.w.Flush() // the first error of the writes, if any
	}
	bufs := make(net.Buffers, 0, 1+len(msg))
	bufs = append(bufs, rc.hdr[:])
	for _, b := range msg {
		bufs = append(bufs, b.ReadOnlyData())
	}
	_, err := rc.g.writeBuffers(bufs)
	return err
}

// gatherWriter writes several buffers in one system call (writev) where it can.
type gatherWriter interface {
	writeBuffers(v net.Buffers) (int64, error)
}

// gatherPiece is the size below which writeGathered puts a piece of a message into the
// record of its neighbours rather than a record of its own.
const gatherPiece = 4 << 10

// writeGathered writes the prefix and msg through TLS over rc.fc: consecutive small pieces
// (the prefix, a frame's fields) in one record, each large one (a frame's bytes) straight
// from its buffer, and all the records in as few writes as flushConnMax allows.
func (rc *rawConn) writeGathered(msg mem.BufferSlice) error {
	rc.fc.hold()
	small := append(rc.small[:0], rc.hdr[:]...)
	var err error
	for _, b := range msg {
		d := b.ReadOnlyData()
		if len(d) < gatherPiece {
			small = append(small, d...)
			continue
		}
		if len(small) > 0 && err == nil {
			_, err = rc.c.Write(small)
		}
		small = small[:0]
		if err == nil {
			_, err = rc.c.Write(d)
		}
	}
	if len(small) > 0 && err == nil {
		_, err = rc.c.Write(small)
	}
	rc.small = small[:0]
	if ferr := rc.fc.flush(); err == nil {
		err = ferr
	}
	return err
}

// read reads one message: its flag and its bytes in a pooled buffer (the caller frees it).
func (rc *rawConn) read() (byte, *transfer.Buf, error) {
	flag, b, _, err := rc.readPlaced(nil)
	return flag, b, err
}

// readPlaced reads one message as read does, except a chunk frame whose bytes end the
// message and that p places (see transfer.Placer): its first bytes are decoded where they
// lie in the read buffer, and its chunk bytes read straight into place; it is returned as a
// frame (Placed, holding a reference to its buffer), with a nil buffer.
func (rc *rawConn) readPlaced(p *transfer.Placer) (byte, *transfer.Buf, *transfer.Frame, error) {
	var pre [rawPrefix]byte
	if _, err := io.ReadFull(rc.r, pre[:]); err != nil {
		return 0, nil, nil, err
	}
	n := int(binary.BigEndian.Uint32(pre[1:]))
	if n > rc.limit {
		return 0, nil, nil, fmt.Errorf("%w: a %d-byte message on a raw push stream, at most %d", ErrBadHeader, n, rc.limit)
	}
	if p != nil && pre[0] == 0 {
		if fr, err := rc.place(p, n); fr != nil || err != nil {
			return 0, nil, fr, err
		}
	}
	b := transfer.NewBuf(n)
	if _, err := io.ReadFull(rc.r, b.B); err != nil {
		b.Free()
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, nil, err
	}
	return pre[0], b, nil, nil
}

// place reads a message of n bytes into place when it is a chunk frame that p places, and
// returns the frame. It returns nil, nil, having read nothing, for any other message, and the
// read's error when the connection failed within the frame's bytes.
func (rc *rawConn) place(p *transfer.Placer, n int) (*transfer.Frame, error) {
	head, _ := rc.r.Peek(min(n, 48)) // short when the connection failed: the plain read says how
	fr, start, size, _, ok := chunkFrameHead(head, n)
	if !ok || start+size != n || size == 0 {
		return nil, nil
	}
	dst, buf := p.Place(fr.Index, fr.Offset, size, fr.More)
	if buf == nil {
		return nil, nil
	}
	_, _ = rc.r.Discard(start) // peeked: they are in the buffer
	if _, err := io.ReadFull(rc.r, dst); err != nil {
		buf.Free()
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	fr.Data, fr.Buf, fr.Placed = dst, buf, true
	return &fr, nil
}

// recvInto decodes a message into m with the agent's codec. A chunk frame received into a
// pushFrameIn keeps the message's buffer as its own (its Data aliases it); anything else is
// decoded and the buffer freed.
func recvInto(b *transfer.Buf, m any) error {
	if in, ok := m.(*pushFrameIn); ok {
		if fr, ok := parseChunkFrame(b.B); ok {
			fr.Buf = b
			in.frame, in.isFrame = fr, true
			return nil
		}
	}
	defer b.Free()
	return chunkCodec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b.B)}, m)
}

// parseChunkFrame decodes a PushRequest holding one chunk frame in b, its Data aliasing b.
func parseChunkFrame(b []byte) (transfer.Frame, bool) {
	var req pb.PushRequest
	if !decodeChunkRequest(b, &req) {
		return transfer.Frame{}, false
	}
	c := req.GetChunk()
	if c.GetIndex() > 1<<40 || c.GetOffset() > MaxChunkSize {
		return transfer.Frame{}, false // protobuf decodes it, and RecvFrame refuses it
	}
	return transfer.Frame{Index: int(c.GetIndex()), Offset: int(c.GetOffset()), Data: c.GetData(), More: c.GetMore()}, true
}

// rawClientStream is the client side of a raw Push stream, as a grpc.ClientStream.
type rawClientStream struct {
	ctx  context.Context
	rc   *rawConn
	tcp  net.Conn // the TCP connection (under TLS, if any; a sysConn on Linux)
	stop func() bool
	done atomic.Bool // the trailer was read: the server ended the stream
	// answered is false until the server's rawMagic has been read: with TLS it is read
	// before the first message, not during the dial.
	answered bool
}

func (s *rawClientStream) Header() (metadata.MD, error) { return nil, nil }
func (s *rawClientStream) Trailer() metadata.MD         { return nil }
func (s *rawClientStream) Context() context.Context     { return s.ctx }

func (s *rawClientStream) SendMsg(m any) error {
	msg, err := chunkCodec{}.Marshal(m)
	if err != nil {
		return err
	}
	if err := s.rc.write(0, msg); err != nil {
		return s.connErr(err)
	}
	return nil
}

// Unacked returns the bytes sent on the stream that the agent's end has not acknowledged yet
// (transfer.Unacked), when the system tells them (Linux: one ioctl).
func (s *rawClientStream) Unacked() (int, bool) {
	if u, ok := s.tcp.(interface{ unacked() (int, bool) }); ok {
		return u.unacked()
	}
	return 0, false
}

// CloseSend sends the end of the requests and half-closes the connection. The server may
// end the stream first (its status arrived, and RecvMsg closed the connection with it, just
// before or while the end was sent): that stream ended, and CloseSend returns nil, as gRPC's
// does; the status is RecvMsg's.
func (s *rawClientStream) CloseSend() error {
	err := s.rc.write(rawEnd, nil)
	if err == nil {
		type closeWriter interface{ CloseWrite() error }
		if cw, ok := s.rc.c.(closeWriter); ok {
			err = cw.CloseWrite()
		}
	}
	if err != nil && s.done.Load() {
		return nil
	}
	return s.connErr(err)
}

func (s *rawClientStream) RecvMsg(m any) error {
	if s.done.Load() {
		return io.EOF
	}
	if !s.answered {
		var answer [len(rawMagic)]byte
		if _, err := io.ReadFull(s.rc.r, answer[:]); err != nil {
			return s.connErr(err)
		}
		if string(answer[:]) != rawMagic {
			return status.Errorf(codes.Unavailable, "node: raw push: the agent answered %q", answer[:])
		}
		s.answered = true
	}
	flag, b, err := s.rc.read()
	if err != nil {
		return s.connErr(err)
	}
	if flag == rawTrailer {
		s.done.Store(true)
		defer b.Free()
		if len(b.B) < 4 {
			return status.Errorf(codes.Internal, "node: raw push: a %d-byte stream status", len(b.B))
		}
		s.close()
		code := codes.Code(binary.BigEndian.Uint32(b.B))
		if code == codes.OK {
			return io.EOF
		}
		return status.Error(code, string(b.B[4:]))
	}
	return recvInto(b, m)
}

// connErr turns an error of the connection into what gRPC would report: io.EOF once the
// server ended the stream (its status is RecvMsg's), the context's error once it ended,
// Unavailable otherwise.
func (s *rawClientStream) connErr(err error) error {
	if err == nil {
		return nil
	}
	if s.done.Load() {
		return io.EOF
	}
	if cerr := context.Cause(s.ctx); cerr != nil {
		return status.FromContextError(cerr).Err()
	}
	return status.Errorf(codes.Unavailable, "node: raw push stream: %v", err)
}

func (s *rawClientStream) close() {
	if s.stop() {
		_ = s.rc.c.Close()
	}
}

// openRawPush opens a raw Push stream to the member name at addr. It returns errNoRaw
// (wrapped) when that agent does not speak the raw wire: the caller uses gRPC.
func (a *Agent) openRawPush(ctx context.Context, name, addr string) (pb.Agent_PushClient, error) {
	var conf *tls.Config
	if a.cfg.TLS != nil {
		conf = a.cfg.TLS.ClientConfig(name)
	}
	return dialRawPush(ctx, addr, conf, a.cfg.DialTimeout, a.rawMsgLimit())
}

// dialRawPush opens a raw Push stream to addr, over TLS with conf (nil: plaintext). The dial
// and the handshake are bounded by timeout and ctx; the stream then lasts as long as ctx, its
// messages bounded by limit bytes. Errors carry gRPC status codes (Unavailable for a failed
// dial or handshake), or wrap errNoRaw when addr answers but not with the raw wire.
func dialRawPush(ctx context.Context, addr string, conf *tls.Config, timeout time.Duration, limit int) (pb.Agent_PushClient, error) {
	timeout = max(timeout, time.Second)
	d := net.Dialer{Timeout: timeout, KeepAlive: 15 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "node: dial %s: %v", addr, err)
	}
	c = newSysConn(c) // the stream's bulk writes (see sysConn)
	ok := false
	defer func() {
		if !ok {
			_ = c.Close()
		}
	}()
	tcp := c // the closure's own: c becomes the TLS connection below
	var fc *flushConn
	stopHandshake := context.AfterFunc(ctx, func() { _ = tcp.SetDeadline(time.Unix(1, 0)) })
	_ = c.SetDeadline(time.Now().Add(timeout))
	if conf != nil {
		conf = conf.Clone()
		conf.NextProtos = []string{rawALPN, "h2"} // an agent without the raw wire answers h2
		conf.DynamicRecordSizingDisabled = true   // bulk data: full-size records from the start
		fc = &flushConn{Conn: c}
		tc := tls.Client(fc, conf)
		if err := tc.HandshakeContext(ctx); err != nil {
			stopHandshake()
			return nil, status.Errorf(codes.Unavailable, "node: TLS with %s: %v", addr, err)
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != rawALPN {
			stopHandshake()
			return nil, fmt.Errorf("%w: %s negotiated %q", errNoRaw, addr, p)
		}
		c = tc
	}
	// With TLS, ALPN already chose the raw wire: the answer is read with the first message
	// (rawClientStream.answered), which saves the stream's opening a round trip.
	var answer [len(rawMagic)]byte
	_, werr := io.WriteString(c, rawMagic)
	var rerr error
	if conf == nil {
		_, rerr = io.ReadFull(c, answer[:])
	}
	if !stopHandshake() || ctx.Err() != nil {
		return nil, status.FromContextError(context.Cause(ctx)).Err()
	}
	var ne net.Error
	if errors.As(werr, &ne) && ne.Timeout() || errors.As(rerr, &ne) && ne.Timeout() {
		// A slow agent (a busy host), not one without the raw wire: the caller retries.
		return nil, status.Errorf(codes.Unavailable, "node: raw push handshake with %s: %v %v", addr, werr, rerr)
	}
	if werr != nil || rerr != nil || conf == nil && string(answer[:]) != rawMagic {
		return nil, fmt.Errorf("%w: %s answered %q (%v, %v)", errNoRaw, addr, answer[:], werr, rerr)
	}
	_ = c.SetDeadline(time.Time{})
	s := &rawClientStream{ctx: ctx, rc: newRawConn(c, bufio.NewReaderSize(c, rawAnswerBuf), fc, limit), tcp: tcp, answered: conf == nil}
	s.stop = context.AfterFunc(ctx, func() { _ = c.Close() })
	ok = true
	return &grpc.GenericClientStream[pb.PushRequest, pb.PushResponse]{ClientStream: s}, nil
}

// rawServerStream is the server side of a raw Push stream, as a grpc.ServerStream.
type rawServerStream struct {
	ctx    context.Context
	rc     *rawConn
	eof    bool
	msgs   chan rawMsg // read ahead by readAhead
	ahead  sync.Once   // starts readAhead at the first receive: after the stream is authorized
	placer atomic.Pointer[transfer.Placer]
	read   chan struct{} // closed when readAhead returns, or by serveRaw when it never started
}

// rawMsg is a message read ahead (in b, or a frame read into place), or the read's error.
type rawMsg struct {
	flag byte
	b    *transfer.Buf
	fr   *transfer.Frame
	err  error
}

// setPlacer lets readAhead read the chunk frames that p places straight into place.
func (s *rawServerStream) setPlacer(p *transfer.Placer) { s.placer.Store(p) }

// rawReadAhead is how many messages a raw server reads ahead of the stream's handler: the
// socket read (and TLS decryption) of the next frames overlaps the handling of this one, as
// gRPC's reader goroutine does for its streams.
const rawReadAhead = 4

// readAhead reads messages into s.msgs until a read fails (that error is the last message)
// or the stream's context ends.
func (s *rawServerStream) readAhead() {
	var placer *transfer.Placer
	defer func() {
		if placer != nil {
			placer.Close()
		}
	}()
	for {
		if p := s.placer.Load(); p != placer {
			if placer != nil {
				placer.Close()
			}
			placer = p
		}
		flag, b, fr, err := s.rc.readPlaced(placer)
		select {
		case s.msgs <- rawMsg{flag, b, fr, err}:
		case <-s.ctx.Done():
			b.Free()
			if fr != nil {
				fr.Buf.Free()
			}
			return
		}
		if err != nil || flag == rawEnd {
			return
		}
	}
}

// dropAhead frees the messages read ahead that the handler never took; the read ahead is
// over.
func (s *rawServerStream) dropAhead() {
	for {
		select {
		case m := <-s.msgs:
			m.b.Free()
			if m.fr != nil {
				m.fr.Buf.Free()
			}
		default:
			return
		}
	}
}

func (s *rawServerStream) SetHeader(metadata.MD) error  { return nil }
func (s *rawServerStream) SendHeader(metadata.MD) error { return nil }
func (s *rawServerStream) SetTrailer(metadata.MD)       {}
func (s *rawServerStream) Context() context.Context     { return s.ctx }

func (s *rawServerStream) SendMsg(m any) error {
	msg, err := chunkCodec{}.Marshal(m)
	if err != nil {
		return err
	}
	if err := s.rc.write(0, msg); err != nil {
		if cerr := context.Cause(s.ctx); cerr != nil {
			return status.FromContextError(cerr).Err()
		}
		return status.Errorf(codes.Unavailable, "node: raw push stream: %v", err)
	}
	return nil
}

func (s *rawServerStream) RecvMsg(m any) error {
	if s.eof {
		return io.EOF
	}
	s.ahead.Do(func() { // ends with ctx, or at the stream's end or first error
		go func() {
			defer close(s.read)
			s.readAhead()
		}()
	})
	var msg rawMsg
	select {
	case msg = <-s.msgs:
	case <-s.ctx.Done():
		msg.err = context.Cause(s.ctx)
	}
	flag, b, err := msg.flag, msg.b, msg.err
	if msg.fr != nil {
		if in, ok := m.(*pushFrameIn); ok {
			in.frame, in.isFrame = *msg.fr, true
			return nil
		}
		msg.fr.Buf.Free()
		return status.Errorf(codes.Internal, "node: raw push stream: a chunk frame where a %T was expected", m)
	}
	if err != nil {
		if cerr := context.Cause(s.ctx); cerr != nil {
			return status.FromContextError(cerr).Err()
		}
		if errors.Is(err, io.EOF) {
			err = errors.New("the parent's connection closed before the end of its stream")
		}
		return status.Errorf(codes.Unavailable, "node: raw push stream: %v", err)
	}
	if flag == rawEnd {
		b.Free()
		s.eof = true
		return io.EOF
	}
	if flag != 0 {
		b.Free()
		return status.Errorf(codes.InvalidArgument, "node: raw push stream: message flag %#x", flag)
	}
	return recvInto(b, m)
}

// serveRaw serves one raw Push stream on c (after the TLS handshake, if any) until it ends.
func (a *Agent) serveRaw(c net.Conn, state *tls.ConnectionState) {
	r := newRawReader(c)
	var ss *rawServerStream
	defer func() {
		_ = c.Close()
		// The read buffer is kept for another stream once nothing reads it: the read ahead
		// ends with the closed connection (a read ahead stuck elsewhere keeps it). One that
		// never started never will: the handler has returned.
		if ss != nil {
			ss.ahead.Do(func() { close(ss.read) })
			select {
			case <-ss.read:
			case <-time.After(time.Second):
				go func() { <-ss.read; ss.dropAhead() }() // the messages it still reads
				return
			}
			ss.dropAhead()
		}
		keepRawReader(r)
	}()
	ctx, cancel := context.WithCancel(a.ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	_ = c.SetDeadline(time.Now().Add(a.cfg.Limits.HeaderTimeout))
	if _, err := io.WriteString(c, rawMagic); err != nil {
		return
	}
	_ = c.SetDeadline(time.Time{})
	p := &peer.Peer{Addr: c.RemoteAddr(), LocalAddr: c.LocalAddr()}
	if state != nil {
		p.AuthInfo = credentials.TLSInfo{State: *state, CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}
	}
	ss = &rawServerStream{ctx: peer.NewContext(ctx, p), rc: newRawConn(c, r, nil, a.rawMsgLimit()),
		msgs: make(chan rawMsg, rawReadAhead), read: make(chan struct{})}
	svc := &service{a: a}
	err := a.streamAuth(svc, ss, &grpc.StreamServerInfo{FullMethod: pb.Agent_Push_FullMethodName, IsClientStream: true, IsServerStream: true},
		func(srv any, stream grpc.ServerStream) error {
			return srv.(*service).Push(&grpc.GenericServerStream[pb.PushRequest, pb.PushResponse]{ServerStream: stream})
		})
	st := status.Convert(statusErr(err))
	b := binary.BigEndian.AppendUint32(nil, uint32(st.Code()))
	b = append(b, st.Message()...)
	_ = c.SetWriteDeadline(time.Now().Add(a.cfg.Limits.HeaderTimeout))
	if err := ss.rc.write(rawTrailer, mem.BufferSlice{mem.SliceBuffer(b)}); err != nil {
		return
	}
	// Let the client read the status before the connection closes: wait (briefly) for it to
	// close its side.
	// (On the connection itself: a receive that timed out may still be reading the buffer.)
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = io.Copy(io.Discard, io.LimitReader(c, 1<<20))
}

// muxListener accepts the agent's connections and sorts them: raw Push streams to serveRaw,
// everything else to gRPC (through Accept). The first bytes (or, with TLS, the handshake)
// must come within the header timeout; a connection that sends nothing useful by then is
// closed, at the cost of one goroutine while it waits.
type muxListener struct {
	net.Listener
	a     *Agent
	tls   *tls.Config // nil: plaintext
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newMuxListener(a *Agent, l net.Listener, conf *tls.Config) *muxListener {
	m := &muxListener{Listener: l, a: a, tls: conf, conns: make(chan net.Conn), done: make(chan struct{})}
	a.goFunc(m.run)
	return m
}

func (m *muxListener) run() {
	for {
		c, err := m.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.Close()
			return
		}
		go m.sort(c)
	}
}

// sort reads enough of c to tell a raw Push stream from gRPC. It counts in the agent's
// rawStreams until it is done (nothing once the agent is closing).
func (m *muxListener) sort(c net.Conn) {
	m.a.mu.Lock()
	if m.a.closed {
		m.a.mu.Unlock()
		_ = c.Close()
		return
	}
	m.a.rawStreams.Add(1)
	m.a.mu.Unlock()
	defer m.a.rawStreams.Done()
	_ = c.SetDeadline(time.Now().Add(m.a.cfg.Limits.HeaderTimeout))
	if m.tls != nil {
		bc := &bufReadConn{Conn: c}
		tc := tls.Server(bc, m.tls)
		if err := tc.Handshake(); err != nil {
			_ = c.Close()
			return
		}
		if st := tc.ConnectionState(); st.NegotiatedProtocol == rawALPN {
			bc.buffer()
			if !m.readMagic(tc) {
				return
			}
			_ = c.SetDeadline(time.Time{})
			m.a.serveRaw(tc, &st)
			return
		}
		_ = c.SetDeadline(time.Time{})
		m.toGRPC(tc)
		return
	}
	var head [len(rawMagic)]byte
	n, _ := io.ReadFull(c, head[:])
	if n == len(head) && string(head[:]) == rawMagic {
		_ = c.SetDeadline(time.Time{})
		m.a.serveRaw(newSysConn(c), nil)
		return
	}
	if n == 0 {
		_ = c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	m.toGRPC(&replayConn{Conn: c, head: bytes.NewReader(head[:n])})
}

func (m *muxListener) readMagic(c net.Conn) bool {
	var head [len(rawMagic)]byte
	if _, err := io.ReadFull(c, head[:]); err != nil || string(head[:]) != rawMagic {
		_ = c.Close()
		return false
	}
	return true
}

func (m *muxListener) toGRPC(c net.Conn) {
	select {
	case m.conns <- c:
	case <-m.done:
		_ = c.Close()
	}
}

// Accept returns the next connection for gRPC.
func (m *muxListener) Accept() (net.Conn, error) {
	select {
	case c := <-m.conns:
		return c, nil
	case <-m.done:
		return nil, net.ErrClosed
	}
}

func (m *muxListener) Close() error {
	var err error
	m.once.Do(func() {
		close(m.done)
		err = m.Listener.Close()
	})
	return err
}

// bufReadConn is the TCP connection under a raw Push stream's TLS: once buffer is called,
// it reads the socket in pieces of up to rawTLSReadBuf bytes, and crypto/tls takes its
// records from there. crypto/tls alone asks the socket for little more than the record it
// needs (about 16 KiB a system call); when more has arrived, one system call now fetches
// it all, for one extra copy of each byte. Before buffer (the handshake, gRPC connections),
// reads go to the socket unbuffered. The buffer comes from the data path's pool and goes
// back to it when the connection closes.
type bufReadConn struct {
	net.Conn
	connBuf     // held by a read through its wait for the socket; buf taken by buffer
	r, w    int // the buffered bytes are buf.B[r:w]
}

// rawTLSReadBuf is the read buffer under a raw Push stream's TLS.
const rawTLSReadBuf = 256 << 10

// buffer starts buffering reads, and makes reads and writes raw system calls (see sysConn).
// crypto/tls must not be using the connection concurrently.
func (c *bufReadConn) buffer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Conn = newSysConn(c.Conn)
	if !c.closed { // once closed, nothing would give the buffer back
		c.buf = transfer.NewBuf(rawTLSReadBuf)
	}
}

func (c *bufReadConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return 0, net.ErrClosed
	case c.buf == nil:
		return c.Conn.Read(p)
	case c.r == c.w && len(p) >= len(c.buf.B):
		return c.Conn.Read(p)
	case c.r == c.w:
		n, err := c.Conn.Read(c.buf.B)
		if n == 0 {
			return 0, err
		}
		c.r, c.w = 0, n // an error with bytes comes back at the next socket read
	}
	n := copy(p, c.buf.B[c.r:c.w])
	c.r += n
	return n, nil
}

// Close closes the connection, which ends a read in progress, then returns the buffer to the
// pool once no read uses it.
func (c *bufReadConn) Close() error { return c.closeAndFree(c.Conn) }

// replayConn gives back the bytes read to sort a connection before the rest.
type replayConn struct {
	net.Conn
	head *bytes.Reader
}

func (c *replayConn) Read(p []byte) (int, error) {
	if c.head.Len() > 0 {
		return c.head.Read(p)
	}
	return c.Conn.Read(p)
}

// sortedTLS is the gRPC server's transport credentials behind muxListener: the TLS handshake
// is done by then, and the connection's state is the peer's AuthInfo.
type sortedTLS struct{}

func (sortedTLS) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("node: server-side credentials")
}

func (sortedTLS) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return nil, nil, errors.New("node: a connection without TLS on a TLS listener")
	}
	return c, credentials.TLSInfo{State: tc.ConnectionState(), CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, nil
}

func (sortedTLS) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}
func (sortedTLS) Clone() credentials.TransportCredentials { return sortedTLS{} }
func (sortedTLS) OverrideServerName(string) error         { return nil }

// muxTLSConfig is the listener's TLS configuration: the agent's, offering the raw wire's
// protocol and gRPC's "h2" (in that order of preference: a raw client offers both).
func muxTLSConfig(base *tls.Config) *tls.Config {
	conf := base.Clone()
	conf.NextProtos = []string{rawALPN, "h2"}
	if get := base.GetConfigForClient; get != nil {
		conf.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			c, err := get(hello)
			if c != nil {
				c = c.Clone()
				c.NextProtos = []string{rawALPN, "h2"}
			}
			return c, err
		}
	}
	return conf
}
