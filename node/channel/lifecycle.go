package channel

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/treecast/treecast/node/membership"
)

// Channel lifecycle: versions reserved before a publish's push (so receivers know the version
// they commit), deletion (a signed tombstone that supersedes the channel's versions and
// spreads like a publish), and the history of versions an agent held (for retention).

// ErrUnknownChannel: no version of the channel is known and no member subscribes to it.
var ErrUnknownChannel = errors.New("channel: unknown channel")

// maxHist bounds the versions of one channel remembered for retention.
const maxHist = 1024

// Next returns the version number a publish of channel started at start gets (see Publish).
func (c *Table) Next(channel string, start time.Time) uint64 {
	return c.next(channel, "", c.cfg.Self, 0, start).Version
}

// PublishVersion records a publish as Publish does, with the version number reserved by
// Next before the push (one more than the newest known if another publish overtook it).
func (c *Table) PublishVersion(channel, digest, by string, size int64, version uint64, members []membership.Member) (Version, error) {
	v := c.next(channel, digest, c.cfg.Self, size, time.Unix(0, int64(min(version, 1<<62))))
	v.By = by
	return c.record(v, members)
}

// Latest returns the channel's latest version, false when none is known or it was deleted.
func (c *Table) Latest(channel string) (Version, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.latest[channel]
	return v, ok && !v.Deleted
}

// Delete deletes channel on every agent: a tombstone version newer than every version known,
// signed and spread as Publish spreads versions. Agents then drop the channel from their
// status and stop catching it up; its objects are no longer pinned as a channel's latest. A
// later publish revives the channel. Errors: ErrUnknownChannel when no version is known.
func (c *Table) Delete(channel, by string, members []membership.Member) (Version, error) {
	if _, ok := c.Latest(channel); !ok {
		return Version{}, fmt.Errorf("%w: %s", ErrUnknownChannel, channel)
	}
	v := c.next(channel, "", c.cfg.Self, 0, time.Now())
	v.By, v.Deleted = by, true
	return c.record(v, members)
}

// IsLatest reports whether digest is some channel's latest version (a pinned object).
// Cost: O(channels).
func (c *Table) IsLatest(digest string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range c.latest {
		if !v.Deleted && v.Digest == digest {
			return true
		}
	}
	return false
}

// addHistLocked adds v to its channel's history, newest last, and reports a change.
func (c *Table) addHistLocked(v Version) bool {
	h := c.hist[v.Channel]
	for _, x := range h {
		if x.Digest == v.Digest {
			return false
		}
	}
	h = append(h, v)
	sort.Slice(h, func(i, j int) bool { return h[j].newer(h[i]) })
	if len(h) > maxHist {
		h = h[len(h)-maxHist:]
	}
	c.hist[v.Channel] = h
	return true
}

func (c *Table) histLocked() []Version {
	var out []Version
	for _, h := range c.hist {
		out = append(out, h...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Channel != out[j].Channel {
			return out[i].Channel < out[j].Channel
		}
		return out[j].newer(out[i])
	})
	return out
}

// Retained reports whether digest is one of the keep newest versions this agent held of
// some channel. Cost: O(channels × keep).
func (c *Table) Retained(digest string, keep int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.hist {
		for _, v := range h[max(len(h)-keep, 0):] {
			if v.Digest == digest {
				return true
			}
		}
	}
	return false
}

// Retire forgets, for every channel, the versions held beyond the keep newest, and returns
// them (the agent removes their objects). keep < 1 retires nothing. Cost: O(history).
func (c *Table) Retire(keep int) []Version {
	if keep < 1 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Version
	for ch, h := range c.hist {
		if len(h) <= keep {
			continue
		}
		out = append(out, h[:len(h)-keep]...)
		c.hist[ch] = append([]Version(nil), h[len(h)-keep:]...)
		c.dirty = true
	}
	return out
}
