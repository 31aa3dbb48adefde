package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/treecast/treecast/node/nodetest"
	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// startCluster starts five real agents on loopback: a00-a02 in rack r0, a03-a04 in rack r1;
// a01 and a03 subscribe to channel web.
func startCluster(t *testing.T) *nodetest.Cluster {
	cl := nodetest.StartCluster(t, 5, nodetest.Options{
		Labels: func(i int) map[string]string {
			return map[string]string{"dc": "d", "pod": "p0", "rack": []string{"r0", "r1"}[min(i/3, 1)]}
		},
		Channels: func(i int) []string {
			if i == 1 || i == 3 {
				return []string{"web"}
			}
			return nil
		},
	})
	asOperator(t, cl)
	return cl
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed)})
	r.Read(b)
	return b
}

func pushJSONOut(t *testing.T, args ...string) (pushJSON, error) {
	t.Helper()
	out, _, err := run(t, append([]string{"push", "--json"}, args...)...)
	var res pushJSON
	if out != "" {
		if jerr := json.Unmarshal([]byte(out), &res); jerr != nil {
			t.Fatalf("push printed invalid JSON %q: %v", out, jerr)
		}
	}
	return res, err
}

func TestPushGetLsMembers(t *testing.T) {
	cl := startCluster(t)
	src := cl.Agents[0].Addr()
	data := randomBytes(700_000, 1)
	sum := sha256.Sum256(data)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	path, err := cl.WriteFile(0, "object.bin", data)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		to       string
		strategy string
		want     []string
	}{
		{"all", "tree", []string{"a01", "a02", "a03", "a04"}},
		{"rack=r1", "chain", []string{"a03", "a04"}},
		{"channel:web", "unicast", []string{"a01", "a03"}},
		{"a02,a04", "forest", []string{"a02", "a04"}},
	} {
		res, err := pushJSONOut(t, path, "--to", tc.to, "--strategy", tc.strategy, "--chunk", "64KiB", "--agent", src)
		if err != nil {
			t.Fatalf("push --to %s: %v", tc.to, err)
		}
		var got []string
		for _, r := range res.Receivers {
			if r.Status != "verified" {
				t.Errorf("push --to %s: %s %s: %s", tc.to, r.Name, r.Status, r.Error)
			}
			got = append(got, r.Name)
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") || res.Digest != digest {
			t.Errorf("push --to %s: receivers %v digest %s, want %v %s", tc.to, got, res.Digest, tc.want, digest)
		}
		for _, name := range tc.want {
			copyData, err := cl.Read(name, digest)
			if err != nil || !bytes.Equal(copyData, data) {
				t.Fatalf("push --to %s: %s does not hold a byte-exact copy: %v", tc.to, name, err)
			}
		}
	}

	// get from a receiver writes a verified file; a failing get leaves nothing behind.
	out := filepath.Join(t.TempDir(), "got.bin")
	if _, _, err := run(t, "get", digest, "-o", out, "--agent", cl.Agents[3].Addr()); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Fatal("get wrote different bytes")
	}
	missing := filepath.Join(filepath.Dir(out), "missing.bin")
	unknown := "sha256:" + strings.Repeat("ab", 32)
	if _, _, err := run(t, "get", unknown, "-o", missing, "--agent", src); err == nil {
		t.Error("get of an unknown digest succeeded")
	}
	if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 1 {
		t.Errorf("a failed get left files behind: %v", entries)
	}

	lsOut, _, err := run(t, "ls", "--agent", cl.Agents[4].Addr())
	if err != nil || !strings.Contains(lsOut, digest) || !strings.Contains(lsOut, "complete") {
		t.Errorf("ls: %v\n%s", err, lsOut)
	}
	// ls shows the channel's latest version (the push to channel:web published it) and that
	// both subscribers hold it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var chOut string
	heldBy := regexp.MustCompile(`(?m)^web\s+(a01|a03)\s+yes\s+latest\s*$`)
	if err := cl.WaitFor(ctx, "ls to show web's subscribers up to date", func() bool {
		chOut, _, err = run(t, "ls", "--agent", src)
		return err == nil && strings.Contains(chOut, digest) && len(heldBy.FindAllString(chOut, -1)) == 2
	}); err != nil {
		t.Errorf("%v: ls output:\n%s", err, chOut)
	}
	if !regexp.MustCompile(`(?m)^web\s+\d+\s+` + regexp.QuoteMeta(digest) + `\s+700000\s+a00\s*$`).MatchString(chOut) {
		t.Errorf("ls does not show web's latest version %s from a00:\n%s", digest, chOut)
	}
	mOut, _, err := run(t, "members", "--agent", src)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"a00", "a04", "alive", "rack=r1", "web"} {
		if !strings.Contains(mOut, want) {
			t.Errorf("members output lacks %q:\n%s", want, mOut)
		}
	}
}

