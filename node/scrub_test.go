package node_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/nodetest"
)

// TestScrubRepairsFlippedByte: a byte flipped in a stored object file on disk is found by
// the scrub, the object is taken out of service, and the bad chunk is fetched again from
// another holder.
func TestScrubRepairsFlippedByte(t *testing.T) {
	c := nodetest.StartCluster(t, 3, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		if i == 1 {
			cfg.ScrubRate = 64 << 20
			cfg.ScrubPause = 50 * time.Millisecond
		}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data := randomBytes(500_000, 51)
	rep, err := c.Agents[0].Push(ctx, node.Object{Path: mustWrite(t, c, 0, "o.bin", data)}, "all", node.PushOptions{})
	if err != nil || rep.Failed() != 0 {
		t.Fatal(err, rep)
	}
	file := filepath.Join(c.Dirs[1], "store", "objects", strings.TrimPrefix(rep.Digest, "sha256:"))
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte{0}
	const at = 300_123
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
	f.Close()
	a := c.Agents[1]
	if err := c.WaitFor(ctx, "the scrub to repair the object", func() bool {
		return a.Metric("treecast_scrub_repairs_total") >= 1
	}); err != nil {
		t.Fatal(err, a.Metric("treecast_scrub_bad_chunks_total"))
	}
	if n := a.Metric("treecast_scrub_bad_chunks_total"); n != 1 {
		t.Errorf("treecast_scrub_bad_chunks_total = %v, want 1", n)
	}
	if got, err := c.Read("a01", rep.Digest); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("a01's copy after the repair: %v", err)
	}
	if in := a.Metric("treecast_bytes_in_total"); in > float64(len(data)+64<<10) {
		t.Errorf("a01 received %v bytes in all; the repair should fetch one chunk", in)
	}
	// Scrubbing goes on: the repaired object verifies whole at the next passes.
	if err := c.WaitFor(ctx, "the scrub to read the repaired object again", func() bool {
		return a.Metric("treecast_scrub_bytes_total") >= float64(2*len(data))
	}); err != nil {
		t.Fatal(err)
	}
	if n := a.Metric("treecast_scrub_bad_chunks_total"); n != 1 {
		t.Errorf("treecast_scrub_bad_chunks_total = %v after more passes, want 1", n)
	}
}
