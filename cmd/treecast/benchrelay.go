package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/treecast/treecast/node/identity"

	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// The relay-hop benchmark: `treecast bench relay`.

// benchRelayResult is what `treecast bench relay --json` prints.
type benchRelayResult struct {
	RawTCPMBps float64 `json:"raw_tcp_mbps"`
	RelayMBps  float64 `json:"relay_mbps"`
	Ratio      float64 `json:"ratio"`
	CPU        struct {
		Source float64 `json:"source"`
		Relay  float64 `json:"relay"`
		Leaf   float64 `json:"leaf"`
	} `json:"cpu_s_per_gib"`
	MaxRSSMiB float64 `json:"max_rss_mib"`
	// RawCopy is raw TCP through a relay that copies every byte through its memory: the
	// kernel's share of a hop, beside the splicing relay the ratio is taken against.
	RawCopy struct {
		MBps float64     `json:"mbps"`
		CPU  *rawCopyCPU `json:"cpu_s_per_gib,omitempty"` // nil where threads' CPU time is unknown
	} `json:"raw_copy"`
}

// rawCopyCPU is the CPU seconds per GiB of the copying relay's and the sink's threads.
type rawCopyCPU struct {
	Relay float64 `json:"relay"`
	Sink  float64 `json:"sink"`
}

