package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/treecast/treecast/bench/testbed"
)

// Config describes a benchmark on the testbed.
type Config struct {
	// Racks and HostsPerRack shape the testbed (see package testbed). Host r0h0 is the
	// source; every other host is a receiver.
	Racks, HostsPerRack int
	// Rate is the rate of every host link and (unless UplinkRate is set) every rack uplink,
	// in bits/s, each direction.
	Rate float64
	// UplinkRate is the rate of each rack's uplink to the core, in bits/s (0: Rate).
	UplinkRate float64
	// PerFrame makes the testbed's arcs carry Ethernet frames one by one rather than pass
	// segmentation-offload packets whole (testbed.Config.PerFrame): the kernel's per-frame
	// work then bounds the TCP peers on a machine of a few cores.
	PerFrame bool
	// Size is the object's size in bytes (random bytes, seeded by Seed).
	Size int64
	// Seed makes the object's bytes.
	Seed uint64
	// Runs is how many times each peer runs (runs are interleaved: run 1 of every peer, then
	// run 2, ...).
	Runs int
	// Peers lists what runs, in order (see [Peer]); default [DefaultPeers].
	Peers []Peer
	// Treecast is the path of the treecast binary whose agents run inside the testbed.
	Treecast string
	// Timeout bounds one run of one peer (0: 60 s + 2 x receivers x ideal, the time unicast
	// from the source needs, doubled).
	Timeout time.Duration
	// Install lets the benchmark install missing Debian packages with apt-get (root only).
	Install bool
	// WorkDir holds the object, the receivers' copies and every process's log, in a fresh
	// directory per benchmark (default: the system's temporary directory). The directory is
	// removed at the end unless Keep is set or a run failed.
	WorkDir string
	Keep    bool
	// Name names the testbed (default: a random name).
	Name string
	// Log receives one line per step (nil: discarded).
	Log io.Writer
	// OnResult, if not nil, is called with the report so far after every run (to save
	// partial reports).
	OnResult func(*Report)
}

// Goodput is the fraction of a link's rate that carries an object's bytes at best (TCP/IP
// and Ethernet headers take the rest); ideal time = object / (rate x Goodput).
const Goodput = 0.96

// Validate checks a configuration and names the offending value.
func (c *Config) Validate() error {
	switch {
	case c.Racks < 1 || c.HostsPerRack < 1 || c.Racks*c.HostsPerRack < 2:
		return fmt.Errorf("bench: %d racks x %d hosts: want at least 2 hosts", c.Racks, c.HostsPerRack)
	case c.Racks*c.HostsPerRack > 256:
		return fmt.Errorf("bench: %d hosts: at most 256", c.Racks*c.HostsPerRack)
	case c.Rate <= 0 || math.IsInf(c.Rate, 0) || math.IsNaN(c.Rate):
		return fmt.Errorf("bench: rate %v bit/s: want a positive rate", c.Rate)
	case c.UplinkRate < 0:
		return fmt.Errorf("bench: uplink rate %v bit/s is negative", c.UplinkRate)
	case c.Size < 1 || c.Size > 16<<30:
		return fmt.Errorf("bench: object size %d: want 1 byte to 16 GiB", c.Size)
	case c.Runs < 1 || c.Runs > 100:
		return fmt.Errorf("bench: %d runs: want 1 to 100", c.Runs)
	case c.Timeout < 0:
		return fmt.Errorf("bench: negative timeout %v", c.Timeout)
	}
	names := map[string]bool{}
	for _, p := range c.Peers {
		if names[p.Name()] {
			return fmt.Errorf("bench: peer %q listed twice", p.Name())
		}
		names[p.Name()] = true
		if _, ok := p.(*Treecast); ok && c.Treecast == "" {
			return errors.New("bench: the treecast peer needs the path of the treecast binary (Config.Treecast)")
		}
	}
	return nil
}

// Ideal is the time an object takes at the link rate's goodput: the lower bound every peer
// is measured against.
func (c *Config) Ideal() time.Duration {
	return time.Duration(float64(c.Size) * 8 / (c.Rate * Goodput) * float64(time.Second))
}

