package node_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/identity"
	"github.com/treecast/treecast/node/nodetest"
	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// client connects to the agent at addr as the identity as (a certificate of the cluster's CA
// with role).
func client(t *testing.T, c *nodetest.Cluster, addr, as string, role identity.Role) pb.AgentClient {
	t.Helper()
	return pb.NewAgentClient(clientConn(t, c, addr, as, role))
}

func clientConn(t *testing.T, c *nodetest.Cluster, addr, as string, role identity.Role) *grpc.ClientConn {
	t.Helper()
	cc, err := c.Dial(addr, as, role)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// manifestOf builds the protocol manifest of data cut in chunks of cs bytes.
func manifestOf(data []byte, cs int) *pb.Manifest {
	sum := sha256.Sum256(data)
	m := &pb.Manifest{Digest: fmt.Sprintf("sha256:%x", sum), Size: uint64(len(data)), ChunkSize: uint32(cs)}
	for off := 0; off < len(data); off += cs {
		h := sha256.Sum256(data[off:min(off+cs, len(data))])
		m.ChunkHashes = append(m.ChunkHashes, h[:])
	}
	return m
}

func TestPushErrors(t *testing.T) {
	c := nodetest.StartCluster(t, 5, nodetest.Options{Labels: labels})
	src := c.Agents[0]
	data := randomBytes(50_000, 3)
	inside := mustWrite(t, c, 0, "ok.bin", data)
	outsideDir := t.TempDir()
	outside := outsideDir + "/x.bin"
	if err := writeFile(outside, data); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(c.Dirs[0], outside)
	if err != nil || !strings.HasPrefix(rel, "..") {
		t.Fatalf("relative path %q, %v", rel, err)
	}
	ctx := context.Background()
	cases := []struct {
		name   string
		obj    node.Object
		target string
		want   error
	}{
		{"unknown digest", node.Object{Digest: "sha256:" + strings.Repeat("ab", 32)}, "all", node.ErrUnknownDigest},
		{"target matches no node", node.Object{Path: inside}, "rack=nowhere", node.ErrNoReceivers},
		{"unknown node name", node.Object{Path: inside}, "a01,zz", node.ErrNoReceivers},
		{"path outside the data dir", node.Object{Path: outside}, "all", node.ErrOutsideData},
		{"path escaping with ..", node.Object{Path: rel}, "all", node.ErrOutsideData},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := src.Push(ctx, tc.obj, tc.target, node.PushOptions{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			for _, a := range c.Agents[1:] {
				if st, _ := a.Status(); len(st.Objects) != 0 {
					t.Errorf("%s holds %v after a refused push", a.Name(), st.Objects)
				}
			}
		})
	}
	// A channel no member subscribes to and no version names is unknown: the push is refused
	// and nothing is recorded (a typo must not create a channel on every agent).
	t.Run("unknown channel", func(t *testing.T) {
		rep, err := src.Push(ctx, node.Object{Path: inside}, "channel:none", node.PushOptions{})
		if !errors.Is(err, node.ErrConfig) || len(rep.Receivers) != 0 {
			t.Fatalf("push: %v, %+v; want ErrConfig (unknown channel) and no receivers", err, rep.Receivers)
		}
		for _, cs := range src.Channels() {
			if cs.Name == "none" {
				t.Errorf("channel none was recorded: %+v", cs)
			}
		}
	})
	t.Run("submit maps errors to codes", func(t *testing.T) {
		cl := client(t, c, src.Addr(), "op", identity.RoleOperator)
		st, err := cl.Submit(ctx, &pb.SubmitRequest{Object: &pb.SubmitRequest_Digest{Digest: "sha256:" + strings.Repeat("cd", 32)},
			Target: &pb.Target{Kind: &pb.Target_All{All: true}}})
		if err == nil {
			_, err = st.Recv()
		}
		if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "unknown digest") {
			t.Fatalf("got %v, want NotFound naming the unknown digest", err)
		}
	})
}

