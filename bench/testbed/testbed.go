// Package testbed builds a two-tier data-center network out of Linux network namespaces, so
// that treecast agents and other distribution tools can be measured over real links with
// real bandwidth limits on one machine.
//
// # Shape of the network
//
// A testbed has Racks racks of HostsPerRack hosts each, and one core switch:
//
//	                      core  (namespace NAME-c, bridge br0, ports r0 r1 ...)
//	                 /            \
//	   NAME-r0 (bridge br0, up0)   NAME-r1 ...          rack switches
//	    /      |       \
//	NAME-r0h0 NAME-r0h1 ...                              hosts (eth0)
//
// Every node is a network namespace of its own. A switch is a namespace holding a Linux
// bridge (br0) with IGMP snooping off, so IP multicast is flooded like broadcast and every
// arc carries one copy of a multicast stream. Host r,h is joined to its rack switch by a veth
// pair (eth0 in the host, port hH in the rack); rack r is joined to the core by a veth pair
// (up0 in the rack, port rR in the core). Nothing is joined to the machine's own network
// namespace, so no traffic of the testbed can leave it, and the machine's traffic cannot
// enter.
//
// Every arc (one direction of a link) is shaped by a token bucket (tc tbf) on the egress of
// the interface that sends on it: a host's eth0 (host to rack), the rack's hH port (rack to
// host), the rack's up0 (rack to core) and the core's rR port (core to rack). Host links run
// at HostRate, rack uplinks at UplinkRate (default HostRate). Latency is not emulated.
//
// # Offload packets
//
// A host's TCP hands the kernel segmentation-offload packets of up to 64 KiB (veth
// advertises TSO), as it would to a NIC. By default a token bucket's burst is at least such a
// packet plus two frames, so offload packets cross the whole testbed as they are: a host
// sends and receives 64 KiB at a time, and a switch forwards them for the price of one
// packet, as a data center's hosts do with TSO and GRO and its switches do in hardware,
// without touching the hosts' CPUs. The rate on every arc is the same; the bucket lets up to
// 64 KiB pass back to back (5 ms at 100 Mbit/s), and a queue holds 20 ms at the rate but at
// least four offload packets (a shorter queue would drop whole 64 KiB packets, each of which
// TCP resends as 45 frames).
//
// With Config.PerFrame the burst is about 2 ms at the rate (at least 16 KiB) and the queue
// 20 ms: the first bucket splits every offload packet larger than that (nearly all of them)
// into Ethernet frames, and every bridge and veth then handles each 1,500-byte frame alone.
// On a machine of a few cores that per-frame work, not the links, bounds every TCP peer (a
// 4x4 testbed at 100 Mbit/s spent 70% of two cores in the kernel); it suits a study of the
// kernel's own cost. UDP (IP multicast) sends datagrams, which no offload merges, in either
// mode.
//
// All hosts share one layer-2 segment and one subnet inside 198.18.0.0/15 (the range
// RFC 2544 reserves for benchmarking; default 198.18.0.0/16): host r,h has address
// base+(r+1)*256+(h+1), e.g. 198.18.1.1 for r0h0, and a multicast route on eth0.
//
// # Arcs and copies
//
// [Testbed.Counters] reads the byte counters of every switch port (ip -s link inside the rack
// namespaces) and names each arc by its ends: "r0h1>r0" (host uplink), "r0>r0h1" (host
// downlink), "r0>core" and "core>r0" (rack uplink, both directions). Bytes are link-layer
// bytes (Ethernet headers included, frame check sequence not) of the packets the port sent;
// an offload packet counts its headers once, so one TCP copy of an object counts about 1.00
// copies (1.04 with PerFrame, where every frame counts its own), a copy sent as UDP
// datagrams about 1.05, and the reverse direction carries the acknowledgements.
//
// # Names, cleanup and cost
//
// Namespaces are named NAME-c, NAME-rR and NAME-rRhH; interface names are local to their
// namespace, so testbeds of different names never collide. [New] refuses a name some
// existing namespace already uses. [Testbed.Close] kills every process still running inside
// the testbed's namespaces and deletes them; [Remove] does the same for a testbed left
// behind by a process that was killed. Building costs about two ip/tc invocations per
// namespace (a 8x8 testbed, 73 namespaces, builds in a few seconds).
//
// The kernel keeps one ARP table for all namespaces, limited by
// net.ipv4.neigh.default.gc_thresh3 (1024 by default), while hosts that all talk to each
// other need hosts^2 entries: [New] raises gc_thresh2 and gc_thresh3 to fit (never lowers
// them), or a 64-host testbed silently drops new neighbours ("neighbor table overflow").
//
// Building a testbed needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and the ip and tc commands
// of iproute2; [New] returns an error wrapping [ErrUnsupported] otherwise, which tests turn
// into a skip.
package testbed

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrUnsupported means the machine cannot build a testbed: not root, not Linux, or no
// iproute2.
var ErrUnsupported = errors.New("testbed: network namespaces unavailable (needs root and iproute2 on Linux)")