// Network describes the testbed in words: "4 racks x 4 hosts, 100 Mbit/s".
func (c *Config) Network() string {
	s := fmt.Sprintf("%d racks x %d hosts, %s", c.Racks, c.HostsPerRack, FormatRate(c.Rate))
	if c.UplinkRate > 0 && c.UplinkRate != c.Rate {
		s += fmt.Sprintf(" (rack uplinks %s)", FormatRate(c.UplinkRate))
	}
	if c.PerFrame {
		s += ", per-frame links"
	}
	return s
}

// Result is one run of one peer.
type Result struct {
	Network string `json:"network"`
	// Object is the object's size in bytes.
	Object int64  `json:"object_bytes"`
	Peer   string `json:"peer"`
	Run    int    `json:"run"`
	// Seconds is the time from the start of the transfer until every receiver held its copy
	// (0 when the run failed before it ended).
	Seconds float64 `json:"seconds"`
	// XIdeal is Seconds over the ideal time.
	XIdeal float64 `json:"x_ideal"`
	// MaxCopies is the largest number of copies an arc carried (bytes / object size), and
	// MaxArc that arc ("r0h0>r0") and its kind ("host uplink").
	MaxCopies float64 `json:"max_copies"`
	MaxArc    string  `json:"max_arc"`
	MaxKind   string  `json:"max_arc_kind"`
	// TotalCopies is the sum of copies over all arcs.
	TotalCopies float64 `json:"total_copies"`
	// CPUSeconds is the CPU time (user + system) of every process the run started (agents,
	// daemons, clients), from the start of the peer's setup to its end.
	CPUSeconds float64 `json:"cpu_seconds"`
	// Verified counts receivers whose copy has the object's SHA-256, out of Receivers.
	Verified  int `json:"verified"`
	Receivers int `json:"receivers"`
	// Notes say what the harness had to do during the run (e.g. restart agents whose join
	// failed).
	Notes []string `json:"notes,omitempty"`
	// Error says why the run failed, if it did; $WORK stands for the work directory.
	Error string `json:"error,omitempty"`
	// Arcs gives the copies on every arc.
	Arcs map[string]float64 `json:"arcs,omitempty"`
}

// OK reports whether every receiver verified its copy and the run ended without error.
func (r Result) OK() bool { return r.Error == "" && r.Verified == r.Receivers }

// Report is a benchmark's outcome.
type Report struct {
	// Command is the command line that produced the report (set by the caller).
	Command string `json:"command,omitempty"`
	// Date, Kernel and CPUs describe where it ran.
	Date    string `json:"date"`
	Kernel  string `json:"kernel"`
	CPUs    int    `json:"cpus"`
	Network string `json:"network"`
	// PerFrame tells that the links carried frames one by one (Config.PerFrame).
	PerFrame bool `json:"per_frame,omitempty"`
	// Object is the object size in bytes; Ideal the ideal time in seconds.
	Object  int64    `json:"object_bytes"`
	Ideal   float64  `json:"ideal_seconds"`
	Runs    int      `json:"runs"`
	Peers   []string `json:"peers"`
	Results []Result `json:"results"`
	// Load is the machine's load average (1, 5, 15 min) at the start and at the end: the
	// agents and tools share its CPUs, so a loaded machine slows the CPU-bound peers.
	LoadStart string `json:"load_start"`
	LoadEnd   string `json:"load_end"`
	// Tools gives the version of each peer's Debian packages.
	Tools map[string]string `json:"tools,omitempty"`
}

