package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/nodetest"
)

// TestChannelDirAndHook: a subscriber keeps the channel's latest version at a path and runs
// a hook on each new version; the hook's exit status is in the push's report. Also: push
// --channel publishes whatever the target, channel:nosuch is a usage error, --rate-limit is
// checked.
func TestChannelDirAndHook(t *testing.T) {
	dir := t.TempDir()
	site := filepath.Join(dir, "site.tar")
	envOut := filepath.Join(dir, "env.txt")
	hook := filepath.Join(dir, "hook.sh")
	script := fmt.Sprintf("#!/bin/sh\nprintf '%%s %%s %%s %%s\\n' \"$TREECAST_CHANNEL\" \"$TREECAST_DIGEST\" \"$TREECAST_VERSION\" \"$TREECAST_PATH\" >> %s\ncmp -s \"$TREECAST_PATH\" %s.want || exit 9\nexit 7\n", envOut, site)
	if err := os.WriteFile(hook, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cl := nodetest.StartCluster(t, 3, nodetest.Options{
		Channels: func(i int) []string {
			if i > 0 {
				return []string{"web"}
			}
			return nil
		},
		Configure: func(i int, cfg *node.Config) {
			if i == 1 {
				cfg.ChannelDirs = map[string]string{"web": site}
				cfg.ChannelHooks = map[string]string{"web": hook}
				cfg.HookTimeout = 10 * time.Second
			}
		},
	})
	asOperator(t, cl)
	src := cl.Agents[0].Addr()
	for v := range 2 {
		data := randomBytes(200_000, uint64(60+v))
		os.WriteFile(site+".want", data, 0o644) // what the hook expects at TREECAST_PATH
		path, err := cl.WriteFile(0, "site.tar", data)
		if err != nil {
			t.Fatal(err)
		}
		res, err := pushJSONOut(t, path, "--to", "channel:web", "--rate-limit", "100M", "--agent", src)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res.Receivers {
			switch {
			case r.Name == "a01" && (r.Hook == nil || r.Hook.Exit != 7):
				t.Errorf("version %d: a01's hook in the report: %+v, want exit 7", v, r.Hook)
			case r.Name == "a02" && r.Hook != nil:
				t.Errorf("version %d: a02 has no hook but reports %+v", v, r.Hook)
			}
		}
		if got, _ := os.ReadFile(site); !bytes.Equal(got, data) {
			t.Fatalf("version %d: %s does not hold the version", v, site)
		}
		lines := strings.Split(strings.TrimSpace(mustRead(t, envOut)), "\n")
		if f := strings.Fields(lines[len(lines)-1]); len(lines) != v+1 || len(f) != 4 || f[0] != "web" || f[1] != res.Digest || f[3] != site || f[2] == "0" {
			t.Errorf("version %d: hook environment %q", v, lines)
		}
	}
	textOut, _, err := run(t, "push", "--to", "channel:web", "--agent", src, "sha256:"+strings.Repeat("0", 64))
	if exitCode(err) == 0 {
		t.Errorf("push of an unknown digest: %v\n%s", err, textOut)
	}
	// channel:nosuch is a usage error and records nothing.
	path, _ := cl.WriteFile(0, "x.bin", randomBytes(1000, 70))
	if _, _, err := run(t, "push", path, "--to", "channel:nosuch", "--agent", src); exitCode(err) != 2 {
		t.Errorf("push to channel:nosuch: exit %d (%v), want 2", exitCode(err), err)
	}
	for _, bad := range [][]string{{"--rate-limit", "fast"}, {"--rate-limit", "0"}, {"--channel", "a:b"}} {
		if _, _, err := run(t, append([]string{"push", path, "--to", "all", "--agent", src}, bad...)...); exitCode(err) != 2 {
			t.Errorf("push %v: exit %d (%v), want 2", bad, exitCode(err), err)
		}
	}
	// --channel with a selector target publishes too.
	res, err := pushJSONOut(t, path, "--to", "a02", "--channel", "web", "--agent", src)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.WaitFor(ctx, "a01 to catch up the version pushed to a02 with --channel", func() bool {
		got, _ := os.ReadFile(site)
		return len(got) == 1000
	}); err != nil {
		t.Fatal(err)
	}
	chOut, _, _ := run(t, "channels", "--agent", src)
	if !strings.Contains(chOut, res.Digest) || strings.Contains(chOut, "nosuch") {
		t.Errorf("channels after push --channel web:\n%s", chOut)
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
