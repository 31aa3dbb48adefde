package node_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/identity"
	"github.com/treecast/treecast/node/nodetest"
	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// TestPushWires pushes down a chain whose first hop is sent as gRPC messages (the source
// asks for it) and whose second is on the raw wire, over mutual TLS: both copies verify, and
// each agent's counter shows the wire it used.
func TestPushWires(t *testing.T) {
	c := nodetest.StartCluster(t, 3, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		cfg.PushOverGRPC = i == 0
	}})
	data := randomBytes(3<<20+123, 11)
	digest, err := c.Agents[0].Put(mustWrite(t, c, 0, "obj", data), 256<<10)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := c.Agents[0].Push(ctx, node.Object{Digest: digest}, "a01,a02", node.PushOptions{Strategy: "chain"})
	if err != nil || rep.Failed() != 0 {
		t.Fatalf("push: %v %+v", err, rep.Receivers)
	}
	for _, name := range []string{"a01", "a02"} {
		got, err := c.Read(name, digest)
		if err != nil || string(got) != string(data) {
			t.Fatalf("%s: %v, %d bytes, want the object", name, err, len(got))
		}
	}
	if g, r := c.Agents[0].PushStreams("grpc"), c.Agents[0].PushStreams("raw"); g < 1 || r != 0 {
		t.Fatalf("the source opened %v gRPC and %v raw streams, want gRPC only", g, r)
	}
	relay := c.Agents[1]
	if rep.Receivers[0].Via != "a01" {
		relay = c.Agents[2]
	}
	if g, r := relay.PushStreams("grpc"), relay.PushStreams("raw"); r < 1 || g != 0 {
		t.Fatalf("the relay opened %v gRPC and %v raw streams, want raw only", g, r)
	}
}

// TestRawPushAuth: the raw wire is the Push RPC's, with its authentication and roles: a client
// of another CA fails the handshake, an operator may not push, a node may not push under
// another's name; a plaintext client of a TLS agent is not served.
func TestRawPushAuth(t *testing.T) {
	c := nodetest.StartCluster(t, 3, nodetest.Options{})
	addr := c.Agents[1].Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial := func(conf func() (*identity.Source, error)) (pb.Agent_PushClient, error) {
		src, err := conf()
		if err != nil {
			t.Fatal(err)
		}
		return node.DialRawPush(ctx, addr, src.ClientConfig(""), 5*time.Second, 16<<20)
	}

	otherCA := t.TempDir()
	if err := identity.InitCA(otherCA); err != nil {
		t.Fatal(err)
	}
	if _, err := dial(func() (*identity.Source, error) {
		if err := identity.Issue(otherCA, "a00", identity.RoleNode, nil); err != nil {
			return nil, err
		}
		cert, key := identity.Files(otherCA, "a00")
		ca, _ := identity.CAFiles(otherCA)
		return identity.Load(cert, key, ca)
	}); status.Code(err) != codes.Unavailable {
		t.Errorf("a node of another CA: %v, want the handshake refused (Unavailable)", err)
	}

	st, err := dial(func() (*identity.Source, error) { return c.Identity("op", identity.RoleOperator) })
	if err != nil {
		t.Fatal(err)
	}
	// Under TLS the stream still reaches its socket's count of unacknowledged bytes (Linux),
	// which the source paces its stripes on.
	if n, ok := node.StreamUnacked(st); ok != (runtime.GOOS == "linux") || n < 0 {
		t.Errorf("a raw stream over TLS tells %d unacknowledged bytes (%v) on %s", n, ok, runtime.GOOS)
	}
	_ = st.Send(&pb.PushRequest{Msg: &pb.PushRequest_End{End: &pb.PushEnd{}}})
	if _, err := st.Recv(); status.Code(err) != codes.PermissionDenied {
		t.Errorf("an operator's raw Push: %v, want PermissionDenied", err)
	}

	data := randomBytes(100_000, 3)
	st, err = dial(func() (*identity.Source, error) { return c.Identity("a02", identity.RoleNode) })
	if err != nil {
		t.Fatal(err)
	}
	plan, _ := node.EncodePlan("a00", []string{"a01"}, "chain")
	_ = st.Send(&pb.PushRequest{Msg: &pb.PushRequest_Header{Header: &pb.PushHeader{TransferId: "x", Manifest: manifestOf(data, 16<<10),
		Plan: plan, Node: "a01", Source: "a00", Parent: "a00", Stripes: []uint32{0}}}})
	if _, err := st.Recv(); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a02 pushing as a00 on the raw wire: %v, want PermissionDenied", err)
	}

	if _, err := node.DialRawPush(ctx, addr, nil, 5*time.Second, 16<<20); err == nil {
		t.Error("a plaintext raw stream to a TLS agent was served")
	}
}