// Run builds the testbed, runs every peer Runs times on it, verifies every receiver's copy
// and returns the report. It removes the testbed and stops every process it started before
// returning, also when ctx is cancelled (Ctrl-C). A peer's failed run is recorded in its
// Result and does not stop the benchmark; Run returns an error only when the benchmark
// cannot run at all (testbed, tools, object). Cost: Runs x peers transfers, each bounded by
// Timeout.
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	if cfg.Peers == nil {
		cfg.Peers = DefaultPeers()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := testbed.Supported(); err != nil {
		return nil, err
	}
	logf := func(format string, args ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, format+"\n", args...)
		}
	}
	if err := EnsureTools(ctx, cfg.Peers, cfg.Install, logf); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		n := cfg.Racks * cfg.HostsPerRack
		cfg.Timeout = time.Minute + 2*time.Duration(n-1)*cfg.Ideal()
	}
	work, err := os.MkdirTemp(cfg.WorkDir, "treecast-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	failed := false
	defer func() {
		if cfg.Keep || failed {
			logf("logs and copies kept in %s", work)
			return
		}
		_ = os.RemoveAll(work)
	}()
	obj := filepath.Join(work, "object")
	digest, err := writeObject(obj, cfg.Size, cfg.Seed)
	if err != nil {
		return nil, err
	}

	if cfg.Name == "" {
		cfg.Name = testbed.RandomName()
	}
	logf("building testbed %s (if this process is killed, treecast bench remove %s cleans up): %s", cfg.Name, cfg.Name, cfg.Network())
	tb, err := testbed.New(ctx, testbed.Config{Name: cfg.Name, Racks: cfg.Racks, HostsPerRack: cfg.HostsPerRack, HostRate: cfg.Rate, UplinkRate: cfg.UplinkRate, PerFrame: cfg.PerFrame})
	if err != nil {
		return nil, err
	}
	defer tb.Close()

	rep = &Report{
		Date: time.Now().UTC().Format(time.RFC3339), Kernel: kernel(), CPUs: runtime.NumCPU(),
		Network: cfg.Network(), PerFrame: cfg.PerFrame, Object: cfg.Size, Ideal: cfg.Ideal().Seconds(), Runs: cfg.Runs,
		Tools: toolVersions(ctx, cfg), LoadStart: loadAvg(),
	}
	defer func() { rep.LoadEnd = loadAvg() }()
	for _, p := range cfg.Peers {
		rep.Peers = append(rep.Peers, p.Name())
	}
	for run := 1; run <= cfg.Runs; run++ {
		for pi, p := range cfg.Peers {
			if err := ctx.Err(); err != nil {
				failed = true
				return rep, fmt.Errorf("bench: interrupted: %w", context.Cause(ctx))
			}
			dir := filepath.Join(work, fmt.Sprintf("run%d-peer%d", run, pi))
			res := runOne(ctx, &cfg, tb, p, run, dir, obj, digest)
			if ctx.Err() != nil { // cut short by the caller: not a measurement
				failed = true
				return rep, fmt.Errorf("bench: interrupted: %w", context.Cause(ctx))
			}
			rep.Results = append(rep.Results, res)
			if cfg.OnResult != nil {
				cfg.OnResult(rep)
			}
			status := "ok"
			if !res.OK() {
				status, failed = "FAILED: "+res.Error, true
			} else if !cfg.Keep {
				_ = os.RemoveAll(dir) // the copies are large; logs of good runs go too
			}
			if len(res.Notes) > 0 {
				status += fmt.Sprintf(" (%d notes: %s)", len(res.Notes), res.Notes[0])
			}
			logf("run %d %-40s %7.2fs  x%.2f  max %.2f copies (%s)  %d/%d verified  cpu %.0fs  %s",
				run, p.Name(), res.Seconds, res.XIdeal, res.MaxCopies, res.MaxArc, res.Verified, res.Receivers, res.CPUSeconds, status)
		}
	}
	return rep, nil
}

// runOne runs one peer once and measures it.
func runOne(ctx context.Context, cfg *Config, tb *testbed.Testbed, p Peer, run int, dir, obj, digest string) Result {
	n := len(tb.Hosts())
	res := Result{Network: cfg.Network(), Object: cfg.Size, Peer: p.Name(), Run: run, Receivers: n - 1}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		res.Error = err.Error()
		return res
	}
	rctx, cancel := context.WithTimeoutCause(ctx, cfg.Timeout, fmt.Errorf("bench: run timed out after %v", cfg.Timeout))
	defer cancel()
	e := &Env{cfg: cfg, tb: tb, dir: dir, object: obj, digest: digest}
	copies, err := p.Run(rctx, e)
	e.procs.stopAll(5 * time.Second)
	res.CPUSeconds = e.procs.cpuTime().Seconds()
	for _, n := range e.notes {
		res.Notes = append(res.Notes, oneLine(strings.ReplaceAll(n, filepath.Dir(dir), "$WORK")))
	}
	if err == nil && (e.started.IsZero() || e.stopped.IsZero()) {
		err = fmt.Errorf("bench: peer %s did not time its transfer", p.Name())
	}
	if err != nil {
		// Paths in the message (logs) are named from the work directory, kept on failure
		// and named in the log.
		res.Error = oneLine(strings.ReplaceAll(err.Error(), filepath.Dir(dir), "$WORK"))
	}
	if !e.stopped.IsZero() {
		res.Seconds = e.stopped.Sub(e.started).Seconds()
		res.XIdeal = res.Seconds / cfg.Ideal().Seconds()
		res.Arcs = map[string]float64{}
		for arc, b := range e.after {
			c := float64(b-e.before[arc]) / float64(cfg.Size)
			res.Arcs[arc.String()] = c
			res.TotalCopies += c
			if c > res.MaxCopies || (c == res.MaxCopies && arc.String() < res.MaxArc) {
				res.MaxCopies, res.MaxArc, res.MaxKind = c, arc.String(), arc.Kind()
			}
		}
	}
	for i := 1; i < n; i++ {
		path, ok := copies[i]
		if !ok {
			continue
		}
		if got, err := fileDigest(path); err == nil && got == digest {
			res.Verified++
		}
	}
	if res.Error == "" && res.Verified < res.Receivers {
		res.Error = fmt.Sprintf("%d of %d receivers hold no byte-exact copy", res.Receivers-res.Verified, res.Receivers)
	}
	return res
}

