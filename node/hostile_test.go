package node_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/identity"
	"github.com/treecast/treecast/node/nodetest"
	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// The hostile-input suite: a rogue gRPC client and a rogue gossip member try the attacks an
// agent must withstand, on a real secured cluster; every attack is refused or bounded, and
// the agents' memory is checked afterwards.

// everyRPC calls each RPC of the agent at addr once over conn and returns the gRPC codes.
func everyRPC(ctx context.Context, conn *grpc.ClientConn) map[string]codes.Code {
	cl := pb.NewAgentClient(conn)
	out := map[string]codes.Code{}
	streamCode := func(recv func() error) codes.Code { return status.Code(recv()) }
	if st, err := cl.Submit(ctx, &pb.SubmitRequest{Object: &pb.SubmitRequest_Digest{Digest: "sha256:" + strings.Repeat("ab", 32)}, Target: &pb.Target{Kind: &pb.Target_All{All: true}}}); err != nil {
		out["Submit"] = status.Code(err)
	} else {
		out["Submit"] = streamCode(func() error { _, err := st.Recv(); return err })
	}
	if st, err := cl.Push(ctx); err != nil {
		out["Push"] = status.Code(err)
	} else {
		_ = st.Send(&pb.PushRequest{Msg: &pb.PushRequest_End{End: &pb.PushEnd{}}})
		out["Push"] = streamCode(func() error { _, err := st.Recv(); return err })
	}
	if st, err := cl.Fetch(ctx, &pb.FetchRequest{Digest: "sha256:" + strings.Repeat("ab", 32), AllowPartial: true}); err != nil {
		out["Fetch"] = status.Code(err)
	} else {
		out["Fetch"] = streamCode(func() error { _, err := st.Recv(); return err })
	}
	_, err := cl.Status(ctx, &pb.StatusRequest{})
	out["Status"] = status.Code(err)
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	out["Health"] = status.Code(err)
	return out
}

func heapMiB() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapInuse) / (1 << 20)
}

