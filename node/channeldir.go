package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/treecast/treecast/node/channel"
	"github.com/treecast/treecast/node/store"
	"github.com/treecast/treecast/node/transfer"
)

// Software updates: an agent with Config.ChannelDirs keeps a copy of a channel's latest
// version at a path, replaced atomically when a new version is committed here (by a push
// that publishes the channel, or by catch-up), and with Config.ChannelHooks runs a command
// afterwards. The hook's outcome of a push goes back to the source in this receiver's
// result; a catch-up's is logged.

// DefaultHookTimeout bounds a channel hook when Config.HookTimeout is 0.
const DefaultHookTimeout = time.Minute

// hookOutput bounds the bytes of a hook's output kept for the log.
const hookOutput = 4 << 10

// channelCommitted materialises and runs the hook of channel ch for a new version (digest,
// version) committed here, and returns the hook's outcome (nil when the agent has neither a
// directory nor a hook for ch). It runs one channel update at a time.
func (a *Agent) channelCommitted(ch, digest string, version uint64) *transfer.Hook {
	dir, hook := a.cfg.ChannelDirs[ch], a.cfg.ChannelHooks[ch]
	if dir == "" && hook == "" {
		return nil
	}
	a.updateMu.Lock()
	defer a.updateMu.Unlock()
	if dir != "" {
		if err := a.materialise(digest, dir); err != nil {
			a.log.Warn("channel directory not updated", "channel", ch, "digest", digest, "path", dir, "err", err)
			return &transfer.Hook{Exit: -1, Err: fmt.Sprintf("materialise %s at %s: %v", digest, dir, err)}
		}
		a.log.Info("channel materialised", "channel", ch, "digest", digest, "version", version, "path", dir)
	}
	a.mu.Lock()
	a.materialised[ch] = digest
	a.mu.Unlock()
	if hook == "" {
		return nil
	}
	h := a.runHook(hook, ch, digest, version, dir)
	return &h
}

// caughtUp is the catch-up's callback: a subscriber that fetched a channel's new version
// updates its directory and runs its hook (the outcome is logged).
func (a *Agent) caughtUp(v channel.Version) {
	a.mu.Lock()
	done := a.materialised[v.Channel] == v.Digest
	a.mu.Unlock()
	if done {
		return
	}
	if h := a.channelCommitted(v.Channel, v.Digest, v.Version); h != nil && (h.Exit != 0 || h.Err != "") {
		a.log.Warn("channel hook after catch-up", "channel", v.Channel, "digest", v.Digest, "exit", h.Exit, "err", h.Err)
	}
}

// materialise writes the complete object digest to path atomically (store.ExportTrusted:
// verified as it is written, fsynced, renamed over path). Cost: O(size) I/O and one SHA-256
// pass.
func (a *Agent) materialise(digest, path string) error {
	d, err := store.ParseDigest(digest)
	if err != nil {
		return err
	}
	return a.rawStore().ExportTrusted(d, path)
}

// runHook runs a channel hook with the version's details in its environment, for at most
// Config.HookTimeout (then it is killed), and returns its exit status.
func (a *Agent) runHook(hook, ch, digest string, version uint64, path string) transfer.Hook {
	timeout := a.cfg.HookTimeout
	if timeout == 0 {
		timeout = DefaultHookTimeout
	}
	ctx, cancel := context.WithTimeout(a.ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, hook)
	cmd.Env = append(os.Environ(), "TREECAST_CHANNEL="+ch, "TREECAST_DIGEST="+digest,
		"TREECAST_VERSION="+strconv.FormatUint(version, 10), "TREECAST_PATH="+path)
	out := &tailBuffer{max: hookOutput}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Run()
	h := transfer.Hook{Exit: -1}
	if cmd.ProcessState != nil {
		h.Exit = cmd.ProcessState.ExitCode()
	}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		h.Exit, h.Err = -1, fmt.Sprintf("hook %s killed after %v", hook, time.Since(start).Round(time.Millisecond))
	case err != nil && !errors.As(err, &exitErr):
		h.Err = fmt.Sprintf("hook %s: %v", hook, err)
	}
	a.log.Info("channel hook ran", "channel", ch, "digest", digest, "hook", hook, "exit", h.Exit, "err", h.Err,
		"elapsed", time.Since(start), "output", out.String())
	return h
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }
