package node_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/nodetest"
	"github.com/treecast/treecast/node/transfer"
)

// TestPushReleasesBuffers pushes over the push wire with parity (parity chunks kept for
// decoding, forwarded by relays) and chunks of 2 MiB (buffers mapped apart, which the
// garbage collector would never give back), through a relay with several children (chunks
// cut through to them): once every copy is verified, every pooled buffer the agents took is
// back in the pool.
func TestPushReleasesBuffers(t *testing.T) {
	c := nodetest.StartCluster(t, 6, nodetest.Options{ChunkSize: 2 << 20})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	before := transfer.PoolInUse()
	for k, opts := range []node.PushOptions{
		{Strategy: "forest", Stripes: 2, Parity: 1},
		{Strategy: "tree"},
	} {
		data := randomBytes(20<<20+12345, uint64(90+k))
		rep, err := c.Agents[0].Push(ctx, node.Object{Path: mustWrite(t, c, 0, "obj.bin", data)}, "all", opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rep.Receivers {
			if !r.OK {
				t.Fatalf("%s (%+v): %s", r.Receiver, opts, r.Err)
			}
			if got, err := c.Read(r.Receiver, rep.Digest); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s (%+v): copy differs (%v)", r.Receiver, opts, err)
			}
		}
		// The last buffers go back as the streams wind down.
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		err = c.WaitFor(wctx, "every pooled buffer back", func() bool { return transfer.PoolInUse() == before })
		wcancel()
		if err != nil {
			t.Fatalf("after a push (%+v), %d bytes of pooled buffers still referenced (%d before): %v", opts, transfer.PoolInUse(), before, err)
		}
	}
}