func TestHostile(t *testing.T) {
	c := nodetest.StartCluster(t, 3, nodetest.Options{Channels: func(i int) []string { return []string{"web"} }, Configure: func(i int, cfg *node.Config) {
		cfg.Limits.HeaderTimeout = 500 * time.Millisecond
		cfg.Limits.MaxFetchRanges = 16
		cfg.Limits.MaxPushStreamsPerPeer = 8
	}})
	target := c.Agents[1]
	addr := target.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	data := randomBytes(200_000, 5)
	digest, err := c.Agents[0].Put(mustWrite(t, c, 0, "obj", data), 16<<10)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := c.Agents[0].Push(ctx, node.Object{Digest: digest}, "a01,a02", node.PushOptions{}); err != nil || rep.Failed() != 0 {
		t.Fatalf("setup push: %v %+v", err, rep.Receivers)
	}
	before := heapMiB()

	t.Run("plaintext and foreign clients are refused on every RPC", func(t *testing.T) {
		plain, _ := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		defer plain.Close()
		otherCA := t.TempDir()
		_ = identity.InitCA(otherCA)
		_ = identity.Issue(otherCA, "op", identity.RoleOperator, nil)
		cert, key := identity.Files(otherCA, "op")
		ca, _ := identity.CAFiles(otherCA)
		src, err := identity.Load(cert, key, ca)
		if err != nil {
			t.Fatal(err)
		}
		foreign, _ := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(src.ClientConfig(""))))
		defer foreign.Close()
		for who, conn := range map[string]*grpc.ClientConn{"plaintext": plain, "another CA": foreign} {
			for rpc, code := range everyRPC(ctx, conn) {
				if code != codes.Unavailable {
					t.Errorf("%s client, %s: code %v, want the connection refused (Unavailable)", who, rpc, code)
				}
			}
		}
	})

	t.Run("roles", func(t *testing.T) {
		op := clientConn(t, c, addr, "op", identity.RoleOperator)
		nodeConn := clientConn(t, c, addr, "a00", identity.RoleNode)
		opCodes, nodeCodes := everyRPC(ctx, op), everyRPC(ctx, nodeConn)
		if opCodes["Push"] != codes.PermissionDenied {
			t.Errorf("operator Push: %v, want PermissionDenied", opCodes["Push"])
		}
		if opCodes["Fetch"] != codes.PermissionDenied { // operators read complete objects only
			t.Errorf("operator partial Fetch: %v, want PermissionDenied", opCodes["Fetch"])
		}
		if nodeCodes["Submit"] != codes.PermissionDenied {
			t.Errorf("node Submit: %v, want PermissionDenied", nodeCodes["Submit"])
		}
		for _, rpc := range []string{"Status", "Health"} {
			if opCodes[rpc] != codes.OK || nodeCodes[rpc] != codes.OK {
				t.Errorf("%s: operator %v, node %v, want OK for both", rpc, opCodes[rpc], nodeCodes[rpc])
			}
		}
	})

	t.Run("a node cannot push as another, nor inject a made-up source's object", func(t *testing.T) {
		cl := client(t, c, addr, "a02", identity.RoleNode)
		st, err := cl.Push(ctx)
		if err != nil {
			t.Fatal(err)
		}
		plan, _ := node.EncodePlan("a00", []string{"a01"}, "chain")
		_ = st.Send(&pb.PushRequest{Msg: &pb.PushRequest_Header{Header: &pb.PushHeader{TransferId: "x", Manifest: manifestOf(data, 16<<10),
			Plan: plan, Node: "a01", Source: "a00", Parent: "a00", Stripes: []uint32{0}}}})
		if _, err := st.Recv(); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("a02 pushing as a00: %v, want PermissionDenied", err)
		}
	})

	t.Run("a plan past the limits is refused before anything is held", func(t *testing.T) {
		var names []string
		for i := range 2000 {
			names = append(names, fmt.Sprintf("ghost%04d", i))
		}
		wide, _ := node.EncodePlan("a00", append([]string{"a01"}, names...), "unicast") // a01 among 2,000 children of a00
		deep, _ := node.EncodePlan("a00", append([]string{"a01"}, names...), "chain")   // 2,000 below a01
		for name, plan := range map[string][]byte{"deep chain": deep} {
			cl := client(t, c, addr, "a00", identity.RoleNode)
			st, _ := cl.Push(ctx)
			_ = st.Send(&pb.PushRequest{Msg: &pb.PushRequest_Header{Header: &pb.PushHeader{TransferId: "p-" + name, Manifest: manifestOf(data, 16<<10),
				Plan: plan, Node: "a01", Source: "a00", Parent: "a00", Stripes: []uint32{0}}}})
			_, err := st.Recv()
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "levels") {
				t.Errorf("%s: %v, want InvalidArgument naming the depth", name, err)
			}
		}
		_ = wide // a wide plan is fine for a01 itself: the fan-out limit applies to its own children
	})

	t.Run("a header that never comes ends the stream", func(t *testing.T) {
		cl := client(t, c, addr, "a00", identity.RoleNode)
		st, _ := cl.Push(ctx)
		start := time.Now()
		_, err := st.Recv()
		if status.Code(err) != codes.DeadlineExceeded || time.Since(start) > 10*time.Second {
			t.Fatalf("idle stream: %v after %v, want DeadlineExceeded within the header timeout", err, time.Since(start))
		}
	})

	t.Run("streams per peer are bounded", func(t *testing.T) {
		// 20 streams at once from one peer, none sending a header: at most 8 (the limit per
		// peer) are admitted, and they end at the header timeout; the others are refused.
		cl := client(t, c, addr, "a00", identity.RoleNode)
		codesOf := make(chan codes.Code, 20)
		for range 20 {
			go func() {
				st, err := cl.Push(ctx)
				if err == nil {
					_, err = st.Recv()
				}
				codesOf <- status.Code(err)
			}()
		}
		count := map[codes.Code]int{}
		for range 20 {
			count[<-codesOf]++
		}
		if count[codes.ResourceExhausted] < 12 || count[codes.DeadlineExceeded] > 8 {
			t.Errorf("20 idle streams from one peer: %v, want at most 8 admitted (ending DeadlineExceeded) and the rest ResourceExhausted", count)
		}
	})

	t.Run("fetch ranges are bounded and may not overlap", func(t *testing.T) {
		cl := client(t, c, addr, "a00", identity.RoleNode)
		many := make([]*pb.ChunkRange, 100)
		for i := range many {
			many[i] = &pb.ChunkRange{Start: 0, End: 1}
		}
		for name, ranges := range map[string][]*pb.ChunkRange{"100 ranges": many, "overlap": {{Start: 0, End: 5}, {Start: 3, End: 7}}} {
			st, err := cl.Fetch(ctx, &pb.FetchRequest{Digest: digest, Ranges: ranges})
			if err == nil {
				for err == nil {
					_, err = st.Recv()
				}
			}
			if status.Code(err) != codes.InvalidArgument {
				t.Errorf("%s: %v, want InvalidArgument", name, err)
			}
		}
	})

	t.Run("a keyless gossip member is not admitted and changes no channel", func(t *testing.T) {
		mc := memberlist.DefaultLocalConfig()
		mc.Name, mc.BindAddr, mc.BindPort = "rogue", "127.0.0.1", 0
		mc.Logger = log.New(io.Discard, "", 0)
		forged := fmt.Sprintf(`{"l":[{"c":"web","d":"%s","v":%d,"s":1,"o":"a00"}]}`, digestOf([]byte("evil")), uint64(math.MaxUint64))
		mc.Delegate = rogueDelegate{meta: []byte(`{"g":"127.0.0.1:1"}`), state: []byte(forged)}
		ml, err := memberlist.Create(mc)
		if err != nil {
			t.Fatal(err)
		}
		defer ml.Shutdown()
		if _, err := ml.Join([]string{target.GossipAddr()}); err == nil {
			t.Error("a keyless member joined")
		}
		for _, m := range target.Members() {
			if m.Name == "rogue" {
				t.Fatal("the keyless member is listed")
			}
		}
		for _, ch := range target.Channels() {
			if ch.Name == "web" && ch.Latest.Digest == digestOf([]byte("evil")) {
				t.Fatal("the rogue's version was taken")
			}
		}
	})

	t.Run("a forged channel version from a key holder is refused", func(t *testing.T) {
		// A member with the gossip key but no certificate of the origin it claims: its
		// version is not signed by a00, so nobody takes it, and nothing pins the channel.
		mc := memberlist.DefaultLocalConfig()
		mc.Name, mc.BindAddr, mc.BindPort = "insider", "127.0.0.1", 0
		mc.Logger = log.New(io.Discard, "", 0)
		kr, _ := memberlist.NewKeyring(c.GossipKeys, c.GossipKeys[0])
		mc.Keyring = kr
		forged := fmt.Sprintf(`{"l":[{"c":"web","d":"%s","v":%d,"s":1,"o":"a00"}]}`, digestOf([]byte("evil")), time.Now().UnixNano())
		mc.Delegate = rogueDelegate{meta: []byte(`{"g":"127.0.0.1:1"}`), state: []byte(forged)}
		ml, err := memberlist.Create(mc)
		if err != nil {
			t.Fatal(err)
		}
		defer ml.Shutdown()
		if _, err := ml.Join([]string{target.GossipAddr()}); err != nil {
			t.Fatal(err)
		}
		// A real publish afterwards still wins.
		rep, err := c.Agents[0].Publish(ctx, "web", node.Object{Digest: digest}, node.PushOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.WaitFor(ctx, "the real version", func() bool {
			for _, ch := range target.Channels() {
				if ch.Name == "web" && ch.Latest.Digest == rep.Digest {
					return true
				}
			}
			return false
		}); err != nil {
			t.Fatal(err)
		}
		if target.Metric("treecast_channel_versions_rejected_total") == 0 {
			t.Error("the forged version was not counted as rejected")
		}
	})

	after := heapMiB()
	t.Logf("heap in use: %.1f MiB before the attacks, %.1f MiB after", before, after)
	if after > before*1.2+4 {
		t.Errorf("heap grew from %.1f to %.1f MiB", before, after)
	}
}

// rogueDelegate gossips fixed metadata and channel state.
type rogueDelegate struct{ meta, state []byte }

func (d rogueDelegate) NodeMeta(int) []byte             { return d.meta }
func (d rogueDelegate) NotifyMsg([]byte)                {}
func (d rogueDelegate) GetBroadcasts(int, int) [][]byte { return nil }
func (d rogueDelegate) LocalState(bool) []byte          { return d.state }
func (d rogueDelegate) MergeRemoteState([]byte, bool)   {}
