package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a program running inside a testbed host: its output goes to a log file, and its
// lines can be waited for.
type proc struct {
	name string // for messages: "uftpd on r0h1"
	cmd  *exec.Cmd
	log  string // path of the log file

	mu      sync.Mutex
	lines   []string
	partial []byte
	notify  chan struct{} // closed and replaced whenever a line arrives or the process ends
	exited  bool
	err     error // Wait's result once exited
}

// Write collects the process's output lines (stdout and stderr, interleaved).
func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		p.lines = append(p.lines, string(p.partial[:i]))
		p.partial = p.partial[i+1:]
	}
	close(p.notify)
	p.notify = make(chan struct{})
	return len(b), nil
}

// waitLine waits until a line of output contains substr and returns it. It fails when the
// process exits first or ctx ends.
func (p *proc) waitLine(ctx context.Context, substr string) (string, error) {
	next := 0
	for {
		p.mu.Lock()
		for ; next < len(p.lines); next++ {
			if strings.Contains(p.lines[next], substr) {
				l := p.lines[next]
				p.mu.Unlock()
				return l, nil
			}
		}
		exited, err, ch := p.exited, p.err, p.notify
		p.mu.Unlock()
		if exited {
			return "", fmt.Errorf("%s exited (%v) before printing %q; log %s:\n%s", p.name, err, substr, p.log, p.tail())
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return "", fmt.Errorf("%s: waiting for %q: %w; log %s:\n%s", p.name, substr, context.Cause(ctx), p.log, p.tail())
		}
	}
}

// output returns everything the process printed so far.
func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n") + "\n" + string(p.partial)
}

// tail returns the last lines of output, for error messages.
func (p *proc) tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	from := max(0, len(p.lines)-8)
	return "  " + strings.Join(p.lines[from:], "\n  ")
}

// wait waits for the process to exit and returns its error.
func (p *proc) wait(ctx context.Context) error {
	for {
		p.mu.Lock()
		exited, err, ch := p.exited, p.err, p.notify
		p.mu.Unlock()
		if exited {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", p.name, context.Cause(ctx))
		}
	}
}

// running reports whether the process has not exited yet.
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.exited
}

// stop sends SIGTERM, and SIGKILL if the process is still there after grace.
func (p *proc) stop(grace time.Duration) {
	if !p.running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if p.wait(ctx) != nil {
		_ = p.cmd.Process.Kill()
		_ = p.wait(context.Background())
	}
}

// listening reports whether the process has a socket bound to port (TCP listening or UDP),
// read from /proc/PID/net, which shows the process's own network namespace.
func (p *proc) listening(proto string, port int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", p.cmd.Process.Pid, proto))
	if err != nil {
		return false
	}
	want := fmt.Sprintf(":%04X ", port)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasSuffix(f[1]+" ", want) {
			continue
		}
		if proto == "udp" || f[3] == "0A" { // 0A: TCP_LISTEN
			return true
		}
	}
	return false
}

// waitListening waits until the process listens on port, polling every 20 ms, until ctx
// ends or the process exits.
func (p *proc) waitListening(ctx context.Context, proto string, port int) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !p.listening(proto, port) {
		if !p.running() {
			return fmt.Errorf("%s exited before listening on %s port %d; log %s:\n%s", p.name, proto, port, p.log, p.tail())
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("%s: not listening on %s port %d: %w", p.name, proto, port, context.Cause(ctx))
		}
	}
	return nil
}

// group owns the processes of one run and stops them all.
type group struct {
	mu    sync.Mutex
	procs []*proc
	cpu   time.Duration // user + system CPU time of the processes that have exited
}

// start starts cmd (from Testbed.Command) with its output in logPath.
func (g *group) start(name string, cmd *exec.Cmd, logPath string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, log: logPath, notify: make(chan struct{})}
	w := io.MultiWriter(f, p)
	cmd.Stdout, cmd.Stderr = w, w
	fmt.Fprintf(f, "# %s\n", strings.Join(quoteArgs(cmd.Args), " "))
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	g.mu.Lock()
	g.procs = append(g.procs, p)
	g.mu.Unlock()
	go func() {
		err := cmd.Wait()
		f.Close()
		if st := cmd.ProcessState; st != nil {
			g.mu.Lock()
			g.cpu += st.UserTime() + st.SystemTime()
			g.mu.Unlock()
		}
		p.mu.Lock()
		p.exited, p.err = true, err
		close(p.notify)
		p.notify = make(chan struct{})
		p.mu.Unlock()
	}()
	return p, nil
}

// stopAll stops every process of the group, all at once.
func (g *group) stopAll(grace time.Duration) {
	g.mu.Lock()
	procs := g.procs
	g.procs = nil
	g.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stop(grace)
		}()
	}
	wg.Wait()
}

// cpuTime returns the CPU time (user + system) the group's exited processes used.
func (g *group) cpuTime() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cpu
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'") {
			a = strconv.Quote(a)
		}
		out[i] = a
	}
	return out
}
