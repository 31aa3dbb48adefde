package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Tool is a program a peer runs, and the Debian package that provides it.
type Tool struct {
	Binary, Package string
}

// EnsureTools checks that every program the peers need is installed. When one is missing
// and install is set (and the process is root), it runs apt-get install -y for the missing
// packages (apt-get update first if the install fails). It returns an error naming the
// missing programs and packages otherwise. Cost: a PATH lookup per program; the install,
// when needed, takes as long as apt-get.
func EnsureTools(ctx context.Context, peers []Peer, install bool, logf func(string, ...any)) error {
	var missing, pkgs []string
	seen := map[string]bool{}
	for _, p := range peers {
		for _, t := range p.Tools() {
			if _, err := exec.LookPath(t.Binary); err == nil || seen[t.Binary] {
				continue
			}
			seen[t.Binary] = true
			missing = append(missing, t.Binary)
			if !seen["pkg:"+t.Package] {
				seen["pkg:"+t.Package] = true
				pkgs = append(pkgs, t.Package)
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if !install || os.Geteuid() != 0 {
		return fmt.Errorf("bench: %s not installed (Debian packages: %s; run as root with installs allowed, or apt-get install %s)",
			strings.Join(missing, ", "), strings.Join(pkgs, " "), strings.Join(pkgs, " "))
	}
	logf("installing %s", strings.Join(pkgs, " "))
	aptGet := func(args ...string) error {
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("bench: apt-get %s: %w: %s", strings.Join(args, " "), err, lastLines(out.String(), 5))
		}
		return nil
	}
	install1 := append([]string{"install", "-y", "--no-install-recommends"}, pkgs...)
	if err := aptGet(install1...); err != nil {
		if uerr := aptGet("update"); uerr != nil {
			return uerr
		}
		if err := aptGet(install1...); err != nil {
			return err
		}
	}
	for _, b := range missing {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("bench: %s still missing after apt-get install %s", b, strings.Join(pkgs, " "))
		}
	}
	return nil
}

// toolVersions returns the installed version of each tool's Debian package.
func toolVersions(ctx context.Context, cfg Config) map[string]string {
	out := map[string]string{}
	for _, p := range cfg.Peers {
		for _, t := range p.Tools() {
			if t.Package == "" || out[t.Package] != "" {
				continue
			}
			b, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f", "${Version}", t.Package).Output()
			if v := strings.TrimSpace(string(b)); err == nil && v != "" {
				out[t.Package] = v
			}
		}
	}
	return out
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