func TestPushErrors(t *testing.T) {
	cl := startCluster(t)
	src := cl.Agents[0].Addr()
	path, err := cl.WriteFile(0, "x.bin", randomBytes(1000, 2))
	if err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "outside.bin")
	os.WriteFile(outside, []byte("not in the data dir"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"no match", []string{path, "--to", "rack=zz"}, 1},
		{"unknown node", []string{path, "--to", "nosuch"}, 1},
		{"agent path outside data dir", []string{"agent:" + outside, "--to", "all"}, 1},
		{"agent path escaping", []string{"agent:" + filepath.Dir(path) + "/../../../etc/passwd", "--to", "all"}, 1},
		{"relative agent path", []string{"agent:x.bin", "--to", "all"}, 2},
		{"bad digest", []string{"sha256:abc", "--to", "all"}, 2},
		{"chunk of 1 byte", []string{path, "--to", "all", "--chunk", "1"}, 2},
		{"no such file", []string{filepath.Join(t.TempDir(), "nosuch"), "--to", "all"}, 2},
		{"unknown flag", []string{path, "--to", "all", "--nosuch"}, 2},
		{"two objects", []string{path, path, "--to", "all"}, 2},
		{"negative follow", []string{path, "--to", "all", "--follow", "-1s"}, 2},
		{"unknown digest", []string{"sha256:" + strings.Repeat("0", 64), "--to", "all"}, 1},
		{"no target", []string{path}, 2},
		{"bad chunk", []string{path, "--to", "all", "--chunk", "huge"}, 2},
		{"bad strategy", []string{path, "--to", "all", "--strategy", "flood"}, 2},
	} {
		_, _, err := run(t, append([]string{"push", "--agent", src}, tc.args...)...)
		if exitCode(err) != tc.code {
			t.Errorf("%s: exit %d (%v), want %d", tc.name, exitCode(err), err, tc.code)
		}
	}
}

func TestDemoJSON(t *testing.T) {
	out, _, err := run(t, "demo", "--nodes", "5", "--size", "3MiB", "--chunk", "256KiB", "--json")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var res demoResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line is not JSON: %v\n%s", err, out)
	}
	if res.Receivers != 4 || res.Verified != 4 || res.Bytes != 3<<20 || res.Seconds <= 0 || res.Copies.MaxSwitch > 1 {
		t.Errorf("demo result %+v", res)
	}
}

func TestDemoText(t *testing.T) {
	out, _, err := run(t, "demo", "--nodes", "4", "--size", "1MiB", "--chunk", "128KiB", "--strategy", "chain")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"plan: chain", "RECEIVER", "3 verified, 0 failed", "byte-exact copies checked: 3 of 3", "copies per arc"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

func TestParseHelpers(t *testing.T) {
	for in, want := range map[string]int64{"4MiB": 4 << 20, "1GiB": 1 << 30, "100M": 100e6, "512": 512, "64KiB": 64 << 10, "2GB": 2e9} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "-1MiB", "lots", "1.5GiB"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
	for in, want := range map[string]string{"all": "all:true", "channel:web": `channel:"web"`, "rack=r1,pod=p2": `selector:"rack=r1,pod=p2"`, "a, b": `names:{names:"a" names:"b"}`} {
		tg, err := parseTarget(in)
		if err != nil || !strings.Contains(strings.ReplaceAll(tg.String(), "  ", " "), want) {
			t.Errorf("parseTarget(%q) = %v, %v; want %s", in, tg, err, want)
		}
	}
	if _, err := parseTarget("channel:"); err == nil {
		t.Error("empty channel accepted")
	}
}

func TestReportRendering(t *testing.T) {
	rep := &pb.Report{Digest: "sha256:ab", Elapsed: durationpb.New(2 * time.Second), Receivers: []*pb.ReceiverResult{
		{Receiver: "b", Status: pb.ReceiverStatus_RECEIVER_STATUS_FAILED, Error: "disk full", Elapsed: durationpb.New(time.Second)},
		{Receiver: "a", Status: pb.ReceiverStatus_RECEIVER_STATUS_VERIFIED, Elapsed: durationpb.New(2 * time.Second)},
	}}
	var buf bytes.Buffer
	writeReport(&buf, rep, 10e6)
	want := "RECEIVER  STATUS    SECONDS  MB/S  ERROR\na         verified  2.00     5.0   \nb         failed    1.00     -     disk full\n1 verified, 1 failed, 0 offline in 2.00s (sha256:ab)\n"
	if buf.String() != want {
		t.Errorf("table:\n%q\nwant\n%q", buf.String(), want)
	}
	js := reportJSON(rep)
	if js.Receivers[0].Name != "a" || js.Receivers[1].Status != "failed" || js.Receivers[1].Error != "disk full" || js.Seconds != 2 {
		t.Errorf("json %+v", js)
	}
	var lines bytes.Buffer
	v := &lineView{w: &lines, last: map[string]int{}}
	v.progress("a", 5, 10)
	v.progress("a", 6, 10)
	v.result(rep.Receivers[1])
	if lines.String() != "  a: 50%\n  a: verified in 2.00s\n" {
		t.Errorf("plain progress lines %q", lines.String())
	}
}