// benchRange is the only address range a testbed may use (RFC 2544 benchmarking).
var benchRange = netip.MustParsePrefix("198.18.0.0/15")

// Config describes a testbed.
type Config struct {
	// Name prefixes every namespace; 1 to 8 characters of [a-z0-9], unique among testbeds
	// alive at once on the machine. Default: "tb" and 4 random characters.
	Name string
	// Racks is the number of rack switches under the core, 1 to 250.
	Racks int
	// HostsPerRack is the number of hosts under each rack switch, 1 to 250.
	HostsPerRack int
	// HostRate caps each direction of each host link, in bits/s. 0 means unshaped.
	HostRate float64
	// UplinkRate caps each direction of each rack's uplink to the core, in bits/s. 0 means
	// HostRate.
	UplinkRate float64
	// Subnet is the /16 the hosts are numbered in; it must lie inside 198.18.0.0/15.
	// Default 198.18.0.0/16.
	Subnet netip.Prefix
	// PerFrame makes every arc carry Ethernet frames one by one instead of passing
	// segmentation-offload packets whole (see "Offload packets").
	PerFrame bool
}

// Validate checks a configuration (after defaults) and names the offending value.
func (c Config) Validate() error {
	if len(c.Name) < 1 || len(c.Name) > 8 || strings.Trim(c.Name, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
		return fmt.Errorf("testbed: name %q must be 1 to 8 characters of [a-z0-9]", c.Name)
	}
	if c.Racks < 1 || c.Racks > 250 {
		return fmt.Errorf("testbed: %d racks, want 1 to 250", c.Racks)
	}
	if c.HostsPerRack < 1 || c.HostsPerRack > 250 {
		return fmt.Errorf("testbed: %d hosts per rack, want 1 to 250", c.HostsPerRack)
	}
	if c.HostRate < 0 || c.UplinkRate < 0 {
		return fmt.Errorf("testbed: negative rate (host %v, uplink %v)", c.HostRate, c.UplinkRate)
	}
	if !c.Subnet.Addr().Is4() || c.Subnet.Bits() != 16 || !benchRange.Contains(c.Subnet.Addr()) {
		return fmt.Errorf("testbed: subnet %v must be a /16 inside %v", c.Subnet, benchRange)
	}
	return nil
}

// Host is one host of a testbed.
type Host struct {
	// Name is "rRhH", e.g. "r0h1".
	Name string
	// Rack and Index place the host: Index-th host under rack Rack.
	Rack, Index int
	// Namespace is the host's network namespace.
	Namespace string
	// Addr is the host's IPv4 address on eth0.
	Addr netip.Addr
}

// Testbed is a running network of namespaces. Close removes it.
type Testbed struct {
	cfg   Config
	core  string
	racks []string
	hosts []Host

	mu     sync.Mutex
	made   []string // namespaces created, removed by Close (hosts first)
	closed bool
}

// Supported reports whether this machine can build a testbed, with the reason if not.
func Supported() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: not running as root", ErrUnsupported)
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%w: %s not found", ErrUnsupported, tool)
		}
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return fmt.Errorf("%w: no network namespaces", ErrUnsupported)
	}
	return nil
}

// RandomName returns a fresh testbed name: "tb" and 4 random characters.
func RandomName() string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return "tb" + hex.EncodeToString(b[:])
}

