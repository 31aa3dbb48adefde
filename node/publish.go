package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/treecast/treecast/node/channel"
)

// Publish makes obj the latest version of channel and pushes it to the channel's alive
// subscribers (as [Agent.Push] with target "channel:NAME"). When the push has ended, the
// version is recorded in this agent's channel table and gossiped: subscribers that missed the
// push (down, joining later, or failed) fetch it in the background from a holder (see
// "Channels" in the package doc). With no alive subscriber the version is still recorded and
// the report has no receivers. The version is not recorded when the push could not start or
// ctx ended during it. Errors are those of Push, ErrConfig for a bad channel name, and
// ErrForbidden when Config.Publishers does not let opts.Publisher (or, when empty, this
// agent) publish the channel. With TLS the version is signed with the agent's key: every
// agent checks the signature, the signer's certificate and the policy before it takes a
// version.
func (a *Agent) Publish(ctx context.Context, ch string, obj Object, opts PushOptions) (Report, error) {
	if err := a.checkChannel(ch); err != nil {
		return Report{}, err
	}
	return a.publishTo(ctx, ch, obj, "channel:"+ch, opts)
}

// checkChannel refuses a push to channel ch that no member subscribes to and no version
// names (ErrConfig wrapping channel.ErrUnknownChannel): it would record a channel nobody
// asked for.
func (a *Agent) checkChannel(ch string) error {
	if !a.channelKnown(ch) {
		return fmt.Errorf("%w: %w: %q: no member subscribes to it and it has no version", ErrConfig, channel.ErrUnknownChannel, ch)
	}
	return nil
}

// publishTo pushes obj to target and publishes it as channel ch's latest version: receivers
// commit it knowing the version (their channel directories and hooks run), and the version is
// recorded and gossiped once the push has ended.
func (a *Agent) publishTo(ctx context.Context, ch string, obj Object, target string, opts PushOptions) (Report, error) {
	if !channel.ValidName(ch) {
		return Report{}, fmt.Errorf("%w: channel %q: must be a non-empty word", ErrConfig, ch)
	}
	if a.isClosed() {
		return Report{}, ErrClosed
	}
	by := opts.Publisher
	if by == "" {
		by = a.cfg.Name
	}
	if err := a.mayPublish(by, ch); err != nil {
		return Report{}, err
	}
	opts.Channel = ch
	opts.channelVersion = a.chans.Next(ch, time.Now())
	rep, err := a.push(ctx, obj, target, opts)
	if errors.Is(err, ErrNoReceivers) && target == "channel:"+ch { // no subscriber is up: store the object, record the version
		man, rerr := a.resolveObject(obj, opts.ChunkSize)
		if rerr != nil {
			return Report{}, rerr
		}
		rep, err = Report{Digest: man.Digest(), Size: man.Size(), Chunks: man.NumChunks()}, nil
	}
	if err != nil {
		return rep, err
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	v, err := a.chans.PublishVersion(ch, rep.Digest, by, rep.Size, opts.channelVersion, a.Members())
	if err != nil {
		return rep, err
	}
	a.live.channelVersion(v)
	a.log.Info("channel published", "channel", ch, "digest", v.Digest, "version", v.Version, "receivers", len(rep.Receivers))
	return rep, nil
}

// channelKnown reports whether a channel exists: this agent or a member (in any gossip state)
// subscribes to it, or a version of it is known.
func (a *Agent) channelKnown(ch string) bool {
	if _, ok := a.chans.Latest(ch); ok {
		return true
	}
	for _, c := range a.cfg.Channels {
		if c == ch {
			return true
		}
	}
	for _, m := range a.Members() {
		for _, c := range m.Channels {
			if c == ch {
				return true
			}
		}
	}
	return false
}

// Channels returns the channels this agent subscribes to or knows a version of, sorted by
// name, with the latest version it knows and the version it holds. Cost: O(channels), and a
// stat of the store for each channel whose latest version is not recorded as held.
func (a *Agent) Channels() []ChannelStatus {
	out := a.chans.Status()
	for i, cs := range out {
		if cs.Latest.Digest == "" || cs.Held.Same(cs.Latest) {
			continue
		}
		if _, err := a.store.Stat(cs.Latest.Digest); err == nil { // pushed here since the last scan
			a.chans.SetHeld(cs.Latest)
			out[i].Held, out[i].CatchupErr = cs.Latest, ""
		}
	}
	return out
}
