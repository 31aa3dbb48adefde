package testbed

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The test binary doubles as the program run inside the namespaces: with TESTBED_HELPER set
// it acts as a sink (prints the listening address, then the SHA-256 of what it received) or
// a source (sends N seeded random bytes to an address).
func TestMain(m *testing.M) {
	switch os.Getenv("TESTBED_HELPER") {
	case "sink":
		os.Exit(sink(os.Getenv("TESTBED_ADDR")))
	case "source":
		n, _ := strconv.Atoi(os.Getenv("TESTBED_BYTES"))
		os.Exit(source(os.Getenv("TESTBED_ADDR"), n))
	}
	os.Exit(m.Run())
}

func sink(addr string) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("listening", ln.Addr())
	c, err := ln.Accept()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("received", n, hex.EncodeToString(h.Sum(nil)))
	return 0
}

func source(addr string, n int) int {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := c.Write(payload(n)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := c.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func payload(n int) []byte {
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func newTestbed(t testing.TB, hosts int, rate float64) *Testbed {
	t.Helper()
	if err := Supported(); err != nil {
		t.Skipf("skipping: %v (the testbed runs in CI, which is root)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tb, err := New(ctx, Config{Name: "tbt" + strconv.Itoa(os.Getpid()%1000), Hosts: hosts, Rate: rate})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tb.Close(); err != nil {
			t.Error(err)
		}
	})
	return tb
}

// transfer sends n bytes from host src to host dst through the testbed and returns the
// sink's report line.
func transfer(t testing.TB, tb *Testbed, src, dst, n int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(tb.Addr(dst).String(), "7700")
	srv := tb.Command(ctx, dst, self)
	srv.Env = append(os.Environ(), "TESTBED_HELPER=sink", "TESTBED_ADDR="+addr)
	out, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "listening") {
		t.Fatalf("sink did not start: %q", lines.Text())
	}
	cli := tb.Command(ctx, src, self)
	cli.Env = append(os.Environ(), "TESTBED_HELPER=source", "TESTBED_ADDR="+addr, "TESTBED_BYTES="+strconv.Itoa(n))
	cli.Stderr = os.Stderr
	if err := cli.Run(); err != nil {
		t.Fatalf("source: %v", err)
	}
	if !lines.Scan() {
		t.Fatalf("sink ended without a report: %v", lines.Err())
	}
	report := lines.Text()
	if err := srv.Wait(); err != nil {
		t.Fatalf("sink: %v", err)
	}
	return report
}

func TestTransferAcrossNamespaces(t *testing.T) {
	tb := newTestbed(t, 3, 200e6)
	const n = 3 << 20
	sum := sha256.Sum256(payload(n))
	want := fmt.Sprintf("received %d %s", n, hex.EncodeToString(sum[:]))
	if got := transfer(t, tb, 2, 0, n); got != want {
		t.Fatalf("sink got %q, want %q", got, want)
	}
	q, err := tb.Qdisc(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(q, "tbf") || !strings.Contains(q, "rate 200Mbit") {
		t.Errorf("host link not shaped: %q", q)
	}
}

func TestCloseRemovesNamespaces(t *testing.T) {
	tb := newTestbed(t, 2, 0)
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tb.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, ns := range []string{tb.fabric, tb.HostName(0), tb.HostName(1)} {
		if _, err := os.Stat("/run/netns/" + ns); !os.IsNotExist(err) {
			t.Errorf("namespace %s still exists (%v)", ns, err)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	if err := Supported(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	for _, cfg := range []Config{{Hosts: 0}, {Hosts: 300}, {Hosts: 2, Name: "Bad-Name"}, {Hosts: 2, Rate: -1}} {
		if _, err := New(context.Background(), cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

// BenchmarkShapedTransfer measures TCP throughput between two hosts whose links are shaped
// to 400 Mbit/s: the reported MB/s stays under 50 (measured: about 40, process start-up included).
func BenchmarkShapedTransfer(b *testing.B) {
	tb := newTestbed(b, 2, 400e6)
	const n = 16 << 20
	b.SetBytes(n)
	for b.Loop() {
		transfer(b, tb, 0, 1, n)
	}
}