// Env is what a peer's run works with: the testbed, the object, a directory of its own, and
// the clock and counters it starts and stops around the transfer.
type Env struct {
	cfg    *Config
	tb     *testbed.Testbed
	dir    string
	object string
	digest string
	procs  group

	notes []string

	started, stopped time.Time
	before, after    map[testbed.Arc]uint64
}

// Hosts returns the testbed's hosts; host 0 is the source.
func (e *Env) Hosts() []testbed.Host { return e.tb.Hosts() }

// Dir returns a directory for the run's files (a new one per run).
func (e *Env) Dir() string { return e.dir }

// Object returns the path of the object (in the machine's file system, which the hosts share).
func (e *Env) Object() string { return e.object }

// Start reads the arc counters and starts the clock: call it just before the transfer.
func (e *Env) Start(ctx context.Context) error {
	c, err := e.tb.Counters(ctx)
	if err != nil {
		return err
	}
	e.before, e.started = c, time.Now()
	return nil
}

// Stop stops the clock and reads the arc counters: call it when every receiver holds its copy.
func (e *Env) Stop(ctx context.Context) error {
	t := time.Now()
	c, err := e.tb.Counters(context.WithoutCancel(ctx))
	if err != nil {
		return err
	}
	e.after, e.stopped = c, t
	return nil
}

// exec starts a program inside host i; its output goes to logs/LABEL.log in the run's
// directory. The process is stopped when the run ends.
func (e *Env) exec(ctx context.Context, i int, label, name string, args ...string) (*proc, error) {
	cmd := e.tb.Command(ctx, i, name, args...)
	cmd.Dir = e.dir
	return e.procs.start(label+" on "+e.tb.Host(i).Name, cmd, filepath.Join(e.dir, "logs", label+"-"+e.tb.Host(i).Name+".log"))
}

// note records something about the run that the report should show (a workaround the
// harness applied); notes of the same kind are counted.
func (e *Env) note(s string) { e.notes = append(e.notes, s) }

// writeObject writes size seeded random bytes to path and returns their SHA-256 (hex).
func writeObject(path string, size int64, seed uint64) (string, error) {
	f, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(seed, uint64(size)))
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := min(left, int64(len(buf)))
		for i := 0; i < int(n); i += 8 {
			v := rng.Uint64()
			for j := 0; j < 8 && i+j < int(n); j++ {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		if _, err := f.Write(buf[:n]); err != nil {
			return "", fmt.Errorf("bench: writing the object: %w", err)
		}
		h.Write(buf[:n])
		left -= n
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("bench: writing the object: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// fileDigest returns the SHA-256 (hex) of a file's bytes.
func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return runtime.GOOS
	}
	return "Linux " + strings.TrimSpace(string(b))
}

// loadAvg returns the 1, 5 and 15 minute load averages ("" if unknown).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return ""
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 600 {
		s = s[:600] + "..."
	}
	return s
}

// FormatRate writes a rate in bits/s the way tc does: "100 Mbit/s".
func FormatRate(r float64) string {
	switch {
	case r >= 1e9 && math.Mod(r, 1e9) == 0:
		return fmt.Sprintf("%g Gbit/s", r/1e9)
	case r >= 1e6:
		return fmt.Sprintf("%g Mbit/s", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%g kbit/s", r/1e3)
	}
	return fmt.Sprintf("%g bit/s", r)
}

// median returns the median of xs (0 for none).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
