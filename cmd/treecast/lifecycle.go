package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/treecast/treecast/node"
	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// lifecycleFlags are the agent's flags for retention, scrub, channel directories and hooks.
type lifecycleFlags struct {
	retain      int
	scrubRate   string
	dirs, hooks []string
}

func (l *lifecycleFlags) register(cmd *cobra.Command, cfg *node.Config) {
	f := cmd.Flags()
	f.IntVar(&l.retain, "channel-retain", 0, "keep the N newest versions of each channel held here and remove older ones (0: keep all; older ones stay evictable under --store-quota)")
	f.StringVar(&l.scrubRate, "scrub-rate", "16MiB", "re-verify stored chunks in the background at this many bytes per second, repairing bad ones from other holders (0: no scrub)")
	f.StringSliceVar(&l.dirs, "channel-dir", nil, "CHANNEL=PATH: keep the channel's latest version at PATH (a file, replaced atomically), comma separated")
	f.StringSliceVar(&l.hooks, "channel-hook", nil, "CHANNEL=EXECUTABLE: run it after a new version of the channel is committed (env TREECAST_CHANNEL, TREECAST_DIGEST, TREECAST_VERSION, TREECAST_PATH); its exit status is in the push's report")
	f.DurationVar(&cfg.HookTimeout, "hook-timeout", node.DefaultHookTimeout, "kill a channel hook still running after this long")
}

func (l *lifecycleFlags) apply(cfg *node.Config) error {
	cfg.ChannelRetain = l.retain
	if l.scrubRate != "0" {
		r, err := node.ParseRate(l.scrubRate)
		if err != nil {
			return usageErr(fmt.Errorf("--scrub-rate: %w", err))
		}
		cfg.ScrubRate = r
	}
	var err error
	if cfg.ChannelDirs, err = channelPaths("--channel-dir", l.dirs); err != nil {
		return err
	}
	cfg.ChannelHooks, err = channelPaths("--channel-hook", l.hooks)
	return err
}

// channelPaths parses CHANNEL=PATH entries.
func channelPaths(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range kvs {
		ch, p, ok := strings.Cut(kv, "=")
		if !ok || ch == "" || p == "" {
			return nil, usageErr(fmt.Errorf("%s %q: want CHANNEL=PATH", flag, kv))
		}
		if _, dup := out[ch]; dup {
			return nil, usageErr(fmt.Errorf("%s: channel %s given twice", flag, ch))
		}
		out[ch] = p
	}
	return out, nil
}

// checkPushNames validates push's --tag and --channel before anything is sent.
func checkPushNames(tag, channel string) error {
	if tag != "" {
		if _, t, err := node.ParseRef(tag); err != nil || t == "" {
			return usageErr(fmt.Errorf("--tag %q: want NAME:VERSION (%v)", tag, err))
		}
	}
	if channel != "" && strings.ContainsAny(channel, " \t\n,=:") {
		return usageErr(fmt.Errorf("--channel %q: want a channel name (a word without spaces, ',', '=' or ':')", channel))
	}
	return nil
}

// refusedAsUsage turns an agent's InvalidArgument refusal (a bad tag, an unknown channel)
// into a usage error (exit 2).
func refusedAsUsage(err error) error {
	var ee *exitError
	if !errors.As(err, &ee) && status.Code(err) == codes.InvalidArgument {
		return usageErr(err)
	}
	return err
}

// since formats a timestamp's age for tables.
func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

// hookJSON is a receiver's channel hook outcome in push --json.
type hookJSON struct {
	Exit  int    `json:"exit"`
	Error string `json:"error,omitempty"`
}

func hookOf(r *pb.ReceiverResult) *hookJSON {
	h := r.GetHook()
	if h == nil {
		return nil
	}
	return &hookJSON{Exit: int(h.GetExitCode()), Error: h.GetError()}
}

// withHook is a receiver's error column: its error, and its hook's outcome when it ran one.
func withHook(r *pb.ReceiverResult) string {
	h := r.GetHook()
	if h == nil {
		return r.GetError()
	}
	s := fmt.Sprintf("hook exit %d", h.GetExitCode())
	if h.GetError() != "" {
		s += ": " + h.GetError()
	}
	if r.GetError() != "" {
		s = r.GetError() + "; " + s
	}
	return s
}
