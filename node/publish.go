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
	start := time.Now()
	rep, err := a.push(ctx, obj, "channel:"+ch, opts)
	if errors.Is(err, ErrNoReceivers) { // no subscriber is up: store the object, record the version
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
	v, err := a.chans.Publish(ch, rep.Digest, by, rep.Size, start, a.Members())
	if err != nil {
		return rep, err
	}
	a.live.channelVersion(v)
	a.log.Info("channel published", "channel", ch, "digest", v.Digest, "version", v.Version, "receivers", len(rep.Receivers))
	return rep, nil
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
