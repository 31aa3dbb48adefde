// Package testbed builds a small network of hosts out of Linux network namespaces, so that
// treecast agents can be measured over real links with real bandwidth limits on one machine.
//
// Each host is a network namespace with one interface, joined by a veth pair to a bridge
// that lives in a "fabric" namespace of its own, so nothing is attached to the machine's own
// network. Both directions of every host link are shaped by a token bucket (tc tbf) to the
// configured rate, so a host's uplink and downlink each carry at most that rate, as an access
// link of a data center would. Programs run inside a host with [Testbed.Command].
//
// Building a testbed needs root (CAP_NET_ADMIN) and the ip and tc commands of iproute2;
// [New] returns an error wrapping [ErrUnsupported] otherwise, which tests turn into a skip.
// The kernel's netem qdisc is not required (and latency is therefore not emulated).
package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
)

// ErrUnsupported means the machine cannot build a testbed: not root, not Linux, or no
// iproute2.
var ErrUnsupported = errors.New("testbed: network namespaces unavailable (needs root and iproute2 on Linux)")

// Config describes a testbed.
type Config struct {
	// Name prefixes every namespace and interface; it must be short (at most 6 characters of
	// [a-z0-9]) and unique among testbeds alive at once on the machine. Default "tc" followed
	// by the process id.
	Name string
	// Hosts is the number of hosts, 1 to 250.
	Hosts int
	// Rate caps each direction of each host link, in bits/s. 0 means unshaped.
	Rate float64
	// Subnet is the /24 the hosts are numbered in (host i gets .i+1). Default 10.211.0.0/24.
	Subnet netip.Prefix
}

// Testbed is a running set of namespaces. Close removes it.
type Testbed struct {
	cfg    Config
	fabric string
	made   []string // namespaces created, removed by Close
	addrs  []netip.Addr

	mu     sync.Mutex
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

// New builds the testbed: a fabric namespace with a bridge, and cfg.Hosts host namespaces
// each joined to it by a shaped veth pair. On failure it removes whatever it had built. Cost:
// a few ip/tc invocations per host (tens of milliseconds each).
func New(ctx context.Context, cfg Config) (*Testbed, error) {
	if err := Supported(); err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name = "tc" + strconv.Itoa(os.Getpid()%10000)
	}
	if len(cfg.Name) > 6 || strings.Trim(cfg.Name, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
		return nil, fmt.Errorf("testbed: name %q must be 1 to 6 characters of [a-z0-9]", cfg.Name)
	}
	if cfg.Hosts < 1 || cfg.Hosts > 250 {
		return nil, fmt.Errorf("testbed: %d hosts, want 1 to 250", cfg.Hosts)
	}
	if cfg.Rate < 0 {
		return nil, fmt.Errorf("testbed: negative rate %v", cfg.Rate)
	}
	if !cfg.Subnet.IsValid() {
		cfg.Subnet = netip.MustParsePrefix("10.211.0.0/24")
	}
	if cfg.Subnet.Bits() != 24 || !cfg.Subnet.Addr().Is4() {
		return nil, fmt.Errorf("testbed: subnet %v must be an IPv4 /24", cfg.Subnet)
	}
	tb := &Testbed{cfg: cfg, fabric: cfg.Name + "-fab"}
	if err := tb.build(ctx); err != nil {
		tb.Close()
		return nil, err
	}
	return tb, nil
}

func (tb *Testbed) build(ctx context.Context) error {
	if err := ip(ctx, "netns", "add", tb.fabric); err != nil {
		return err
	}
	tb.made = append(tb.made, tb.fabric)
	br := tb.cfg.Name + "br"
	steps := [][]string{
		{"-n", tb.fabric, "link", "add", br, "type", "bridge"},
		{"-n", tb.fabric, "link", "set", br, "up"},
		{"-n", tb.fabric, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := ip(ctx, s...); err != nil {
			return err
		}
	}
	base := tb.cfg.Subnet.Addr().As4()
	for i := range tb.cfg.Hosts {
		ns := tb.HostName(i)
		if err := ip(ctx, "netns", "add", ns); err != nil {
			return err
		}
		tb.made = append(tb.made, ns)
		addr := base
		addr[3] = byte(i + 1)
		tb.addrs = append(tb.addrs, netip.AddrFrom4(addr))
		hostIf, fabIf := tb.cfg.Name+"h"+strconv.Itoa(i), tb.cfg.Name+"f"+strconv.Itoa(i)
		steps := [][]string{
			{"link", "add", hostIf, "netns", ns, "type", "veth", "peer", "name", fabIf, "netns", tb.fabric},
			{"-n", ns, "link", "set", hostIf, "name", "eth0"},
			{"-n", ns, "addr", "add", netip.PrefixFrom(netip.AddrFrom4(addr), 24).String(), "dev", "eth0"},
			{"-n", ns, "link", "set", "eth0", "up"},
			{"-n", ns, "link", "set", "lo", "up"},
			{"-n", tb.fabric, "link", "set", fabIf, "master", br},
			{"-n", tb.fabric, "link", "set", fabIf, "up"},
		}
		for _, s := range steps {
			if err := ip(ctx, s...); err != nil {
				return err
			}
		}
		if tb.cfg.Rate > 0 {
			if err := shape(ctx, ns, "eth0", tb.cfg.Rate); err != nil {
				return err
			}
			if err := shape(ctx, tb.fabric, fabIf, tb.cfg.Rate); err != nil {
				return err
			}
		}
	}
	return nil
}

// shape puts a token bucket on the egress of dev in namespace ns.
func shape(ctx context.Context, ns, dev string, rate float64) error {
	bits := strconv.FormatFloat(rate, 'f', 0, 64) + "bit"
	// A bucket of at least one MTU and about 2 ms at the rate keeps TCP smooth.
	burst := max(int(rate/8/500), 16*1024)
	return run(ctx, "tc", "-n", ns, "qdisc", "replace", "dev", dev, "root", "tbf",
		"rate", bits, "burst", strconv.Itoa(burst), "latency", "20ms")
}

// Hosts returns the number of hosts.
func (tb *Testbed) Hosts() int { return tb.cfg.Hosts }

// HostName returns the namespace name of host i.
func (tb *Testbed) HostName(i int) string { return tb.cfg.Name + "-h" + strconv.Itoa(i) }

// Addr returns the IPv4 address of host i.
func (tb *Testbed) Addr(i int) netip.Addr { return tb.addrs[i] }

// Command returns a command that runs name with args inside host i's namespace. The caller
// starts it and waits for it; Close does not kill it.
func (tb *Testbed) Command(ctx context.Context, i int, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", tb.HostName(i), name}, args...)...)
}

// Qdisc returns the output of "tc qdisc show" for host i's interface, to check its shaping.
func (tb *Testbed) Qdisc(ctx context.Context, i int) (string, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "tc", "-n", tb.HostName(i), "qdisc", "show", "dev", "eth0")
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("testbed: tc qdisc show in %s: %w", tb.HostName(i), err)
	}
	return out.String(), nil
}

// Close removes every namespace of the testbed (which removes their interfaces). It is safe
// to call more than once and returns the first error met.
func (tb *Testbed) Close() error {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if tb.closed {
		return nil
	}
	tb.closed = true
	var first error
	for _, ns := range tb.made {
		if err := ip(context.Background(), "netns", "del", ns); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func ip(ctx context.Context, args ...string) error { return run(ctx, "ip", args...) }

func run(ctx context.Context, name string, args ...string) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("testbed: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
