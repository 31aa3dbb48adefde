package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAgentFlagErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"agent", "--data", dir}, `"name" not set`},
		{[]string{"agent", "--name", "n1", "--data", dir, "--labels", "rack"}, `--labels: "rack" is not key=value`},
		{[]string{"agent", "--name", "n1", "--data", dir, "--rate-limit", "fast"}, `--rate-limit`},
		{[]string{"agent", "--name", "n1", "--data", dir, "--listen", "nowhere"}, `listen address "nowhere"`},
		{[]string{"agent", "--name", "n1", "--data", dir, "--channel-dir", "web"}, `--channel-dir "web": want CHANNEL=PATH`},
		{[]string{"agent", "--name", "n1", "--data", dir, "--channel-dir", "web=rel/path"}, `must be absolute`},
		{[]string{"agent", "--name", "n1", "--data", dir, "--channel-dir", "web=/nonexistent-dir/x"}, `does not exist`},
		{[]string{"agent", "--name", "n1", "--data", dir, "--channel-hook", "a:b=/bin/true"}, `not a channel name`},
		{[]string{"agent", "--name", "n1", "--data", dir, "--scrub-rate", "fast"}, `--scrub-rate`},
		{[]string{"agent", "--name", "n1", "--data", dir, "--channel-retain", "-1"}, `channel retain -1`},
	}
	for _, c := range cases {
		_, _, err := run(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one naming %s", c.args, err, c.want)
		}
	}
}

// TestAgentRunsUntilCancelled starts the agent command and stops it as SIGTERM does (the
// command's context ends).
func TestAgentRunsUntilCancelled(t *testing.T) {
	setEnv(t, agentTLSEnv(t, testCerts(t), "n1"))
	root := newRoot()
	out := &syncBuffer{}
	root.SetOut(out)
	root.SetErr(out)
	root.SetArgs([]string{"agent", "--name", "n1", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--gossip", "127.0.0.1:0", "--labels", "rack=r1,dc=east", "--channels", "web"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(out.String(), "agent n1: grpc 127.0.0.1:") {
		select {
		case <-deadline:
			t.Fatalf("agent did not start: %q", out.String())
		case err := <-done:
			t.Fatalf("agent exited: %v: %q", err, out.String())
		case <-tick.C:
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader at a time.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
