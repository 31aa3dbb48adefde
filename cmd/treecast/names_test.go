package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTagGetAndOutputSafety: push --tag, then get of the tag from an agent that neither holds
// the object nor knows the tag; -o refuses what it must not replace; -o - writes to stdout.
func TestTagGetAndOutputSafety(t *testing.T) {
	cl := startCluster(t)
	data := randomBytes(300_000, 7)
	path, err := cl.WriteFile(0, "app.tar", data)
	if err != nil {
		t.Fatal(err)
	}
	res, err := pushJSONOut(t, path, "--to", "a01", "--tag", "app:2.1", "--agent", cl.Agents[0].Addr())
	if err != nil {
		t.Fatal(err)
	}
	tagsOut, _, err := run(t, "tags", "--agent", cl.Agents[1].Addr())
	if err != nil || !strings.Contains(tagsOut, "app:2.1") || !strings.Contains(tagsOut, res.Digest) {
		t.Fatalf("tags on the receiver: %v\n%s", err, tagsOut)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "app.tar")
	_, stderr, err := run(t, "get", "app:2.1", "-o", out, "--agent", cl.Agents[4].Addr())
	if err != nil {
		t.Fatalf("get of the tag from a04: %v\n%s", err, stderr)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Fatal("get wrote different bytes")
	}
	if !strings.Contains(stderr, "fetched "+res.Digest) {
		t.Errorf("get did not say it fetched from the cluster: %s", stderr)
	}

	// -o never replaces what is there without --force, and never a link, a directory or a device.
	os.WriteFile(out, []byte("mine"), 0o644)
	link := filepath.Join(dir, "link")
	os.Symlink(out, link)
	for name, target := range map[string]string{"existing file": out, "symlink": link, "directory": dir, "device": os.DevNull} {
		_, _, err := run(t, "get", res.Digest, "-o", target, "--agent", cl.Agents[1].Addr())
		if exitCode(err) != 2 {
			t.Errorf("get -o %s (%s): exit %d (%v), want 2", target, name, exitCode(err), err)
		}
	}
	if got, _ := os.ReadFile(out); string(got) != "mine" {
		t.Errorf("a refused get changed the file: %q", got)
	}
	if fi, err := os.Stat(os.DevNull); err != nil || fi.Mode().IsRegular() {
		t.Errorf("%s is no longer a device: %v", os.DevNull, err)
	}
	if _, _, err := run(t, "get", res.Digest, "-o", out, "--force", "--agent", cl.Agents[1].Addr()); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Error("get --force did not replace the file")
	}
	if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 {
		t.Error("the symlink was replaced")
	}
	stdout, _, err := run(t, "get", "app:2.1", "-o", "-", "--agent", cl.Agents[1].Addr())
	if err != nil || stdout != string(data) {
		t.Errorf("get -o -: %v, %d bytes on stdout, want %d", err, len(stdout), len(data))
	}
	if _, err := os.Stat("-"); err == nil {
		t.Error("get -o - made a file named -")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("get left files behind: %v", entries)
	}
	for _, args := range [][]string{{"get", "sha256:abc", "-o", out}, {"get", "app", "-o", out}, {"push", path, "--to", "all", "--tag", "bad tag"}} {
		if _, _, err := run(t, append(args, "--agent", cl.Agents[0].Addr())...); exitCode(err) != 2 {
			t.Errorf("%v: exit %d (%v), want 2", args, exitCode(err), err)
		}
	}
}

// TestRmAndChannelsRm: rm by tag on a target, a channel's latest refused without --force, a
// channel deleted everywhere.
func TestRmAndChannelsRm(t *testing.T) {
	cl := startCluster(t)
	src := cl.Agents[0].Addr()
	path, err := cl.WriteFile(0, "x.bin", randomBytes(100_000, 8))
	if err != nil {
		t.Fatal(err)
	}
	res, err := pushJSONOut(t, path, "--to", "rack=r1", "--tag", "x:1", "--agent", src)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "rm", "x:1", "--to", "rack=r1", "--agent", src)
	if err != nil || strings.Count(out, "removed") != 2 {
		t.Fatalf("rm --to rack=r1: %v\n%s", err, out)
	}
	for _, n := range []string{"a03", "a04"} {
		if _, err := cl.Read(n, res.Digest); err == nil {
			t.Errorf("%s still holds %s", n, res.Digest)
		}
	}
	if _, _, err := run(t, "rm", "x:1", "--agent", cl.Agents[3].Addr()); exitCode(err) != 1 {
		t.Errorf("rm of what is not held: exit %d (%v), want 1", exitCode(err), err)
	}
	if _, _, err := run(t, "rm", "sha256:abc", "--agent", src); exitCode(err) != 2 {
		t.Errorf("rm sha256:abc: exit %d, want 2", exitCode(err))
	}
	// A channel's latest version is refused without --force.
	pub, err := pushJSONOut(t, path, "--to", "channel:web", "--agent", src)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "rm", pub.Digest, "--agent", src); exitCode(err) != 1 {
		t.Errorf("rm of web's latest: exit %d (%v), want 1", exitCode(err), err)
	}
	if _, _, err := run(t, "channels", "rm", "web", "--agent", src); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "channels", "rm", "nosuch", "--agent", src); exitCode(err) != 2 {
		t.Errorf("channels rm nosuch: exit %d (%v), want 2", exitCode(err), err)
	}
	chOut, _, err := run(t, "channels", "--agent", src)
	if err != nil || strings.Contains(chOut, pub.Digest) {
		t.Errorf("channels after rm: %v\n%s", err, chOut)
	}
	if _, _, err := run(t, "rm", pub.Digest, "--agent", src); err != nil {
		t.Errorf("rm after the channel's deletion: %v", err)
	}
}
