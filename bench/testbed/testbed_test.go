package testbed

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
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

func newTestbed(t testing.TB, racks, hosts int, rate float64) *Testbed {
	t.Helper()
	return newTestbedConfig(t, Config{Racks: racks, HostsPerRack: hosts, HostRate: rate})
}

func newTestbedConfig(t testing.TB, cfg Config) *Testbed {
	t.Helper()
	if err := Supported(); err != nil {
		t.Skipf("skipping: %v (the testbed runs in CI, which is root)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tb, err := New(ctx, cfg)
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
// sink's report line and the transfer's duration.
func transfer(t testing.TB, tb *Testbed, src, dst, n int) (string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(tb.Host(dst).Addr.String(), "7700")
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
	start := time.Now()
	if err := cli.Run(); err != nil {
		t.Fatalf("source: %v", err)
	}
	if !lines.Scan() {
		t.Fatalf("sink ended without a report: %v", lines.Err())
	}
	took := time.Since(start)
	report := lines.Text()
	if err := srv.Wait(); err != nil {
		t.Fatalf("sink: %v", err)
	}
	return report, took
}

// TestTransferAcrossRacks sends bytes from a host of rack 0 to a host of rack 1: they arrive
// intact, no faster than the shaped rate, and the counters put one copy on each of the four
// arcs of the path and almost nothing on the arcs off it.
func TestTransferAcrossRacks(t *testing.T) {
	const rate = 100e6
	tb := newTestbed(t, 2, 2, rate)
	ctx := context.Background()
	before, err := tb.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 4 << 20
	sum := sha256.Sum256(payload(n))
	want := fmt.Sprintf("received %d %s", n, hex.EncodeToString(sum[:]))
	src, dst := 0, 3 // r0h0 -> r1h1
	got, took := transfer(t, tb, src, dst, n)
	if got != want {
		t.Fatalf("sink got %q, want %q", got, want)
	}
	if min := time.Duration(float64(n*8) / rate * float64(time.Second)); took < min*9/10 {
		t.Errorf("%d bytes took %v, faster than the shaped rate allows (%v)", n, took, min)
	}
	after, err := tb.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	onPath := map[Arc]bool{{"r0h0", "r0"}: true, {"r0", "core"}: true, {"core", "r1"}: true, {"r1", "r1h1"}: true}
	for arc, b := range after {
		copies := float64(b-before[arc]) / n
		if onPath[arc] && (copies < 1 || copies > 1.1) {
			t.Errorf("arc %v (%s) carried %.3f copies, want 1 to 1.1", arc, arc.Kind(), copies)
		}
		if !onPath[arc] && copies > 0.1 {
			t.Errorf("arc %v (%s) is off the path but carried %.3f copies", arc, arc.Kind(), copies)
		}
	}
	core, racks, hosts := tb.Namespaces()
	for _, c := range []struct{ ns, dev string }{{hosts[1], "eth0"}, {racks[1], "h0"}, {racks[0], "up0"}, {core, "r1"}} {
		q, err := Qdisc(ctx, c.ns, c.dev)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(q, "tbf") || !strings.Contains(q, "rate 100Mbit") {
			t.Errorf("%s %s not shaped: %q", c.ns, c.dev, q)
		}
	}
}

// txStats returns the bytes and packets that dev in namespace ns has sent.
func txStats(t *testing.T, ns, dev string) (bytes, packets uint64) {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "-s", "-j", "link", "show", "dev", dev).Output()
	if err != nil {
		t.Fatalf("ip -s link in %s: %v", ns, err)
	}
	var links []struct {
		Stats64 struct {
			TX struct{ Bytes, Packets uint64 } `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -s -j link in %s: %v: %s", ns, err, out)
	}
	return links[0].Stats64.TX.Bytes, links[0].Stats64.TX.Packets
}

// TestOffloadPackets sends the same bytes across racks on a testbed of each link model and
// reads the packets the receiver's rack port sent it: by default TCP's offload packets cross
// whole (many kilobytes a packet), with PerFrame nearly every packet is an Ethernet frame
// (TCP's few offload packets smaller than the bucket pass whole); the rate is the same.
func TestOffloadPackets(t *testing.T) {
	const rate, n = 100e6, 4 << 20
	for _, perFrame := range []bool{false, true} {
		t.Run(fmt.Sprintf("PerFrame=%v", perFrame), func(t *testing.T) {
			tb := newTestbedConfig(t, Config{Racks: 2, HostsPerRack: 2, HostRate: rate, PerFrame: perFrame})
			_, racks, _ := tb.Namespaces()
			b0, p0 := txStats(t, racks[1], "h1")
			_, took := transfer(t, tb, 0, 3, n)
			b1, p1 := txStats(t, racks[1], "h1")
			if min := time.Duration(float64(n*8) / rate * float64(time.Second)); took < min*9/10 {
				t.Errorf("%d bytes took %v, faster than the shaped rate allows (%v)", n, took, min)
			}
			per := float64(b1-b0) / float64(p1-p0)
			t.Logf("%d bytes in %d packets (%.0f a packet) in %v", b1-b0, p1-p0, per, took)
			if perFrame && per > 2*1514 {
				t.Errorf("per-frame links sent packets of %.0f bytes on average, more than two frames", per)
			}
			if !perFrame && per < 8192 {
				t.Errorf("offload packets were split: %.0f bytes a packet on average", per)
			}
		})
	}
}

func TestCloseRemovesNamespaces(t *testing.T) {
	tb := newTestbed(t, 2, 1, 0)
	core, racks, hosts := tb.Namespaces()
	// A process left running inside a host does not keep its namespace alive.
	sleeper := tb.Command(context.Background(), 0, "sh", "-c", "echo ready; exec sleep 60")
	out, err := sleeper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until it runs inside the host's namespace (not still entering it).
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tb.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := sleeper.Wait(); err == nil {
		t.Error("the process inside the testbed was not killed")
	}
	for _, ns := range append(append(hosts, racks...), core) {
		if _, err := os.Stat("/run/netns/" + ns); !os.IsNotExist(err) {
			t.Errorf("namespace %s still exists (%v)", ns, err)
		}
	}
}

func TestNameInUseAndRemove(t *testing.T) {
	tb := newTestbed(t, 1, 1, 0)
	name := tb.Config().Name
	if _, err := New(context.Background(), Config{Name: name, Racks: 1, HostsPerRack: 1}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("a second testbed named %q: %v, want a name-in-use error", name, err)
	}
	if err := Remove(name); err != nil {
		t.Fatal(err)
	}
	if left := namespaces(name); len(left) != 0 {
		t.Fatalf("Remove left %v", left)
	}
}

// TestNeighbourTableFits checks that a testbed leaves room in the kernel's (global) ARP table
// for every host to know every other.
func TestNeighbourTableFits(t *testing.T) {
	newTestbed(t, 8, 8, 0)
	b, err := os.ReadFile(neighDir + "/gc_thresh3")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := strconv.Atoi(strings.TrimSpace(string(b))); n < 64*64 {
		t.Fatalf("gc_thresh3 = %d, want at least %d for 64 hosts", n, 64*64)
	}
}

func TestConfigErrors(t *testing.T) {
	if err := Supported(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	ok := Config{Name: "x", Racks: 1, HostsPerRack: 1, Subnet: netip.MustParsePrefix("198.19.0.0/16")}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	bad := []func(c *Config){
		func(c *Config) { c.Racks = 0 },
		func(c *Config) { c.HostsPerRack = 300 },
		func(c *Config) { c.Name = "Bad-Name" },
		func(c *Config) { c.Name = "toolongname" },
		func(c *Config) { c.HostRate = -1 },
		func(c *Config) { c.Subnet = netip.MustParsePrefix("10.211.0.0/16") },
		func(c *Config) { c.Subnet = netip.MustParsePrefix("198.18.0.0/24") },
	}
	for i, f := range bad {
		c := ok
		f(&c)
		if _, err := New(context.Background(), c); err == nil || !strings.Contains(err.Error(), "testbed:") {
			t.Errorf("case %d: New(%+v) = %v, want a testbed error", i, c, err)
		}
	}
}

// BenchmarkShapedTransfer measures TCP throughput between hosts of two racks whose links
// are shaped to 400 Mbit/s: the reported MB/s stays under 50.
func BenchmarkShapedTransfer(b *testing.B) {
	tb := newTestbed(b, 2, 1, 400e6)
	const n = 16 << 20
	b.SetBytes(n)
	for b.Loop() {
		transfer(b, tb, 0, 1, n)
	}
}
