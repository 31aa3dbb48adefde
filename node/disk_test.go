package node_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/nodetest"
	"github.com/treecast/treecast/node/store"
)

// fullFile fails every write with ENOSPC, as a full disk does.
type fullFile struct{ store.File }

func (fullFile) Write([]byte) (int, error) {
	return 0, &os.PathError{Op: "write", Path: "injected", Err: syscall.ENOSPC}
}
func (fullFile) WriteAt([]byte, int64) (int, error) {
	return 0, &os.PathError{Op: "write", Path: "injected", Err: syscall.ENOSPC}
}

// checkFullDiskReceiver checks the outcome of a push of digest to a cluster whose agent full
// has no room for it: full failed with a no-space error, the others verified, and full's
// store shows nothing of the object, neither complete nor partial.
func checkFullDiskReceiver(t *testing.T, c *nodetest.Cluster, rep node.Report, full string, data []byte) {
	t.Helper()
	if len(rep.Receivers) != len(c.Agents)-1 {
		t.Fatalf("%d results, want %d", len(rep.Receivers), len(c.Agents)-1)
	}
	for _, r := range rep.Receivers {
		switch {
		case r.Receiver == full && r.OK:
			t.Errorf("%s verified an object its disk has no room for", full)
		case r.Receiver == full && !strings.Contains(r.Err, "no space left on device"):
			t.Errorf("%s failed with %q, want an error that says no space is left", full, r.Err)
		case r.Receiver != full && !r.OK:
			t.Errorf("%s: %s (only %s's disk is full)", r.Receiver, r.Err, full)
		case r.Receiver != full:
			if got, err := c.Read(r.Receiver, rep.Digest); err != nil || !bytes.Equal(got, data) {
				t.Errorf("%s: copy differs or missing: %v", r.Receiver, err)
			}
		}
	}
	if _, err := c.Read(full, rep.Digest); err == nil {
		t.Errorf("%s exposes the object its disk had no room for", full)
	}
	st, err := c.Agent(full).Status()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range st.Objects {
		if o.Digest == rep.Digest {
			t.Errorf("%s still lists %s (%d of %d chunks, complete=%v): the partial object holds the disk", full, o.Digest, o.Held, o.Chunks, o.Complete)
		}
	}
}

// TestFullDiskInjected: a receiver whose writes of one object fail with ENOSPC reports the
// failure with the reason, keeps nothing of that object, and receives the next push.
func TestFullDiskInjected(t *testing.T) {
	data := randomBytes(300_000, 31)
	const chunk = 16 << 10
	bigHex := store.DigestOf(data).Hex()
	third := randomBytes(50_000, 35) // its staging file cannot even be created
	thirdHex := store.DigestOf(third).Hex()
	c := nodetest.StartCluster(t, 3, nodetest.Options{ChunkSize: chunk, Configure: func(i int, cfg *node.Config) {
		if i != 2 {
			return
		}
		node.SetStoreOpenFile(cfg, func(name string, flag int, perm os.FileMode) (store.File, error) {
			if filepath.Base(name) == thirdHex+".data" {
				return nil, &os.PathError{Op: "open", Path: name, Err: syscall.ENOSPC}
			}
			f, err := os.OpenFile(name, flag, perm)
			if err == nil && filepath.Base(name) == bigHex+".data" && filepath.Base(filepath.Dir(name)) == "staging" {
				return fullFile{f}, nil // the disk has room for everything but this object's chunks
			}
			return f, err
		})
	}})
	path := mustWrite(t, c, 0, "big.bin", data)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := c.Agents[0].Push(ctx, node.Object{Path: path}, "all", node.PushOptions{Strategy: "unicast"})
	if err != nil {
		t.Fatal(err)
	}
	checkFullDiskReceiver(t, c, rep, "a02", data)

	small := randomBytes(40_000, 32)
	rep2, err := c.Agents[0].Push(ctx, node.Object{Path: mustWrite(t, c, 0, "small.bin", small)}, "a02", node.PushOptions{})
	if err != nil || rep2.Failed() != 0 {
		t.Fatalf("push after the full disk: %v %+v", err, rep2.Receivers)
	}
	if got, err := c.Read("a02", rep2.Digest); err != nil || !bytes.Equal(got, small) {
		t.Errorf("a02's copy of the small object differs or is missing: %v", err)
	}

	// A receiver that cannot even begin the object reports why.
	rep3, err := c.Agents[0].Push(ctx, node.Object{Path: mustWrite(t, c, 0, "third.bin", third)}, "all", node.PushOptions{Strategy: "unicast"})
	if err != nil {
		t.Fatal(err)
	}
	checkFullDiskReceiver(t, c, rep3, "a02", third)
}

// TestFullDiskTmpfs gives one receiver a 2 MiB tmpfs as its data directory and pushes a
// 4 MiB object: that receiver fails with "no space left on device", shows no partial object,
// and then receives a small push (the failed object's space was freed); the others verify.
// It needs root on Linux and is skipped otherwise.
func TestFullDiskTmpfs(t *testing.T) {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("needs root on Linux to mount a tmpfs; TestFullDiskInjected covers the logic")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=2m"); err != nil {
		t.Skipf("cannot mount a tmpfs on %s (%v); TestFullDiskInjected covers the logic", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	c := nodetest.StartCluster(t, 3, nodetest.Options{ChunkSize: 64 << 10, Configure: func(i int, cfg *node.Config) {
		if i == 2 {
			cfg.DataDir = dir
		}
	}})
	data := randomBytes(4<<20, 33)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := c.Agents[0].Push(ctx, node.Object{Path: mustWrite(t, c, 0, "big.bin", data)}, "all", node.PushOptions{Strategy: "unicast"})
	if err != nil {
		t.Fatal(err)
	}
	checkFullDiskReceiver(t, c, rep, "a02", data)
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	if free := int64(fs.Bavail) * int64(fs.Bsize); free < 1<<20 {
		t.Errorf("%d bytes free on a02's 2 MiB disk after the failed push: the failed object still holds its space", free)
	}

	small := randomBytes(200_000, 34)
	rep2, err := c.Agents[0].Push(ctx, node.Object{Path: mustWrite(t, c, 0, "small.bin", small)}, "a02", node.PushOptions{})
	if err != nil || rep2.Failed() != 0 {
		t.Fatalf("push after the full disk: %v %+v", err, rep2.Receivers)
	}
	if got, err := c.Read("a02", rep2.Digest); err != nil || !bytes.Equal(got, small) {
		t.Errorf("a02's copy of the small object differs or is missing: %v", err)
	}
}