// TestRawPushFallback: an address that serves gRPC without the raw wire (a plain gRPC
// server) is told apart, so the agent falls back to the gRPC Push RPC.
func TestRawPushFallback(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	go func() { _ = srv.Serve(l) }()
	defer srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := node.DialRawPush(ctx, l.Addr().String(), nil, 5*time.Second, 16<<20); !errors.Is(err, node.ErrNoRaw) {
		t.Fatalf("a plain gRPC server: %v, want ErrNoRaw", err)
	}

	// The same over TLS: the server offers only "h2".
	c := nodetest.StartCluster(t, 1, nodetest.Options{})
	src, err := c.Identity("a00", identity.RoleNode)
	if err != nil {
		t.Fatal(err)
	}
	lt, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tsrv := grpc.NewServer(grpc.Creds(credentials.NewTLS(src.ServerConfig())))
	go func() { _ = tsrv.Serve(lt) }()
	defer tsrv.Stop()
	if _, err := node.DialRawPush(ctx, lt.Addr().String(), src.ClientConfig(""), 5*time.Second, 16<<20); !errors.Is(err, node.ErrNoRaw) {
		t.Fatalf("a gRPC server over TLS: %v, want ErrNoRaw", err)
	}
}

// fakeRawAgent listens as an agent whose TLS offers only the raw wire, accepts one
// connection, reads its preface and hands it to serve. It returns the address and the client
// TLS configuration of a node of the same cluster.
func fakeRawAgent(t *testing.T, serve func(sc net.Conn)) (string, *tls.Config) {
	t.Helper()
	c := nodetest.StartCluster(t, 1, nodetest.Options{})
	id, err := c.Identity("a00", identity.RoleNode)
	if err != nil {
		t.Fatal(err)
	}
	conf := id.ServerConfig()
	perClient := conf.GetConfigForClient
	conf.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		c, err := perClient(h)
		if c != nil {
			c.NextProtos = []string{node.RawALPN}
		}
		return c, err
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		sc, err := l.Accept()
		if err != nil {
			return
		}
		defer sc.Close()
		head := make([]byte, len(node.RawMagic))
		if _, err := io.ReadFull(sc, head); err != nil || string(head) != node.RawMagic {
			return
		}
		serve(sc)
	}()
	return l.Addr().String(), id.ClientConfig("")
}