// New builds the testbed. On failure (or when ctx ends) it removes whatever it had built.
// Cost: two or three ip/tc invocations per namespace.
func New(ctx context.Context, cfg Config) (*Testbed, error) {
	if err := Supported(); err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name = RandomName()
	}
	if !cfg.Subnet.IsValid() {
		cfg.Subnet = netip.MustParsePrefix("198.18.0.0/16")
	}
	if cfg.UplinkRate == 0 {
		cfg.UplinkRate = cfg.HostRate
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if left := namespaces(cfg.Name); len(left) > 0 {
		return nil, fmt.Errorf("testbed: name %q is in use (namespace %s exists; Remove(%q) deletes a testbed left behind)", cfg.Name, left[0], cfg.Name)
	}
	if err := fitNeighbourTable(cfg.Racks * cfg.HostsPerRack); err != nil {
		return nil, err
	}
	tb := &Testbed{cfg: cfg, core: cfg.Name + "-c"}
	base := cfg.Subnet.Addr().As4()
	for r := range cfg.Racks {
		tb.racks = append(tb.racks, cfg.Name+"-r"+strconv.Itoa(r))
		for h := range cfg.HostsPerRack {
			a := base
			a[2], a[3] = byte(r+1), byte(h+1)
			name := "r" + strconv.Itoa(r) + "h" + strconv.Itoa(h)
			tb.hosts = append(tb.hosts, Host{Name: name, Rack: r, Index: h, Namespace: cfg.Name + "-" + name, Addr: netip.AddrFrom4(a)})
		}
	}
	if err := tb.build(ctx); err != nil {
		_ = tb.Close()
		return nil, err
	}
	return tb, nil
}

func (tb *Testbed) build(ctx context.Context) error {
	// Namespaces, hosts first so that Close deletes them before their switches.
	var all []string
	for _, h := range tb.hosts {
		all = append(all, h.Namespace)
	}
	all = append(append(all, tb.racks...), tb.core)
	var cmds []string
	for _, ns := range all {
		cmds = append(cmds, "netns add "+ns)
	}
	tb.mu.Lock()
	tb.made = all // netns del of a namespace that was never added only fails, harmlessly
	tb.mu.Unlock()
	if err := batch(ctx, "ip", "", cmds); err != nil {
		return err
	}
	// Links, created directly inside their namespaces.
	cmds = cmds[:0]
	for r, rack := range tb.racks {
		cmds = append(cmds, fmt.Sprintf("link add up0 netns %s type veth peer name r%d netns %s", rack, r, tb.core))
	}
	for _, h := range tb.hosts {
		cmds = append(cmds, fmt.Sprintf("link add h%d netns %s type veth peer name eth0 netns %s", h.Index, tb.racks[h.Rack], h.Namespace))
	}
	if err := batch(ctx, "ip", "", cmds); err != nil {
		return err
	}
	// Switches: a bridge with every port.
	switchCmds := func(ports []string) []string {
		c := []string{"link set lo up", "link add br0 type bridge mcast_snooping 0 stp_state 0", "link set br0 up"}
		for _, p := range ports {
			c = append(c, "link set "+p+" master br0", "link set "+p+" up")
		}
		return c
	}
	var corePorts []string
	for r := range tb.racks {
		corePorts = append(corePorts, "r"+strconv.Itoa(r))
	}
	if err := batch(ctx, "ip", tb.core, switchCmds(corePorts)); err != nil {
		return err
	}
	for _, rack := range tb.racks {
		ports := []string{"up0"}
		for h := range tb.cfg.HostsPerRack {
			ports = append(ports, "h"+strconv.Itoa(h))
		}
		if err := batch(ctx, "ip", rack, switchCmds(ports)); err != nil {
			return err
		}
	}
	for _, h := range tb.hosts {
		if err := batch(ctx, "ip", h.Namespace, []string{
			"link set lo up",
			"addr add " + netip.PrefixFrom(h.Addr, 16).String() + " dev eth0",
			"link set eth0 up",
			"route add 224.0.0.0/4 dev eth0",
		}); err != nil {
			return err
		}
	}
	// Shaping: a token bucket on the egress of every interface that sends on an arc.
	if tb.cfg.HostRate > 0 {
		for _, h := range tb.hosts {
			if err := batch(ctx, "tc", h.Namespace, []string{tb.tbf("eth0", tb.cfg.HostRate)}); err != nil {
				return err
			}
		}
		for _, rack := range tb.racks {
			c := []string{tb.tbf("up0", tb.cfg.UplinkRate)}
			for h := range tb.cfg.HostsPerRack {
				c = append(c, tb.tbf("h"+strconv.Itoa(h), tb.cfg.HostRate))
			}
			if err := batch(ctx, "tc", rack, c); err != nil {
				return err
			}
		}
		var c []string
		for _, p := range corePorts {
			c = append(c, tb.tbf(p, tb.cfg.UplinkRate))
		}
		if err := batch(ctx, "tc", tb.core, c); err != nil {
			return err
		}
	}
	return nil
}

