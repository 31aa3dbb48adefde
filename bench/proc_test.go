package bench

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProcLines(t *testing.T) {
	var g group
	defer g.stopAll(time.Second)
	dir := t.TempDir()
	p, err := g.start("talker", exec.Command("sh", "-c", "echo starting; echo ready on 7; exit 3"), filepath.Join(dir, "talker.log"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	line, err := p.waitLine(ctx, "ready on")
	if err != nil || line != "ready on 7" {
		t.Fatalf("waitLine = %q, %v", line, err)
	}
	if err := p.wait(ctx); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("wait = %v, want exit status 3", err)
	}
	// A line that never comes: the exit ends the wait with the output's tail.
	if _, err := p.waitLine(ctx, "never"); err == nil || !strings.Contains(err.Error(), "exited") || !strings.Contains(err.Error(), "ready on 7") {
		t.Fatalf("waitLine after exit = %v", err)
	}
	if !strings.Contains(p.output(), "starting\nready on 7") {
		t.Fatalf("output %q", p.output())
	}
	// The CPU time of exited processes adds up.
	busy, err := g.start("busy", exec.Command("sh", "-c", "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done"), filepath.Join(dir, "busy.log"))
	if err != nil {
		t.Fatal(err)
	}
	if err := busy.wait(ctx); err != nil {
		t.Fatal(err)
	}
	if cpu := g.cpuTime(); cpu < 10*time.Millisecond {
		t.Errorf("a busy loop used %v of CPU, want at least 10ms", cpu)
	}
}

func TestProcStopAndListening(t *testing.T) {
	var g group
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	p, err := g.start("sleeper", exec.Command("sleep", "60"), filepath.Join(dir, "sleeper.log"))
	if err != nil {
		t.Fatal(err)
	}
	// The sleeper shares this process's network namespace, so it sees the test's listener.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.waitListening(ctx, "tcp", port); err != nil {
		t.Fatal(err)
	}
	if p.listening("udp", port) {
		t.Errorf("udp port %d reported bound", port)
	}
	start := time.Now()
	g.stopAll(5 * time.Second)
	if p.running() {
		t.Fatal("the process still runs after stopAll")
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("stopping took %v: SIGTERM was not enough?", d)
	}
}