func newBenchRelayCmd() *cobra.Command {
	var (
		size, chunk string
		useTLS      bool
		asJSON      bool
		keep        bool
		profDir     string
	)
	c := &cobra.Command{
		Use:   "relay [--size 256MiB] [--chunk SIZE] [--json]",
		Short: "Measure one relay hop: treecast source -> relay -> leaf against raw TCP through a relay",
		Long: `Measure what one relay hop of a push costs, on this host's loopback.

First raw TCP: the object's bytes from a sender through a relay to a sink (goroutines of this
process), twice: once through Go's io.Copy between the two connections, which splices (the
bytes never leave the kernel; the ratio is taken against this one), once through a relay that
reads every byte into its memory and writes it out, as an agent must, with the CPU time of
the relay's and the sink's threads: the kernel's share of a hop, the floor under an agent's.
Then treecast: three agents, each its own process (this binary's "agent" command, stores in
a temporary directory on disk), the first stores a
pseudo-random object of --size bytes and pushes it down a chain to the other two: the middle
agent verifies, writes and forwards every chunk, the last verifies and writes.

It prints both throughputs (MB/s of the object, 10^6 bytes per second; treecast's over the time
from the push's plan, when the source holds the object, to its report), their ratio, the CPU
seconds each agent spent per GiB pushed (user plus system time from /proc/PID/stat, from the
moment the source holds the object to the push's report, so storing the object at the source
is not counted) and the agents' peak resident memory (VmHWM from /proc/PID/status). Linux only.
A push that does not complete, or an agent that fails to start, ends the command with an error;
the agents are stopped and their directory removed in every case.`,
		Example: `  treecast bench relay
  treecast bench relay --size 1GiB --chunk 4MiB --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			n, err := parseSize(size)
			if err != nil {
				return usageErr(fmt.Errorf("--size: %w", err))
			}
			var cs int64
			if chunk != "" {
				if cs, err = parseSize(chunk); err != nil {
					return usageErr(fmt.Errorf("--chunk: %w", err))
				}
				if cs > 64<<20 {
					return usageErr(fmt.Errorf("--chunk %s: at most 64MiB", chunk))
				}
			}
			res, err := runBenchRelay(c.Context(), n, cs, useTLS, keep, profDir, c.ErrOrStderr())
			if err != nil {
				return err
			}
			if asJSON {
				return encodeJSON(c.OutOrStdout(), res)
			}
			w := tabwriter.NewWriter(c.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintf(w, "object\t%s (%d bytes)\n", size, n)
			fmt.Fprintf(w, "raw TCP through a splicing relay\t%.0f MB/s\n", res.RawTCPMBps)
			fmt.Fprintf(w, "raw TCP through a relay copying through its memory\t%.0f MB/s", res.RawCopy.MBps)
			if cpu := res.RawCopy.CPU; cpu != nil {
				fmt.Fprintf(w, " (CPU s/GiB relay %.2f, sink %.2f)", cpu.Relay, cpu.Sink)
			}
			fmt.Fprintln(w)
			fmt.Fprintf(w, "treecast relay hop\t%.0f MB/s\n", res.RelayMBps)
			fmt.Fprintf(w, "ratio\t%.2f\n", res.Ratio)
			fmt.Fprintf(w, "CPU s/GiB source, relay, leaf\t%.2f, %.2f, %.2f\n", res.CPU.Source, res.CPU.Relay, res.CPU.Leaf)
			fmt.Fprintf(w, "peak RSS of an agent\t%.0f MiB\n", res.MaxRSSMiB)
			return w.Flush()
		},
	}
	f := c.Flags()
	f.StringVar(&size, "size", "256MiB", "object size, e.g. 256MiB, 1GiB")
	f.StringVar(&chunk, "chunk", "", "chunk size (default: the plan chooses for the object's size)")
	f.BoolVar(&useTLS, "tls", false, "run the agents with mutual TLS and an encrypted gossip key (a throwaway CA of the run), as a production cluster runs; without it they run --insecure")
	f.BoolVar(&asJSON, "json", false, `print one JSON object: {"raw_tcp_mbps","relay_mbps","ratio","cpu_s_per_gib":{"source","relay","leaf"},"max_rss_mib","raw_copy":{"mbps","cpu_s_per_gib":{"relay","sink"}}}`)
	f.BoolVar(&keep, "keep", false, "keep the agents' directory (its path is printed on stderr)")
	f.StringVar(&profDir, "cpuprofile", "", "write each agent's CPU profile over its run to DIR/NAME.pprof (source, relay, leaf; for `go tool pprof`)")
	_ = f.MarkHidden("keep")
	return c
}

// runBenchRelay measures raw TCP, then the agents' relay hop.
func runBenchRelay(ctx context.Context, size, chunk int64, useTLS, keep bool, profDir string, logw io.Writer) (benchRelayResult, error) {
	var res benchRelayResult
	raw, err := rawTCPRelay(size, false)
	if err != nil {
		return res, fmt.Errorf("raw TCP: %w", err)
	}
	res.RawTCPMBps = float64(size) / raw.elapsed.Seconds() / 1e6
	copied, err := rawTCPRelay(size, true)
	if err != nil {
		return res, fmt.Errorf("raw TCP, copying: %w", err)
	}
	res.RawCopy.MBps = float64(size) / copied.elapsed.Seconds() / 1e6
	if copied.cpuKnown {
		gib := float64(size) / (1 << 30)
		res.RawCopy.CPU = &rawCopyCPU{Relay: round2(copied.relayCPU.Seconds() / gib), Sink: round2(copied.sinkCPU.Seconds() / gib)}
	}

	exe, err := os.Executable()
	if err != nil {
		return res, err
	}
	dir, err := os.MkdirTemp("", "treecast-bench-relay-")
	if err != nil {
		return res, err
	}
	if keep {
		fmt.Fprintln(logw, "agents' directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	names := []string{"source", "relay", "leaf"}
	extra := func(string) []string { return []string{"--insecure"} }
	creds := insecure.NewCredentials()
	if useTLS {
		if extra, creds, err = benchRelayCerts(filepath.Join(dir, "certs"), names); err != nil {
			return res, err
		}
	}
	agents := make([]*benchAgent, 0, len(names))
	defer func() {
		for _, a := range agents {
			a.stop()
		}
	}()
	for i, name := range names {
		var join []string
		if i > 0 {
			join = []string{agents[0].gossip}
		}
		args := extra(name)
		if profDir != "" {
			if err := os.MkdirAll(profDir, 0o755); err != nil {
				return res, err
			}
			p, err := filepath.Abs(filepath.Join(profDir, name+".pprof"))
			if err != nil {
				return res, err
			}
			args = append(args, "--cpuprofile", p)
			fmt.Fprintf(logw, "%s: CPU profile in %s once the agent stops\n", name, p)
		}
		a, err := startBenchAgent(ctx, exe, dir, name, join, args)
		if err != nil {
			return res, err
		}
		agents = append(agents, a)
	}
	conn, err := grpc.NewClient(agents[0].grpc, grpc.WithTransportCredentials(creds))
	if err != nil {
		return res, err
	}
	defer conn.Close()
	client := pb.NewAgentClient(conn)
	if err := waitMembers(ctx, client, len(names), 30*time.Second); err != nil {
		return res, err
	}
	obj := filepath.Join(agents[0].data, "object")
	if err := writeBenchObject(obj, size); err != nil {
		return res, err
	}
	req := &pb.SubmitRequest{Object: &pb.SubmitRequest_Path{Path: obj},
		Target:  &pb.Target{Kind: &pb.Target_Names{Names: &pb.NodeNames{Names: names[1:]}}},
		Options: &pb.PushOptions{Strategy: pb.Strategy_STRATEGY_CHAIN, ChunkSize: uint32(chunk)}}
	stream, err := client.Submit(ctx, req)
	if err != nil {
		return res, fmt.Errorf("submit: %w", err)
	}
	var (
		before  []float64
		relay   string
		report  *pb.Report
		planned bool
		start   time.Time // when the plan arrived: the source holds the object
		secs    float64   // from the plan to the report
	)
	for report == nil {
		ev, err := stream.Recv()
		if err != nil {
			return res, fmt.Errorf("push: %w", err)
		}
		switch x := ev.Event.(type) {
		case *pb.SubmitEvent_Plan:
			// The source holds the object now: CPU counts from here.
			planned, start = true, time.Now()
			if before, err = cpuSeconds(agents); err != nil {
				return res, err
			}
			for _, e := range x.Plan.GetEdges() {
				if e.GetParent() == "source" {
					relay = e.GetChild()
				}
			}
		case *pb.SubmitEvent_Report:
			report, secs = x.Report, time.Since(start).Seconds()
		}
	}
	after, err := cpuSeconds(agents)
	if err != nil {
		return res, err
	}
	if !planned || relay == "" {
		return res, errors.New("push: no plan with an edge from the source")
	}
	if profDir != "" { // the chain's order is the plan's: say which profile is the relay hop's
		fmt.Fprintf(logw, "the relay hop was agent %s (%s.pprof)\n", relay, relay)
	}
	for _, r := range report.GetReceivers() {
		if r.GetStatus() != pb.ReceiverStatus_RECEIVER_STATUS_VERIFIED {
			return res, fmt.Errorf("push: receiver %s: %s", r.GetReceiver(), r.GetError())
		}
	}
	res.RelayMBps = float64(size) / secs / 1e6
	res.Ratio = res.RelayMBps / res.RawTCPMBps
	gib := float64(size) / (1 << 30)
	perGiB := func(i int) float64 { return (after[i] - before[i]) / gib }
	res.CPU.Source = perGiB(0)
	if relay == "relay" {
		res.CPU.Relay, res.CPU.Leaf = perGiB(1), perGiB(2)
	} else { // the plan chained them the other way round
		res.CPU.Relay, res.CPU.Leaf = perGiB(2), perGiB(1)
	}
	for _, a := range agents {
		hwm, err := peakRSS(a.cmd.Process.Pid)
		if err != nil {
			return res, err
		}
		res.MaxRSSMiB = max(res.MaxRSSMiB, hwm)
	}
	return res, nil
}

// benchAgent is one agent process of the benchmark.
type benchAgent struct {
	cmd          *exec.Cmd
	data         string
	grpc, gossip string
	exited       chan struct{}
}

// startBenchAgent starts `exe agent` with its store under dir/name, on loopback ports the
// kernel picks, and waits for the line that gives its bound addresses.
func startBenchAgent(ctx context.Context, exe, dir, name string, join, extra []string) (*benchAgent, error) {
	data := filepath.Join(dir, name)
	args := []string{"agent", "--name", name, "--data", data, "--listen", "127.0.0.1:0", "--gossip", "127.0.0.1:0"}
	if len(join) > 0 {
		args = append(args, "--join", strings.Join(join, ","))
	}
	args = append(args, extra...)
	cmd := exec.Command(exe, args...)
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child holds its own descriptor
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("agent %s: %w", name, err)
	}
	a := &benchAgent{cmd: cmd, data: data, exited: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() { _ = cmd.Wait(); close(a.exited) }()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case line, ok := <-lines:
		// "agent NAME: grpc ADDR gossip ADDR ..."
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			switch f[i] {
			case "grpc":
				a.grpc = f[i+1]
			case "gossip":
				a.gossip = f[i+1]
			}
		}
		if !ok || a.grpc == "" || a.gossip == "" {
			a.stop()
			return nil, fmt.Errorf("agent %s did not start (see %s): %q", name, logf.Name(), line)
		}
	case <-timer.C:
		a.stop()
		return nil, fmt.Errorf("agent %s: no address line within 30s (see %s)", name, logf.Name())
	case <-ctx.Done():
		a.stop()
		return nil, ctx.Err()
	}
	return a, nil
}

// stop sends SIGTERM and waits up to 10 s for the agent to exit, then kills it.
func (a *benchAgent) stop() {
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case <-a.exited:
	case <-timer.C:
		_ = a.cmd.Process.Kill()
		<-a.exited
	}
}

// benchRelayCerts makes a throwaway CA in dir, a node certificate for each agent (valid for
// 127.0.0.1), an operator certificate for the benchmark and a gossip key. It returns each
// agent's TLS flags and the benchmark's client credentials.
func benchRelayCerts(dir string, names []string) (func(string) []string, credentials.TransportCredentials, error) {
	if err := identity.InitCA(dir); err != nil {
		return nil, nil, err
	}
	gossipKey, err := identity.NewGossipKey(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range names {
		if err := identity.Issue(dir, n, identity.RoleNode, []string{"127.0.0.1"}); err != nil {
			return nil, nil, err
		}
	}
	if err := identity.Issue(dir, "bench", identity.RoleOperator, nil); err != nil {
		return nil, nil, err
	}
	ca, _ := identity.CAFiles(dir)
	opCert, opKey := identity.Files(dir, "bench")
	src, err := identity.Load(opCert, opKey, ca)
	if err != nil {
		return nil, nil, err
	}
	flags := func(name string) []string {
		cert, key := identity.Files(dir, name)
		return []string{"--tls-cert", cert, "--tls-key", key, "--tls-ca", ca, "--gossip-key", gossipKey}
	}
	return flags, credentials.NewTLS(src.ClientConfig("")), nil
}

// waitMembers waits until the agent's gossip lists n members, for at most d.
func waitMembers(ctx context.Context, client pb.AgentClient, n int, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	seen := 0
	for {
		st, err := client.Status(ctx, &pb.StatusRequest{})
		if err == nil {
			if seen = len(st.GetMembers()); seen >= n {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gossip lists %d of %d agents after %v (last error: %v)", seen, n, d, err)
		case <-tick.C:
		}
	}
}

// writeBenchObject writes size pseudo-random bytes (incompressible, cheap to make) to path.
func writeBenchObject(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x7472656563617374))
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		for i := 0; i+8 <= len(buf); i += 8 {
			v := r.Uint64()
			for k := range 8 {
				buf[i+k] = byte(v >> (8 * k))
			}
		}
		n := min(left, int64(len(buf)))
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return err
		}
		left -= n
	}
	return f.Close()
}

// rawHop is one run of raw TCP through a relay: the time until the sink had every byte, and
// with a copying relay the CPU time its relay's and its sink's threads used (zero when the
// system does not tell).
type rawHop struct {
	elapsed           time.Duration
	relayCPU, sinkCPU time.Duration
	cpuKnown          bool
}

// rawTCPRelay sends n bytes over loopback TCP from a sender through a relay to a sink. Without
// copyBytes the relay is Go's io.Copy between two TCP connections, which the runtime turns
// into splice(2): the bytes never reach the relay's memory. With copyBytes the relay reads
// every byte into a buffer of its own and writes it out, as an agent must (to verify and
// store what it passes on), and the relay and the sink each run on an OS thread of their own
// whose CPU time is measured: the kernel's share of a relay hop on this host, the floor under
// an agent's.
func rawTCPRelay(n int64, copyBytes bool) (rawHop, error) {
	var hop rawHop
	sinkL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return hop, err
	}
	defer sinkL.Close()
	relayL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return hop, err
	}
	defer relayL.Close()
	type end struct {
		cpu   time.Duration
		known bool
		err   error
	}
	// pass moves src to dst as the run's relay or sink does, and returns the bytes moved.
	pass := func(dst io.Writer, src io.Reader) (got int64, e end) {
		buf := make([]byte, 1<<20)
		if !copyBytes {
			got, e.err = io.CopyBuffer(dst, src, buf)
			return got, e
		}
		e.cpu, e.known, got, e.err = onThread(func() (int64, error) { return copyThrough(dst, src, buf) })
		return got, e
	}
	sinkDone, relayDone := make(chan end, 1), make(chan end, 1)
	go func() { // sink
		c, err := sinkL.Accept()
		if err != nil {
			sinkDone <- end{err: err}
			return
		}
		defer c.Close()
		got, e := pass(io.Discard, c)
		if e.err == nil && got != n {
			e.err = fmt.Errorf("sink got %d of %d bytes", got, n)
		}
		sinkDone <- e
	}()
	go func() { // relay
		in, err := relayL.Accept()
		if err != nil {
			relayDone <- end{err: err}
			return
		}
		defer in.Close()
		out, err := net.Dial("tcp", sinkL.Addr().String())
		if err != nil {
			relayDone <- end{err: err}
			return
		}
		_, e := pass(out, in)
		if cerr := out.Close(); e.err == nil {
			e.err = cerr
		}
		relayDone <- e
	}()
	start := time.Now()
	src, err := net.Dial("tcp", relayL.Addr().String())
	if err != nil {
		return hop, err
	}
	buf := make([]byte, 1<<20)
	for left := n; left > 0; {
		k := min(left, int64(len(buf)))
		if _, err := src.Write(buf[:k]); err != nil {
			src.Close()
			return hop, err
		}
		left -= k
	}
	if err := src.Close(); err != nil {
		return hop, err
	}
	r, k := <-relayDone, <-sinkDone
	hop.elapsed = time.Since(start)
	if r.err != nil {
		return hop, r.err
	}
	if k.err != nil {
		return hop, k.err
	}
	hop.relayCPU, hop.sinkCPU, hop.cpuKnown = r.cpu, k.cpu, r.known && k.known
	return hop, nil
}

// round2 rounds x to two decimals (what /proc's CPU ticks resolve).
func round2(x float64) float64 { return math.Round(x*100) / 100 }

// onThread runs f with the calling goroutine locked to its OS thread and returns the thread's
// CPU time over f (see threadCPU) with f's results.
func onThread(f func() (int64, error)) (cpu time.Duration, known bool, n int64, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before, ok1 := threadCPU()
	n, err = f()
	after, ok2 := threadCPU()
	return after - before, ok1 && ok2, n, err
}

// copyThrough copies src to dst through buf with plain reads and writes (io.Copy would hand
// two TCP connections to splice), and returns the bytes copied.
func copyThrough(dst io.Writer, src io.Reader, buf []byte) (int64, error) {
	var total int64
	for {
		k, err := src.Read(buf)
		if k > 0 {
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return total, werr
			}
			total += int64(k)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// clockTicks is the unit of utime and stime in /proc/PID/stat (USER_HZ, 100 on Linux).
const clockTicks = 100

// cpuSeconds returns each agent's user plus system CPU seconds so far.
func cpuSeconds(agents []*benchAgent) ([]float64, error) {
	out := make([]float64, len(agents))
	for i, a := range agents {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", a.cmd.Process.Pid))
		if err != nil {
			return nil, fmt.Errorf("cpu time: %w", err)
		}
		// The command name (field 2) is in parentheses and may hold spaces: fields count
		// from the last ')'. utime and stime are fields 14 and 15.
		s := string(b)
		k := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[k+1:])
		if k < 0 || len(f) < 13 {
			return nil, fmt.Errorf("cpu time: /proc/%d/stat: unexpected %q", a.cmd.Process.Pid, s)
		}
		ut, err1 := strconv.ParseUint(f[11], 10, 64)
		st, err2 := strconv.ParseUint(f[12], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("cpu time: /proc/%d/stat: unexpected %q", a.cmd.Process.Pid, s)
		}
		out[i] = float64(ut+st) / clockTicks
	}
	return out, nil
}

// peakRSS returns a process's peak resident set size in MiB (VmHWM).
func peakRSS(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				return 0, fmt.Errorf("peak RSS: /proc/%d/status: %q", pid, line)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("peak RSS: no VmHWM in /proc/%d/status", pid)
}