// TestRawPushLateAnswer: over TLS the dial does not wait for the agent's answer to the raw
// preface (ALPN already chose the wire); an agent that negotiates the raw wire but answers
// something else fails the stream's first receive, as Unavailable.
func TestRawPushLateAnswer(t *testing.T) {
	addr, client := fakeRawAgent(t, func(sc net.Conn) {
		_, _ = io.WriteString(sc, "HTTP/1.1 400 Bad Request\r\n\r\n")
		_, _ = io.Copy(io.Discard, sc)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := node.DialRawPush(ctx, addr, client, 5*time.Second, 16<<20)
	if err != nil {
		t.Fatalf("dial: %v (the answer is read with the first message)", err)
	}
	_, err = st.Recv()
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "answered") {
		t.Fatalf("first receive: %v, want Unavailable naming the wrong answer", err)
	}
}

// TestRawPushCloseAfterStatus: a stream whose agent ended it (its status read) before the
// client closed its side: CloseSend returns nil, as gRPC's does, and a send returns io.EOF
// (the status is Recv's).
func TestRawPushCloseAfterStatus(t *testing.T) {
	addr, client := fakeRawAgent(t, func(sc net.Conn) {
		// The answer, then at once the stream's status: OK (flag 0x80, 4 bytes of code 0).
		_, _ = io.WriteString(sc, node.RawMagic)
		_, _ = sc.Write([]byte{0x80, 0, 0, 0, 4, 0, 0, 0, 0})
		_, _ = io.Copy(io.Discard, sc)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := node.DialRawPush(ctx, addr, client, 5*time.Second, 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != io.EOF {
		t.Fatalf("receive: %v, want io.EOF (status OK)", err)
	}
	if err := st.Send(&pb.PushRequest{}); err != io.EOF {
		t.Errorf("send after the status: %v, want io.EOF", err)
	}
	if err := st.CloseSend(); err != nil {
		t.Errorf("close after the status: %v, want nil", err)
	}
}

// TestRawPushBounds: a raw connection that stalls before or after its preface, or announces
// a message past the limit, is closed within the header timeout, without the agent buffering
// what it announced.
func TestRawPushBounds(t *testing.T) {
	c := nodetest.StartCluster(t, 1, nodetest.Options{Insecure: true, Configure: func(_ int, cfg *node.Config) {
		cfg.Limits.HeaderTimeout = 300 * time.Millisecond
	}})
	addr := c.Agents[0].Addr()
	closedWithin := func(name string, conn net.Conn, d time.Duration) {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(d))
		_, err := io.Copy(io.Discard, conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s: the agent kept the connection open for %v", name, d)
		}
	}
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	closedWithin("a connection that sends nothing", silent, 5*time.Second)

	before := heapMiB()
	for _, n := range []uint32{1 << 31, 512 << 20} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, node.RawMagic); err != nil {
			t.Fatal(err)
		}
		var p [5]byte
		binary.BigEndian.PutUint32(p[1:], n)
		_, _ = conn.Write(p[:])
		closedWithin("a message past the limit", conn, 5*time.Second)
	}
	if grew := heapMiB() - before; grew > 64 {
		t.Errorf("the heap grew by %.0f MiB after announced messages of 2 GiB and 512 MiB", grew)
	}

	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	_, _ = io.WriteString(idle, node.RawMagic)
	closedWithin("a raw stream that sends no header", idle, 5*time.Second)
}

// BenchmarkRawPushOpen opens raw Push streams over mutual TLS on loopback, as a parent opens
// one per child and stripe: the dial, the handshake, one message and the agent's answer (a
// refusal: the message is no header), and the close. -benchmem shows the memory a stream's
// buffers cost when they are not reused.
func BenchmarkRawPushOpen(b *testing.B) {
	c := nodetest.StartCluster(b, 2, nodetest.Options{})
	src, err := c.Identity("a00", identity.RoleNode)
	if err != nil {
		b.Fatal(err)
	}
	conf := src.ClientConfig("")
	addr := c.Agents[1].Addr()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		st, err := node.DialRawPush(ctx, addr, conf, 5*time.Second, 16<<20)
		if err != nil {
			b.Fatal(err)
		}
		_ = st.Send(&pb.PushRequest{Msg: &pb.PushRequest_End{End: &pb.PushEnd{}}})
		if _, err := st.Recv(); status.Code(err) != codes.InvalidArgument {
			b.Fatalf("answer %v, want InvalidArgument (no header)", err)
		}
		_ = st.CloseSend()
	}
}
