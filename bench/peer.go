package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Peer is one way of distributing the object from host 0 to every other host of the
// testbed: treecast, IP multicast (uftp), BitTorrent (aria2c) or HTTP unicast. Run starts
// what the peer needs inside the testbed (through the Env), calls Env.Start just before the
// transfer and Env.Stop once every receiver holds its copy, and returns where each receiver
// (by host index) put its copy; the runner verifies every copy's SHA-256 and stops every
// process Run started. Run returns an error when the transfer failed; the copies it names
// are verified all the same.
type Peer interface {
	// Name labels the peer's rows in the report.
	Name() string
	// Tools lists the programs the peer runs, with their Debian packages.
	Tools() []Tool
	// Run distributes the object once.
	Run(ctx context.Context, e *Env) (copies map[int]string, err error)
}

// DefaultPeers returns treecast with its defaults, treecast with a chain and 256 KiB chunks,
// uftp, BitTorrent and HTTP unicast.
func DefaultPeers() []Peer {
	return []Peer{
		&Treecast{},
		&Treecast{Flags: []string{"--strategy", "chain", "--chunk", "256KiB"}},
		&UFTP{},
		&BitTorrent{},
		&HTTP{},
	}
}

// PeerByName returns the peer a command line names: "treecast" (defaults), "treecast:FLAGS"
// (extra push flags, separated by spaces), "uftp", "bittorrent" or "http".
func PeerByName(s string) (Peer, error) {
	switch {
	case s == "treecast":
		return &Treecast{}, nil
	case strings.HasPrefix(s, "treecast:"):
		flags := strings.Fields(strings.TrimPrefix(s, "treecast:"))
		if len(flags) == 0 {
			return nil, fmt.Errorf("bench: peer %q: no flags after the colon", s)
		}
		return &Treecast{Flags: flags}, nil
	case s == "uftp":
		return &UFTP{}, nil
	case s == "bittorrent":
		return &BitTorrent{}, nil
	case s == "http":
		return &HTTP{}, nil
	}
	return nil, fmt.Errorf("bench: unknown peer %q (want treecast, treecast:FLAGS, uftp, bittorrent or http)", s)
}

// run runs a program inside host i to its end and returns its output.
func (e *Env) run(ctx context.Context, i int, label, name string, args ...string) (string, error) {
	p, err := e.exec(ctx, i, label, name, args...)
	if err != nil {
		return "", err
	}
	err = p.wait(ctx)
	if err != nil {
		return p.output(), fmt.Errorf("%s: %w; log %s:\n%s", p.name, err, p.log, p.tail())
	}
	return p.output(), nil
}

// waitAll waits until every process has printed a line containing substr.
func waitAll(ctx context.Context, ps []*proc, substr string) error {
	for _, p := range ps {
		if _, err := p.waitLine(ctx, substr); err != nil {
			return err
		}
	}
	return nil
}

// linkOrCopy makes dst a hard link to src (a copy if linking fails, e.g. across devices).
func linkOrCopy(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if os.Link(src, dst) == nil {
		return nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// poll calls cond every interval until it returns true, an error, or ctx ends.
func poll(ctx context.Context, interval time.Duration, what string, cond func() (bool, error)) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, context.Cause(ctx))
		}
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}