// neighDir holds the kernel's ARP table limits. The table is one for all network namespaces,
// so these limits bound the entries of every host of every testbed together.
const neighDir = "/proc/sys/net/ipv4/neigh/default"

// fitNeighbourTable raises the kernel's ARP table limits so that each of n hosts can hold an
// entry for every other (and the machine keeps its own 1024): past gc_thresh3 the kernel
// refuses new entries ("neighbor table overflow"), and hosts then fail to reach each other
// (connect timeouts, "no route to host"). It only ever raises the limits.
func fitNeighbourTable(n int) error {
	need := n*n + 1024
	for _, c := range []struct {
		file string
		min  int
	}{{"gc_thresh2", need}, {"gc_thresh3", 2 * need}} {
		path := filepath.Join(neighDir, c.file)
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("testbed: %w", err)
		}
		cur, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return fmt.Errorf("testbed: %s: %w", path, err)
		}
		if cur >= c.min {
			continue
		}
		if err := os.WriteFile(path, []byte(strconv.Itoa(c.min)), 0o644); err != nil {
			return fmt.Errorf("testbed: raising %s to %d for %d hosts: %w", path, c.min, n, err)
		}
	}
	return nil
}

// OffloadBurst is the smallest token bucket of a testbed that passes offload packets whole:
// the largest GSO packet (64 KiB) and two full-size frames.
const OffloadBurst = 64<<10 + 2*1514

// tbf is the tc command (batch syntax) that shapes dev's egress to rate bits/s: a bucket of
// about 2 ms at the rate, at least OffloadBurst, and a queue of 20 ms at the rate but at
// least four offload packets (a queue shorter than one offload packet drops whole 64 KiB
// packets, and TCP resends 45 frames for each). With Config.PerFrame: a bucket of at least
// 16 KiB (more than one full-size frame) and a queue of 20 ms.
func (tb *Testbed) tbf(dev string, rate float64) string {
	burst, queue := max(int(rate/8/500), OffloadBurst), max(int(rate/8/50), 4*OffloadBurst)
	if tb.cfg.PerFrame {
		burst, queue = max(int(rate/8/500), 16*1024), int(rate/8/50)
	}
	return fmt.Sprintf("qdisc replace dev %s root tbf rate %sbit burst %d limit %d", dev, strconv.FormatFloat(rate, 'f', 0, 64), burst, queue+burst)
}

// Config returns the testbed's configuration, defaults filled in.
func (tb *Testbed) Config() Config { return tb.cfg }

// Hosts returns the hosts, rack by rack (host r,h at index r*HostsPerRack+h).
func (tb *Testbed) Hosts() []Host { return append([]Host(nil), tb.hosts...) }

// Host returns host i (r*HostsPerRack+h). It panics if i is out of range.
func (tb *Testbed) Host(i int) Host { return tb.hosts[i] }

// Command returns a command that runs name with args inside host i's namespace (through ip
// netns exec, which execs the program, so the command's process is the program itself). The
// process is killed if the calling process dies (SIGKILL as parent-death signal), and Close
// kills it if it still runs. The caller starts it and waits for it.
func (tb *Testbed) Command(ctx context.Context, i int, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", tb.hosts[i].Namespace, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Qdisc returns the output of "tc qdisc show" for interface dev in namespace ns, to check
// the shaping.
func Qdisc(ctx context.Context, ns, dev string) (string, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "tc", "-n", ns, "qdisc", "show", "dev", dev)
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("testbed: tc qdisc show in %s: %w", ns, err)
	}
	return out.String(), nil
}

// Namespaces returns the names of the core, the racks and the hosts' namespaces.
func (tb *Testbed) Namespaces() (core string, racks []string, hosts []string) {
	for _, h := range tb.hosts {
		hosts = append(hosts, h.Namespace)
	}
	return tb.core, append([]string(nil), tb.racks...), hosts
}

