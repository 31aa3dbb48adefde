package channel

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/treecast/treecast/node/membership"
	"github.com/treecast/treecast/node/store"
)

// Channel catch-up: an agent subscribed to a channel whose latest version it does not hold
// fetches it, in the background, from a nearby holder.

// ErrCatchup is wrapped by the error of a catch-up that no holder could serve; the error
// names the channel, the version and each holder's failure.
var ErrCatchup = errors.New("channel: catch-up failed")

// Catch-up timing: the loop scans the table every catchupScan (and at once when the table
// changes); a failed catch-up is retried after catchupRetryMin, doubling up to catchupRetryMax.
const (
	catchupScan     = time.Second
	catchupRetryMin = time.Second
	catchupRetryMax = time.Minute
)

// catchupRetry is the backoff of one channel whose catch-up failed.
type catchupRetry struct {
	attempts int
	next     time.Time
	err      error
}

// Catchup is what the catch-up loop needs of the agent.
type Catchup struct {
	// Members lists the cluster as gossip sees it.
	Members func() []membership.Member
	// Has reports whether the store holds the object digest complete.
	Has func(digest string) bool
	// Receiving reports whether a push of digest to this agent is in progress (catch-up then
	// waits for its outcome instead of fetching the same chunks).
	Receiving func(digest string) bool
	// Fetch fetches the object digest from member m into the store, verified, resuming what
	// is staged; the object becomes visible only when whole. It calls received with the
	// bytes of every chunk it receives.
	Fetch func(ctx context.Context, m membership.Member, digest string, received func(bytes int)) error
	// CaughtUp, when not nil, is called after a catch-up made version v held here.
	CaughtUp func(v Version)
}

// Run is the agent's catch-up loop: every second, and at once when the table changes, it
// saves the table if it changed and catches up the subscribed channels whose latest version
// the store lacks. It returns when ctx ends. One catch-up runs at a time, so catch-up costs
// at most one object's transfer at once.
func (c *Table) Run(ctx context.Context, deps Catchup) {
	tick := time.NewTicker(catchupScan)
	defer tick.Stop()
	for {
		c.pass(ctx, deps)
		if err := c.Save(); err != nil {
			c.log.Warn("channel table", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-c.wake:
		}
	}
}

// catchupPass updates what this agent holds of each channel and catches up, one after the
// other, the subscribed channels whose latest version it lacks (skipping those in backoff or
// being pushed to it right now). Cost per pass without catch-up: two stats per channel.
func (c *Table) pass(ctx context.Context, deps Catchup) {
	c.scans.Inc()
	c.mu.Lock()
	var todo []Version
	latest := sortedVersions(c.latest)
	c.mu.Unlock()
	for _, v := range latest {
		if v.Deleted {
			continue
		}
		if deps.Has(v.Digest) {
			c.SetHeld(v)
			continue
		}
		c.mu.Lock()
		if h, ok := c.held[v.Channel]; ok {
			if !deps.Has(h.Digest) { // removed since
				delete(c.held, v.Channel)
				c.dirty = true
			}
		}
		r := c.retry[v.Channel]
		due := c.subscribed[v.Channel] && (r == nil || !time.Now().Before(r.next))
		c.mu.Unlock()
		if due && !deps.Receiving(v.Digest) {
			todo = append(todo, v)
		}
	}
	for _, v := range todo {
		if ctx.Err() != nil {
			return
		}
		start := time.Now()
		err := c.catchUp(ctx, deps, v)
		if ctx.Err() != nil {
			return // closing: the partial object stays staged for the next run
		}
		if err != nil {
			c.catchups.WithLabelValues("failed").Inc()
			c.mu.Lock()
			if cur, ok := c.latest[v.Channel]; ok && cur.Same(v) { // not superseded meanwhile
				r := c.retry[v.Channel]
				if r == nil {
					r = &catchupRetry{}
					c.retry[v.Channel] = r
				}
				r.attempts++
				r.err = err
				r.next = time.Now().Add(min(catchupRetryMin<<min(r.attempts-1, 16), catchupRetryMax))
			}
			c.mu.Unlock()
			c.log.Warn("channel catch-up", "channel", v.Channel, "version", v.Version, "digest", v.Digest, "err", err)
			continue
		}
		c.catchups.WithLabelValues("ok").Inc()
		c.SetHeld(v)
		if deps.CaughtUp != nil {
			deps.CaughtUp(v)
		}
		c.log.Info("channel caught up", "channel", v.Channel, "version", v.Version, "digest", v.Digest, "elapsed", time.Since(start))
	}
}

// SetHeld records that this agent holds version v complete.
func (c *Table) SetHeld(v Version) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.retry, v.Channel)
	if h, ok := c.held[v.Channel]; !ok || v.newer(h) {
		c.held[v.Channel] = v
		c.dirty = true
	}
	if c.addHistLocked(v) {
		c.dirty = true
	}
}

// catchUp fetches version v from the first holder, in order of [Table.holders], that serves
// it whole. Holders that do not hold it answer NotFound at once; a holder that fails mid-way
// leaves the verified chunks staged, and the next one sends only the others.
func (c *Table) catchUp(ctx context.Context, deps Catchup, v Version) error {
	hs := c.holders(deps.Members(), v)
	if len(hs) == 0 {
		return fmt.Errorf("%w: %s version %d (%s): no alive member to fetch from", ErrCatchup, v.Channel, v.Version, v.Digest)
	}
	var errs []error
	for _, m := range hs {
		err := deps.Fetch(ctx, m, v.Digest, func(n int) { c.catchupByte.Add(float64(n)) })
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		errs = append(errs, fmt.Errorf("from %s: %w", m.Name, err))
		if errors.Is(err, store.ErrDiskFull) {
			break // no holder helps
		}
	}
	return fmt.Errorf("%w: %s version %d (%s): %w", ErrCatchup, v.Channel, v.Version, v.Digest, errors.Join(errs...))
}

// holders orders the alive members (self excluded) to fetch v from: nearest first (same
// rack, then pod, then dc, by the labels), and within a level the likely holders (the
// publisher and the channel's subscribers) first, in random order to spread the load of many
// agents catching up at once. Cost: O(members log members).
func (c *Table) holders(members []membership.Member, v Version) []membership.Member {
	type cand struct {
		m          membership.Member
		tier, like int
		r          uint64
	}
	var cs []cand
	for _, m := range members {
		if m.Name == c.cfg.Self || m.State != "alive" || m.Addr == "" {
			continue
		}
		like := 1
		if m.Name == v.Origin {
			like = 0
		}
		for _, ch := range m.Channels {
			if ch == v.Channel {
				like = 0
			}
		}
		cs = append(cs, cand{m: m, tier: localityTier(c.cfg.Labels, m.Labels), like: like, r: rand.Uint64()})
	}
	sort.Slice(cs, func(i, j int) bool {
		x, y := cs[i], cs[j]
		if x.tier != y.tier {
			return x.tier < y.tier
		}
		if x.like != y.like {
			return x.like < y.like
		}
		return x.r < y.r
	})
	out := make([]membership.Member, len(cs))
	for i, x := range cs {
		out[i] = x.m
	}
	return out
}

// localityTier is 0 for the same rack, 1 the same pod, 2 the same dc, 3 otherwise: the number
// of levels below the deepest one (dc, pod, rack) on which both agents' labels agree, from
// the top. Missing labels never agree.
func localityTier(self, other map[string]string) int {
	tier := 3
	for _, k := range []string{"dc", "pod", "rack"} {
		if self[k] == "" || self[k] != other[k] {
			break
		}
		tier--
	}
	return tier
}
