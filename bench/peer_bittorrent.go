package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// BitTorrent is a swarm: opentracker in the source, mktorrent making the torrent (256 KiB
// pieces), aria2c seeding from the source and aria2c downloading in every receiver, all
// started at once (DHT and local peer discovery off; peers learn of each other from the
// tracker and peer exchange). It is timed from the start of the swarm until every receiver
// completed its download (a hook, --on-bt-download-complete, prints a line when aria2c has
// verified every piece); receivers keep seeding until then. Debian packages
// aria2, opentracker and mktorrent.
type BitTorrent struct{}

// Name is "bittorrent (aria2c)".
func (b *BitTorrent) Name() string { return "bittorrent (aria2c)" }

// Tools are aria2c, opentracker and mktorrent.
func (b *BitTorrent) Tools() []Tool {
	return []Tool{{Binary: "aria2c", Package: "aria2"}, {Binary: "opentracker", Package: "opentracker"}, {Binary: "mktorrent", Package: "mktorrent"}}
}

const trackerPort = 6969

// Run starts the tracker, makes the torrent and runs the swarm once.
func (b *BitTorrent) Run(ctx context.Context, e *Env) (map[int]string, error) {
	hosts := e.Hosts()
	srcDir := filepath.Join(e.dir, "bt-src")
	src := filepath.Join(srcDir, "object")
	if err := linkOrCopy(e.object, src); err != nil {
		return nil, err
	}
	announce := fmt.Sprintf("http://%s/announce", net.JoinHostPort(hosts[0].Addr.String(), fmt.Sprint(trackerPort)))
	torrent := filepath.Join(e.dir, "object.torrent")
	if out, err := exec.CommandContext(ctx, "mktorrent", "-a", announce, "-l", "18", "-o", torrent, src).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mktorrent: %w: %s", err, lastLines(string(out), 3))
	}
	// Debian's opentracker serves whitelisted torrents only: list ours. It reads the list
	// after it has chrooted to -d (the run's directory), so the list is named from there.
	out, err := exec.CommandContext(ctx, "aria2c", "-S", torrent).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("aria2c -S: %w: %s", err, lastLines(string(out), 3))
	}
	_, hash, ok := strings.Cut(string(out), "Info Hash: ")
	if hash = firstLine(hash); !ok || len(hash) != 40 {
		return nil, fmt.Errorf("aria2c -S %s: no info hash in %q", torrent, lastLines(string(out), 5))
	}
	if err := os.WriteFile(filepath.Join(e.dir, "whitelist"), []byte(hash+"\n"), 0o644); err != nil {
		return nil, err
	}
	tracker, err := e.exec(ctx, 0, "opentracker", "opentracker", "-i", hosts[0].Addr.String(),
		"-p", fmt.Sprint(trackerPort), "-P", fmt.Sprint(trackerPort), "-d", e.dir, "-w", "/whitelist")
	if err != nil {
		return nil, err
	}
	if err := tracker.waitListening(ctx, "tcp", trackerPort); err != nil {
		return nil, err
	}
	// aria2c prints nothing when a download completes and seeding begins; a hook says so.
	hook := filepath.Join(e.dir, "bt-complete.sh")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\necho \"bench: download complete: $3\"\n"), 0o755); err != nil {
		return nil, err
	}
	common := []string{"--on-bt-download-complete=" + hook, "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false", "--disable-ipv6=true",
		"--seed-ratio=0.0", "--listen-port=6881", "--summary-interval=0", "--console-log-level=notice",
		"--enable-color=false", "--file-allocation=none", "--auto-file-renaming=false", "--allow-overwrite=true"}
	copies := map[int]string{}
	if err := e.Start(ctx); err != nil {
		return nil, err
	}
	if _, err := e.exec(ctx, 0, "aria2c", "aria2c", append(common, "--check-integrity=true", "--dir", srcDir, torrent)...); err != nil {
		return nil, err
	}
	var peers []*proc
	for i := 1; i < len(hosts); i++ {
		dir := filepath.Join(e.dir, "bt", hosts[i].Name)
		if err := mkdir(dir); err != nil {
			return nil, err
		}
		copies[i] = filepath.Join(dir, "object")
		p, err := e.exec(ctx, i, "aria2c", "aria2c", append(common, "--dir", dir, torrent)...)
		if err != nil {
			return copies, err
		}
		peers = append(peers, p)
	}
	werr := waitAll(ctx, peers, "bench: download complete")
	if err := e.Stop(ctx); err != nil && werr == nil {
		werr = err
	}
	if werr != nil && strings.Contains(werr.Error(), "exited") {
		return copies, fmt.Errorf("aria2c: %w", werr)
	}
	return copies, werr
}
