package node_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/nodetest"
)

// TestRelayDialsChildGossipHasNotBrought: a relay whose gossip does not know its child yet
// (a member that joined moments ago, a large cluster still converging) dials it at the
// address the push's header carries, instead of waiting for gossip: every receiver verifies
// its copy with no stream failed and no repair, over TLS.
func TestRelayDialsChildGossipHasNotBrought(t *testing.T) {
	var hide atomic.Bool
	c := nodetest.StartCluster(t, 4, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		cfg.DialTimeout = 2 * time.Second // without the header's address a child would fail in 2 s
		self := cfg.Name
		// Once hidden, every receiver knows only the source and itself; the source knows all.
		node.SetGossipHide(cfg, func(name string) bool {
			return i > 0 && hide.Load() && name != self && name != nodetest.Name(0)
		})
	}})
	hide.Store(true)
	if n := len(c.Agents[1].Members()); n != 2 {
		t.Fatalf("a01 lists %d members with the others hidden, want 2 (the source and itself)", n)
	}
	data := randomBytes(1<<20, 11)
	path := mustWrite(t, c, 0, "obj.bin", data)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := c.Agents[0].Push(ctx, node.Object{Path: path}, "all", node.PushOptions{Strategy: "chain"})
	if err != nil {
		t.Fatal(err)
	}
	checkCopies(t, c, rep, data)
	hinted := 0.0
	for _, a := range c.Agents[1:] {
		hinted += a.DialsByHeaderAddress()
		if n := a.Metric("treecast_repairs_total"); n != 0 {
			t.Errorf("%s counted %v repairs, want none", a.Name(), n)
		}
	}
	// A chain of three receivers has two relays, each dialling a child it does not know.
	if hinted != 2 {
		t.Errorf("relays dialled %v children at the header's address, want 2", hinted)
	}
	if n := c.Agents[0].DialsByHeaderAddress(); n != 0 {
		t.Errorf("the source, which knows every member, dialled %v at the header's address", n)
	}
}

// TestHeaderAddressMustProveName: an address in a header is only where to dial; the TLS
// handshake must still prove the child's name, so a header naming another agent's address
// (a stale entry, a lying parent) reaches no one.
func TestHeaderAddressMustProveName(t *testing.T) {
	var hide atomic.Bool
	c := nodetest.StartCluster(t, 3, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		node.SetGossipHide(cfg, func(name string) bool { return i == 1 && hide.Load() && name == nodetest.Name(2) })
	}})
	hide.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Agents[1].OpenPush(ctx, "a02", c.Agents[2].Addr()); err != nil {
		t.Fatalf("a01 to a02 at a02's own address: %v", err)
	}
	err := c.Agents[1].OpenPush(ctx, "a02", c.Agents[0].Addr())
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a01 to a02 at a00's address: %v, want a certificate error", err)
	}
	if n := c.Agents[1].DialsByHeaderAddress(); n != 2 {
		t.Errorf("a01 dialled %v times at a header's address, want 2", n)
	}
}
