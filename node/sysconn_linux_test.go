package node

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			acc <- nil
			return
		}
		acc <- c
	}()
	a, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-acc
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// sysConn moves bytes both ways exactly, writes far more than the socket buffers hold
// (the writer waits for the reader through the netpoller), gathers buffers in writev,
// honours deadlines as a timeout and reports the peer's close as io.EOF.
func TestSysConn(t *testing.T) {
	a, b := tcpPair(t)
	sa, sb := newSysConn(a), newSysConn(b)
	if _, ok := sa.(*sysConn); !ok {
		t.Fatalf("newSysConn of a TCP connection is %T", sa)
	}
	payload := make([]byte, 8<<20)
	for i := range payload {
		payload[i] = byte(i*7 + i>>11)
	}
	pieces := net.Buffers{payload[:5], nil, payload[5 : 3<<20], payload[3<<20 : 3<<20+1], payload[3<<20+1:]}
	want := append(append([]byte(nil), payload...), payload...)
	werr := make(chan error, 1)
	go func() {
		if n, err := sa.Write(payload); err != nil || n != len(payload) {
			werr <- errors.Join(err, io.ErrShortWrite)
			return
		}
		n, err := sa.(*sysConn).writeBuffers(pieces)
		if err == nil && n != int64(len(payload)) {
			err = io.ErrShortWrite
		}
		werr <- err
	}()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(sb, got); err != nil {
		t.Fatal(err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("bytes differ")
	}

	if err := sb.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	var ne net.Error
	if _, err := sb.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	_ = sb.SetReadDeadline(time.Time{})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := sb.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("read after the peer closed: %d, %v, want io.EOF", n, err)
	}
	if _, err := sa.Write([]byte("x")); err == nil {
		t.Fatal("write on a closed connection succeeded")
	}
}

func TestConsume(t *testing.T) {
	v := net.Buffers{[]byte("ab"), []byte("cde"), []byte("f")}
	v = consume(v, 3)
	if len(v) != 2 || string(v[0]) != "de" || string(v[1]) != "f" {
		t.Fatalf("consume 3: %q", v)
	}
	if v = consume(v, 3); len(v) != 0 {
		t.Fatalf("consume all: %q", v)
	}
}

// unacked counts the bytes written that the peer has not acknowledged: none on a fresh
// connection, some while the peer does not read what the buffers cannot hold, none again
// once it has read everything.
func TestSysConnUnacked(t *testing.T) {
	a, b := tcpPair(t)
	sa := newSysConn(a).(*sysConn)
	if n, ok := sa.unacked(); !ok || n != 0 {
		t.Fatalf("a fresh connection: unacked %d, %v; want 0, true", n, ok)
	}
	const size = 64 << 20
	werr := make(chan error, 1)
	go func() {
		_, err := sa.Write(make([]byte, size))
		werr <- err
	}()
	waitUnacked := func(what string, cond func(int) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			n, ok := sa.unacked()
			if ok && cond(n) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: unacked %d, %v after 10 s", what, n, ok)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitUnacked("the peer not reading", func(n int) bool { return n > 0 && n <= size })
	if _, err := io.CopyN(io.Discard, b, size); err != nil {
		t.Fatal(err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	waitUnacked("the peer read everything", func(n int) bool { return n == 0 })
}