// Arc is one direction of a link, named by its ends: "r0h1", "r0" or "core".
type Arc struct{ From, To string }

func (a Arc) String() string { return a.From + ">" + a.To }

// Kind says what an arc is: "host uplink", "host downlink", "rack uplink" (rack to core) or
// "rack downlink" (core to rack).
func (a Arc) Kind() string {
	switch {
	case a.To == "core":
		return "rack uplink"
	case a.From == "core":
		return "rack downlink"
	case strings.Contains(a.From, "h"):
		return "host uplink"
	default:
		return "host downlink"
	}
}

// Counters returns the bytes every arc has carried since the testbed was built, read from
// the rack switches' port counters (one ip invocation per rack). Subtract two readings to
// measure a run.
func (tb *Testbed) Counters(ctx context.Context) (map[Arc]uint64, error) {
	out := make(map[Arc]uint64, 2*(len(tb.hosts)+len(tb.racks)))
	for r, rack := range tb.racks {
		var buf, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, "ip", "-n", rack, "-s", "-j", "link", "show")
		cmd.Stdout, cmd.Stderr = &buf, &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("testbed: ip -s link in %s: %w: %s", rack, err, strings.TrimSpace(stderr.String()))
		}
		var links []struct {
			Ifname  string `json:"ifname"`
			Stats64 struct {
				RX struct{ Bytes uint64 } `json:"rx"`
				TX struct{ Bytes uint64 } `json:"tx"`
			} `json:"stats64"`
		}
		if err := json.Unmarshal(buf.Bytes(), &links); err != nil {
			return nil, fmt.Errorf("testbed: ip -s -j link in %s: %w", rack, err)
		}
		rn := "r" + strconv.Itoa(r)
		for _, l := range links {
			var far string
			switch {
			case l.Ifname == "up0":
				far = "core"
			case strings.HasPrefix(l.Ifname, "h"):
				far = rn + l.Ifname
			default:
				continue
			}
			// A port transmits toward the far end and receives from it.
			out[Arc{rn, far}] = l.Stats64.TX.Bytes
			out[Arc{far, rn}] = l.Stats64.RX.Bytes
		}
	}
	if want := 2 * (len(tb.hosts) + len(tb.racks)); len(out) != want {
		return nil, fmt.Errorf("testbed: read %d arc counters, want %d", len(out), want)
	}
	return out, nil
}

// Close kills every process still running inside the testbed's namespaces and deletes the
// namespaces (which deletes their interfaces). It is safe to call more than once and returns
// the first error met.
func (tb *Testbed) Close() error {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if tb.closed {
		return nil
	}
	tb.closed = true
	return removeAll(tb.made)
}

// Remove deletes every namespace of the testbed called name (NAME-...), killing the processes
// inside them first: the cleanup of a testbed whose owner was killed before it could Close.
func Remove(name string) error {
	if name == "" || strings.ContainsAny(name, "/-") {
		return fmt.Errorf("testbed: bad testbed name %q", name)
	}
	return removeAll(namespaces(name))
}

// namespaces lists the existing namespaces of the testbed called name.
func namespaces(name string) []string {
	ents, _ := os.ReadDir("/run/netns")
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), name+"-") {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

func removeAll(nss []string) error {
	var first error
	for _, ns := range nss {
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); err != nil {
			continue
		}
		killAll(ns)
		if err := run(context.Background(), "ip", "netns", "del", ns); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// killAll kills the processes in namespace ns and waits (up to 5 s) for them to go.
func killAll(ns string) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := exec.Command("ip", "netns", "pids", ns).Output()
		if err != nil || len(bytes.TrimSpace(out)) == 0 || time.Now().After(deadline) {
			return
		}
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(20 * time.Millisecond) // a killed process leaves the namespace within ms
	}
}

// batch runs tool (ip or tc) with commands on stdin (-batch -), inside namespace ns when ns
// is not empty.
func batch(ctx context.Context, tool, ns string, cmds []string) error {
	if len(cmds) == 0 {
		return nil
	}
	args := []string{"-batch", "-"}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("testbed: %s %s: %w: %s", tool, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func run(ctx context.Context, name string, args ...string) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("testbed: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
