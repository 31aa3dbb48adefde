package node_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/nodetest"
)

// rackLabels puts a00 and a01 in rack r0, the others in rack r1.
func rackLabels(i int) map[string]string {
	return map[string]string{"dc": "d", "pod": "p", "rack": []string{"r0", "r1"}[min(i/2, 1)]}
}

// TestTagPullFromNearestHolder: a tag pushed to some agents is resolved by an agent that
// neither holds the object nor knows the tag; it fetches the object from the holder in its
// own rack, byte-exact, and records the tag.
func TestTagPullFromNearestHolder(t *testing.T) {
	c := nodetest.StartCluster(t, 4, nodetest.Options{Labels: rackLabels})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data := randomBytes(600_000, 12)
	rep, err := c.Agents[0].Push(ctx, node.Object{Path: mustWrite(t, c, 0, "app.tar", data)}, "a02", node.PushOptions{Tag: "app:1.0"})
	if err != nil || rep.Failed() != 0 {
		t.Fatal(err, rep)
	}
	for _, name := range []string{"a00", "a02"} {
		if tags := c.Agent(name).Tags(); len(tags) != 1 || tags[0].Tag != "app:1.0" || tags[0].Digest != rep.Digest || !tags[0].Held {
			t.Errorf("%s tags %+v, want app:1.0 -> %s held", name, tags, rep.Digest)
		}
	}
	// a03 (rack r1) holds nothing and knows no tag: a02 (rack r1) is nearer than a00 (r0).
	res, err := c.Agents[3].Pull(ctx, "app:1.0")
	if err != nil {
		t.Fatal(err)
	}
	if res.Holder != "a02" || res.Digest != rep.Digest || res.BytesFetched != int64(len(data)) {
		t.Errorf("pull: %+v, want %s from a02 (the same rack), %d bytes", res, rep.Digest, len(data))
	}
	if got, err := c.Read("a03", rep.Digest); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("a03 does not hold a byte-exact copy: %v", err)
	}
	if tags := c.Agents[3].Tags(); len(tags) != 1 || tags[0].Digest != rep.Digest {
		t.Errorf("a03 did not record the pulled tag: %+v", tags)
	}
	// A second pull is local.
	if res, err := c.Agents[3].Pull(ctx, rep.Digest); err != nil || res.Holder != "" || res.BytesFetched != 0 {
		t.Errorf("second pull: %+v %v, want nothing fetched", res, err)
	}
	for ref, want := range map[string]error{"app:9": node.ErrUnknownTag, "sha256:abc": node.ErrBadRef, "app": node.ErrBadRef,
		"sha256:" + strings.Repeat("0", 64): node.ErrUnknownDigest} {
		if _, err := c.Agents[1].Pull(ctx, ref); !errors.Is(err, want) {
			t.Errorf("pull %s: %v, want %v", ref, err, want)
		}
	}
}

// TestPullResumes: a pull cut short keeps the chunks it verified; the next one fetches only
// the others.
func TestPullResumes(t *testing.T) {
	const size, chunk = 1 << 20, 32 << 10
	c := nodetest.StartCluster(t, 2, nodetest.Options{ChunkSize: chunk, Configure: func(i int, cfg *node.Config) {
		if i == 0 {
			cfg.RateLimit = 1 << 20 // the holder serves at 1 MiB/s: the pull takes about a second
		}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data := randomBytes(size, 13)
	digest, err := c.Agents[0].Put(mustWrite(t, c, 0, "big.bin", data), chunk)
	if err != nil {
		t.Fatal(err)
	}
	pctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { _, err := c.Agents[1].Pull(pctx, digest); done <- err }()
	staged := func() int {
		st, _ := c.Agents[1].Status()
		for _, o := range st.Objects {
			if o.Digest == digest && !o.Complete {
				return o.Held
			}
		}
		return 0
	}
	if err := c.WaitFor(ctx, "a01 to stage some chunks", func() bool { return staged() >= 4 }); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := <-done; err == nil {
		t.Fatal("the cut pull succeeded")
	}
	held := staged()
	res, err := c.Agents[1].Pull(ctx, digest)
	if err != nil {
		t.Fatal(err)
	}
	if res.AlreadyHeld < held || res.AlreadyHeld == 0 || res.BytesFetched > int64(size-res.AlreadyHeld*chunk) {
		t.Errorf("resumed pull: %+v; %d chunks were staged, want only the others fetched", res, held)
	}
	if got, err := c.Read("a01", digest); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("a01 does not hold a byte-exact copy: %v", err)
	}
}