// TestPushStreamErrors drives a receiver's Push service by hand, as a broken or lying parent
// would.
func TestPushStreamErrors(t *testing.T) {
	c := nodetest.StartCluster(t, 2, nodetest.Options{})
	recv := c.Agents[1]
	cl := client(t, c, recv.Addr(), "a00", identity.RoleNode)
	const cs = 4096
	data := randomBytes(10*cs+100, 11)
	man := manifestOf(data, cs)
	plan, err := node.EncodePlan("a00", []string{"a01"}, "chain")
	if err != nil {
		t.Fatal(err)
	}
	header := func(m *pb.Manifest, id string) *pb.PushRequest {
		return &pb.PushRequest{Msg: &pb.PushRequest_Header{Header: &pb.PushHeader{TransferId: id, Manifest: m, Plan: plan,
			Node: "a01", Source: "a00", Parent: "a00", Stripes: []uint32{0}}}}
	}
	chunk := func(i int) *pb.PushRequest {
		return &pb.PushRequest{Msg: &pb.PushRequest_Chunk{Chunk: &pb.Chunk{Index: uint64(i), Data: data[i*cs : min((i+1)*cs, len(data))]}}}
	}
	end := &pb.PushRequest{Msg: &pb.PushRequest_End{End: &pb.PushEnd{}}}
	lying := func(f func(m *pb.Manifest)) *pb.Manifest {
		m := manifestOf(data, cs)
		f(m)
		return m
	}
	cases := []struct {
		name    string
		msgs    []*pb.PushRequest
		code    codes.Code // error code of the stream, or OK with a failed result
		errText string
	}{
		{"truncated stream", []*pb.PushRequest{header(man, "t1"), chunk(0), chunk(1), end}, codes.OK, "stream ended before every chunk arrived"},
		{"stream closed without end", []*pb.PushRequest{header(man, "t2"), chunk(0)}, codes.OK, "stream ended before every chunk arrived"},
		{"manifest lying about size", []*pb.PushRequest{header(lying(func(m *pb.Manifest) { m.Size *= 2 }), "t3")}, codes.InvalidArgument, "chunk hashes for size"},
		{"manifest with short hash", []*pb.PushRequest{header(lying(func(m *pb.Manifest) { m.ChunkHashes[2] = m.ChunkHashes[2][:5] }), "t4")}, codes.InvalidArgument, "hash"},
		{"manifest with zero chunk size", []*pb.PushRequest{header(lying(func(m *pb.Manifest) { m.ChunkSize = 0 }), "t5")}, codes.InvalidArgument, "chunk size"},
		{"chunk before header", []*pb.PushRequest{chunk(0)}, codes.InvalidArgument, "header"},
		{"stream for another node", []*pb.PushRequest{func() *pb.PushRequest { h := header(man, "t6"); h.GetHeader().Node = "a07"; return h }()}, codes.InvalidArgument, "a07"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			st, err := cl.Push(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range tc.msgs {
				if err := st.Send(m); err != nil {
					break
				}
			}
			_ = st.CloseSend()
			var result *pb.ReceiverResult
			var streamErr error
			for {
				r, err := st.Recv()
				if err != nil {
					if !errors.Is(err, io.EOF) {
						streamErr = err
					}
					break
				}
				if r.GetResult() != nil {
					result = r.GetResult()
				}
			}
			if status.Code(streamErr) != tc.code {
				t.Fatalf("stream ended with %v, want code %v", streamErr, tc.code)
			}
			msg := fmt.Sprint(streamErr)
			if tc.code == codes.OK {
				if result == nil || result.GetStatus() != pb.ReceiverStatus_RECEIVER_STATUS_FAILED {
					t.Fatalf("result %v, want failed", result)
				}
				msg = result.GetError()
			}
			if !strings.Contains(msg, tc.errText) {
				t.Errorf("error %q does not say %q", msg, tc.errText)
			}
			if _, err := c.Read("a01", man.GetDigest()); err == nil {
				t.Error("object visible after a failed stream")
			}
		})
	}
}
