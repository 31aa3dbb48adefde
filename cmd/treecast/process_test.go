package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary run as the treecast command itself (TREECAST_TEST_MAIN=1), for
// tests that need a real process: signals, exit codes, HTTP endpoints.
func TestMain(m *testing.M) {
	if os.Getenv("TREECAST_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestAgentProcess runs `treecast agent` as its own process: it serves Prometheus metrics over
// HTTP, and a real SIGTERM makes it leave and exit with status 0.
func TestAgentProcess(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGTERM is a Unix signal")
	}
	cmd := exec.Command(os.Args[0], "agent", "--name", "p1", "--data", t.TempDir(),
		"--listen", "127.0.0.1:0", "--gossip", "127.0.0.1:0", "--metrics", "127.0.0.1:0")
	certs := testCerts(t)
	cmd.Env = append(append(os.Environ(), "TREECAST_TEST_MAIN=1"), agentTLSEnv(t, certs, "p1")...)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	defer func() {
		_ = cmd.Process.Kill()
	}()
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()
	var first string
	select {
	case first = <-lines:
	case <-time.After(20 * time.Second):
		t.Fatalf("the agent printed no address line; stderr: %s", stderr.String())
	}
	_, url, ok := strings.Cut(first, " metrics ")
	if !ok {
		t.Fatalf("no metrics address in %q", first)
	}
	url, _, _ = strings.Cut(url, " ")
	// The HTTP address speaks the gRPC port's mutual TLS: an operator's certificate reads it.
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("metrics URL %q of a TLS agent is not https", url)
	}
	resp, err := operatorHTTP(t, certs).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "treecast_chunks_in_total 0") {
		t.Fatalf("GET %s: %s, want the treecast counters:\n%.500s", url, resp.Status, body)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("after SIGTERM: %v; stderr: %s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the agent did not exit within 20 s of SIGTERM")
	}
	t.Logf("%s%s", first, stderr.String())
	if !strings.Contains(stderr.String(), "shutting down") {
		t.Errorf("no shutdown in the agent's log: %s", stderr.String())
	}
}
