package node

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/treecast/treecast/node/store"
)

// Known peers: the agent keeps the gossip addresses of the members it saw alive in
// DATA/peers.json (rewritten atomically when they change, looked at every few seconds), and
// Start joins them besides Config.Join. A seed restarted without --join thus finds its
// cluster again instead of running alone. Stale addresses only cost join attempts.

const (
	peersFile  = "peers.json"
	peersEvery = 5 * time.Second
	// maxPeers bounds the addresses kept (and so the joins tried at start).
	maxPeers = 64
)

// knownPeers reads the addresses saved by an earlier run of the agent (none when absent or
// unreadable).
func knownPeers(dataDir string) []string {
	b, err := os.ReadFile(filepath.Join(dataDir, peersFile))
	if err != nil {
		return nil
	}
	var addrs []string
	if json.Unmarshal(b, &addrs) != nil || len(addrs) > maxPeers {
		return nil
	}
	return addrs
}

// withKnownPeers returns join with the saved peers added (without duplicates).
func withKnownPeers(join []string, dataDir string) []string {
	out := slices.Clone(join)
	for _, p := range knownPeers(dataDir) {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// savePeers keeps DATA/peers.json up to date until the agent stops.
func (a *Agent) savePeers() {
	tick := time.NewTicker(peersEvery)
	defer tick.Stop()
	last := knownPeers(a.cfg.DataDir)
	for {
		var addrs []string
		for _, m := range a.Members() {
			if m.Name != a.cfg.Name && m.IsAlive() && m.GossipAddr != "" {
				addrs = append(addrs, m.GossipAddr)
			}
		}
		sort.Strings(addrs)
		if len(addrs) > maxPeers {
			addrs = addrs[:maxPeers]
		}
		if len(addrs) > 0 && !slices.Equal(addrs, last) {
			if b, err := json.Marshal(addrs); err == nil {
				if err := store.WriteFileAtomic(filepath.Join(a.cfg.DataDir, peersFile), b); err != nil {
					a.log.Warn("known peers not saved", "err", err)
				} else {
					last = addrs
				}
			}
		}
		select {
		case <-a.ctx.Done():
			return
		case <-tick.C:
		}
	}
}
