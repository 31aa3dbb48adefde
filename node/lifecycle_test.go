package node_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/identity"
	"github.com/treecast/treecast/node/nodetest"
	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// TestRemove: rm by tag on every agent, and a channel's latest refused without force.
func TestRemove(t *testing.T) {
	c := nodetest.StartCluster(t, 3, nodetest.Options{Channels: func(i int) []string {
		if i == 2 {
			return []string{"web"}
		}
		return nil
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := c.Agents[0].Push(ctx, node.Object{Path: mustWrite(t, c, 0, "a.bin", randomBytes(200_000, 21))}, "all", node.PushOptions{Tag: "a:1"})
	if err != nil || rep.Failed() != 0 {
		t.Fatal(err, rep)
	}
	op, err := c.Identity("op", identity.RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	grant, err := node.SignRemove(op, "a:1", false, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rs, err := c.Agents[1].RemoveObject(node.WithRemoveGrant(ctx, grant), "a:1", "a00,a02", false) // a01 asks the others
	if err != nil || len(rs) != 2 {
		t.Fatalf("remove: %+v %v", rs, err)
	}
	for _, r := range rs {
		if !r.Removed || r.Err != "" || r.Digest != rep.Digest {
			t.Errorf("remove on %s: %+v", r.Node, r)
		}
	}
	for _, a := range []*node.Agent{c.Agents[0], c.Agents[2]} {
		if _, err := c.Read(a.Name(), rep.Digest); err == nil || len(a.Tags()) != 0 {
			t.Errorf("%s still holds %s or its tag", a.Name(), rep.Digest)
		}
	}
	if _, err := c.Read("a01", rep.Digest); err != nil {
		t.Errorf("a01 was not a target but lost its copy: %v", err)
	}
	// The channel's latest version is pinned.
	pub, err := c.Agents[0].Publish(ctx, "web", node.Object{Path: mustWrite(t, c, 0, "w.bin", randomBytes(100_000, 22))}, node.PushOptions{})
	if err != nil || pub.Failed() != 0 {
		t.Fatal(err, pub)
	}
	if err := c.WaitFor(ctx, "a02 to learn web's version", func() bool { return channelOf(c.Agents[2], "web").Latest.Digest == pub.Digest }); err != nil {
		t.Fatal(err)
	}
	rs, _ = c.Agents[2].RemoveObject(ctx, pub.Digest, "", false)
	if len(rs) != 1 || rs[0].Removed || rs[0].Err == "" {
		t.Errorf("remove of a channel's latest without force: %+v", rs)
	}
	rs, _ = c.Agents[2].RemoveObject(ctx, pub.Digest, "", true)
	if len(rs) != 1 || !rs[0].Removed {
		t.Errorf("forced remove: %+v", rs)
	}
	// Deleting the channel spreads to every agent, and unpins its objects.
	if _, err := c.Agents[0].DeleteChannel("web", ""); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitFor(ctx, "every agent to drop web", func() bool {
		for _, a := range c.Agents {
			if channelOf(a, "web").Latest.Digest != "" {
				return false
			}
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if rs, _ := c.Agents[0].RemoveObject(ctx, pub.Digest, "", false); len(rs) != 1 || !rs[0].Removed {
		t.Errorf("remove after the channel's deletion: %+v", rs)
	}
	if _, err := c.Agents[0].DeleteChannel("nosuch", ""); err == nil {
		t.Error("deleting an unknown channel succeeded")
	}
}

// TestQuotaEvictsLeastRecentlyUsed: a receiver at its quota evicts the least recently used
// object to take a new one, never a channel's latest version.
func TestQuotaEvictsLeastRecentlyUsed(t *testing.T) {
	const size = 300_000
	c := nodetest.StartCluster(t, 2, nodetest.Options{
		Channels: func(i int) []string { return []string{"web"} },
		Configure: func(i int, cfg *node.Config) {
			if i == 1 {
				cfg.Limits.StoreQuota = 2*size + size/2 // two objects fit, not three
			}
		}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	push := func(name string, seed uint64, pub bool) string {
		t.Helper()
		obj := node.Object{Path: mustWrite(t, c, 0, name, randomBytes(size, seed))}
		var rep node.Report
		var err error
		if pub {
			rep, err = c.Agents[0].Publish(ctx, "web", obj, node.PushOptions{})
		} else {
			rep, err = c.Agents[0].Push(ctx, obj, "a01", node.PushOptions{})
		}
		if err != nil || rep.Failed() != 0 {
			t.Fatal(name, err, rep)
		}
		return rep.Digest
	}
	latest := push("web.bin", 31, true) // the oldest, but the channel's latest
	if err := c.WaitFor(ctx, "a01 to learn web's version", func() bool { return channelOf(c.Agents[1], "web").Latest.Digest == latest }); err != nil {
		t.Fatal(err)
	}
	old := push("old.bin", 32, false)
	recent := push("new.bin", 33, false)
	if _, err := c.Read("a01", old); err == nil {
		t.Error("a01 kept the least recently used object over its quota")
	}
	for _, d := range []string{latest, recent} {
		if _, err := c.Read("a01", d); err != nil {
			t.Errorf("a01 lost %s: %v", d, err)
		}
	}
	if n := c.Agents[1].Metric("treecast_store_evictions_total"); n != 1 {
		t.Errorf("treecast_store_evictions_total = %v, want 1", n)
	}
}

// TestChannelRetention: with ChannelRetain 1, a subscriber keeps only the newest version.
func TestChannelRetention(t *testing.T) {
	c := nodetest.StartCluster(t, 2, nodetest.Options{
		Channels:  func(i int) []string { return []string{"web"} },
		Configure: func(i int, cfg *node.Config) { cfg.ChannelRetain = 1 }})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ds []string
	for i := range 2 {
		rep, err := c.Agents[0].Publish(ctx, "web", node.Object{Path: mustWrite(t, c, 0, "v.bin", randomBytes(50_000, uint64(40+i)))}, node.PushOptions{})
		if err != nil || rep.Failed() != 0 {
			t.Fatal(err, rep)
		}
		ds = append(ds, rep.Digest)
		if err := c.WaitFor(ctx, "a01 to hold the version", func() bool { return channelOf(c.Agents[1], "web").Held.Digest == rep.Digest }); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WaitFor(ctx, "retention to remove the first version", func() bool { _, err := c.Read("a01", ds[0]); return err != nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read("a01", ds[1]); err != nil {
		t.Errorf("retention removed the newest version: %v", err)
	}
}

// TestRemoveNeedsOperatorGrant: an agent asked by another agent (a node certificate) removes
// only with an operator's fresh signature over that very remove.
func TestRemoveNeedsOperatorGrant(t *testing.T) {
	c := nodetest.StartCluster(t, 2, nodetest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := c.Agents[0].Push(ctx, node.Object{Path: mustWrite(t, c, 0, "g.bin", randomBytes(50_000, 23))}, "all", node.PushOptions{})
	if err != nil || rep.Failed() != 0 {
		t.Fatal(err, rep)
	}
	cc, err := c.Dial(c.Agents[1].Addr(), "a00", identity.RoleNode) // a node asks a01
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := pb.NewAgentClient(cc)
	op, err := c.Identity("op", identity.RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := c.Identity("a00", identity.RoleNode)
	if err != nil {
		t.Fatal(err)
	}
	signed := func(src *identity.Source, ref string, at time.Time) *pb.RemoveGrant {
		g, err := node.SignRemove(src, ref, false, at)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	nodeSigned := signed(op, rep.Digest, time.Now())
	nodeSigned.Cert, nodeSigned.Signature = nil, nil
	if sig, cert, err := rogue.Sign([]byte("treecast-remove\x00" + rep.Digest + "\x000\x00" + fmt.Sprint(nodeSigned.UnixSeconds))); err == nil {
		nodeSigned.Cert, nodeSigned.Signature = cert, sig
	}
	for _, tc := range []struct {
		name  string
		grant *pb.RemoveGrant
	}{
		{"no grant", nil},
		{"signed by a node", nodeSigned},
		{"another object's grant", signed(op, "sha256:"+strings.Repeat("0", 64), time.Now())},
		{"an old grant", signed(op, rep.Digest, time.Now().Add(-time.Hour))},
	} {
		_, err := client.Remove(ctx, &pb.RemoveRequest{Ref: rep.Digest, Grant: tc.grant})
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s: %v, want PermissionDenied", tc.name, err)
		}
		if _, err := c.Read("a01", rep.Digest); err != nil {
			t.Fatalf("%s: a01 lost its copy: %v", tc.name, err)
		}
	}
	resp, err := client.Remove(ctx, &pb.RemoveRequest{Ref: rep.Digest, Grant: signed(op, rep.Digest, time.Now())})
	if err != nil || len(resp.GetResults()) != 1 || !resp.GetResults()[0].GetRemoved() {
		t.Fatalf("remove with the operator's grant: %v %v", resp, err)
	}
	if _, err := c.Read("a01", rep.Digest); err == nil {
		t.Fatal("a01 still holds the object")
	}
}

// TestRelayRefusesAtBegin: a relay whose store cannot begin the object (over its quota)
// refuses its stream with the reason, after it has opened its child's stream (an object new
// to an agent is begun while the children's streams open); the child is re-attached and
// verifies its copy, and the relay keeps nothing of the object.
func TestRelayRefusesAtBegin(t *testing.T) {
	const size = 600_000
	c := nodetest.StartCluster(t, 3, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		if i == 1 {
			cfg.Limits.StoreQuota = size / 2
		}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	data := randomBytes(size, 35)
	rep, err := c.Agents[0].Push(ctx, node.Object{Path: mustWrite(t, c, 0, "big.bin", data)}, "a01,a02", node.PushOptions{Strategy: "chain"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Receivers {
		switch r.Receiver {
		case "a01":
			if r.OK || !strings.Contains(r.Err, "quota") {
				t.Errorf("a01 (over its quota): ok %v, %q; want a failure that names the quota", r.OK, r.Err)
			}
		case "a02":
			if !r.OK {
				t.Errorf("a02 (below the refusing relay): %q, want verified", r.Err)
			}
		}
	}
	if got, err := c.Read("a02", rep.Digest); err != nil || !bytes.Equal(got, data) {
		t.Errorf("a02's copy differs or is missing: %v", err)
	}
	if _, err := c.Read("a01", rep.Digest); err == nil {
		t.Error("a01 holds the object it refused")
	}
	if n := c.Agents[1].PushStreams("raw") + c.Agents[1].PushStreams("grpc"); n < 1 {
		t.Errorf("a01 opened %v streams to its child before refusing, want at least 1", n)
	}
}
