package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"time"

	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// Channel catch-up: an agent subscribed to a channel whose latest version it does not hold
// fetches it, in the background, from a nearby holder.

// ErrCatchup is wrapped by the error of a catch-up that no holder could serve; the error
// names the channel, the version and each holder's failure.
var ErrCatchup = errors.New("node: channel catch-up failed")

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

// catchupLoop is the agent's catch-up goroutine (owned: Close cancels a.ctx and waits). One
// catch-up runs at a time, so catch-up costs at most one object's transfer at once.
func (a *Agent) catchupLoop() {
	tick := time.NewTicker(catchupScan)
	defer tick.Stop()
	for {
		a.catchupPass(a.ctx)
		if err := a.chans.save(); err != nil {
			a.log.Warn("channel table", "err", err)
		}
		select {
		case <-a.ctx.Done():
			return
		case <-tick.C:
		case <-a.chans.wake:
		}
	}
}

// catchupPass updates what this agent holds of each channel and catches up, one after the
// other, the subscribed channels whose latest version it lacks (skipping those in backoff or
// being pushed to it right now). Cost per pass without catch-up: two stats per channel.
func (a *Agent) catchupPass(ctx context.Context) {
	c := a.chans
	c.scans.Inc()
	c.mu.Lock()
	var todo []ChannelVersion
	latest := sortedVersions(c.latest)
	c.mu.Unlock()
	for _, v := range latest {
		if _, err := a.store.Stat(v.Digest); err == nil {
			c.setHeld(v)
			continue
		}
		c.mu.Lock()
		if h, ok := c.held[v.Channel]; ok {
			if _, err := a.store.Stat(h.Digest); err != nil { // removed since
				delete(c.held, v.Channel)
				c.dirty = true
			}
		}
		r := c.retry[v.Channel]
		due := c.subscribed[v.Channel] && (r == nil || !time.Now().Before(r.next))
		c.mu.Unlock()
		if due && !a.receiving(v.Digest) {
			todo = append(todo, v)
		}
	}
	for _, v := range todo {
		if ctx.Err() != nil {
			return
		}
		start := time.Now()
		err := a.catchUp(ctx, v)
		if ctx.Err() != nil {
			return // closing: the partial object stays staged for the next run
		}
		if err != nil {
			c.catchups.WithLabelValues("failed").Inc()
			c.mu.Lock()
			if cur, ok := c.latest[v.Channel]; ok && cur == v { // not superseded meanwhile
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
			a.log.Warn("channel catch-up", "channel", v.Channel, "version", v.Version, "digest", v.Digest, "err", err)
			continue
		}
		c.catchups.WithLabelValues("ok").Inc()
		c.setHeld(v)
		a.log.Info("channel caught up", "channel", v.Channel, "version", v.Version, "digest", v.Digest, "elapsed", time.Since(start))
	}
}

// setHeld records that this agent holds version v complete.
func (c *channels) setHeld(v ChannelVersion) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.retry, v.Channel)
	if h, ok := c.held[v.Channel]; !ok || v.newer(h) {
		c.held[v.Channel] = v
		c.dirty = true
	}
}

// receiving reports whether a push of digest to this agent is in progress (catch-up then
// waits for its outcome instead of fetching the same chunks).
func (a *Agent) receiving(digest string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range a.transfers {
		if t.man.Digest() == digest {
			return true
		}
	}
	return false
}

// catchUp fetches version v from the first holder, in order of [Agent.holders], that serves
// it whole. Holders that do not hold it answer NotFound at once; a holder that fails mid-way
// leaves the verified chunks staged, and the next one sends only the others.
func (a *Agent) catchUp(ctx context.Context, v ChannelVersion) error {
	hs := a.holders(v)
	if len(hs) == 0 {
		return fmt.Errorf("%w: %s version %d (%s): no alive member to fetch from", ErrCatchup, v.Channel, v.Version, v.Digest)
	}
	var errs []error
	for _, m := range hs {
		err := a.fetchObject(ctx, m, v)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		errs = append(errs, fmt.Errorf("from %s: %w", m.Name, err))
		if errors.Is(err, ErrDiskFull) {
			break // no holder helps
		}
	}
	return fmt.Errorf("%w: %s version %d (%s): %w", ErrCatchup, v.Channel, v.Version, v.Digest, errors.Join(errs...))
}

// holders orders the alive members (self excluded) to fetch v from: nearest first (same
// rack, then pod, then dc, by the labels), and within a level the likely holders (the
// publisher and the channel's subscribers) first, in random order to spread the load of many
// agents catching up at once. Cost: O(members log members).
func (a *Agent) holders(v ChannelVersion) []Member {
	type cand struct {
		m          Member
		tier, like int
		r          uint64
	}
	var cs []cand
	for _, m := range a.Members() {
		if m.Name == a.cfg.Name || m.State != "alive" || m.Addr == "" {
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
		cs = append(cs, cand{m: m, tier: localityTier(a.cfg.Labels, m.Labels), like: like, r: rand.Uint64()})
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
	out := make([]Member, len(cs))
	for i, c := range cs {
		out[i] = c.m
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

// fetchObject fetches version v from member m with the Fetch RPC: first the manifest (which
// must name v's digest), then, in one stream, the chunks this agent's store does not hold
// yet; each is verified against the manifest as it is written, and the object is committed
// (visible) only when whole. Memory: one chunk plus the gRPC stream window. A holder that
// gossip declares dead cuts the stream at once.
func (a *Agent) fetchObject(ctx context.Context, m Member, v ChannelVersion) error {
	cc, err := a.conn(m.Addr)
	if err != nil {
		return err
	}
	ctx, stop := a.watchMember(ctx, m.Name)
	defer stop()
	client := pb.NewAgentClient(cc)
	// The manifest alone: an empty range.
	st, err := client.Fetch(ctx, &pb.FetchRequest{Digest: v.Digest, Ranges: []*pb.ChunkRange{{}}})
	if err != nil {
		return err
	}
	first, err := st.Recv()
	if err != nil {
		return err
	}
	man, err := manifestFor(first.GetManifest())
	if err != nil {
		return err
	}
	if man.Digest() != v.Digest {
		return fmt.Errorf("%w: asked for %s, got the manifest of %s", ErrManifest, v.Digest, man.Digest())
	}
	part, err := a.store.Begin(man)
	if err != nil {
		return fmt.Errorf("node: begin %s: %w", v.Digest, err)
	}
	defer part.Close() // keeps the verified chunks staged when the fetch fails
	n := man.NumChunks()
	have := newBitmap(n)
	missing := n
	for _, i := range part.Held() {
		if i >= 0 && i < n && !bitGet(have, i) {
			bitSet(have, i)
			missing--
		}
	}
	if missing > 0 {
		var ranges []*pb.ChunkRange
		for i := 0; i < n; i++ {
			if bitGet(have, i) {
				continue
			}
			j := i
			for j < n && !bitGet(have, j) {
				j++
			}
			ranges = append(ranges, &pb.ChunkRange{Start: uint64(i), End: uint64(j)})
			i = j
		}
		st, err := client.Fetch(ctx, &pb.FetchRequest{Digest: v.Digest, Ranges: ranges})
		if err != nil {
			return err
		}
		if _, err := st.Recv(); err != nil { // the manifest again
			return err
		}
		for {
			msg, err := st.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("node: fetch %s: %d chunks missing: %w", v.Digest, missing, err)
			}
			ch := msg.GetChunk()
			if ch == nil || ch.GetIndex() >= uint64(n) {
				return fmt.Errorf("%w: fetch of %s answered %v", ErrBadHeader, v.Digest, msg.Msg)
			}
			i := int(ch.GetIndex())
			if err := part.WriteChunk(i, ch.GetData()); err != nil {
				return fmt.Errorf("node: chunk %d of %s: %w", i, v.Digest, err)
			}
			a.m.bytesIn.Add(float64(len(ch.GetData())))
			a.chans.catchupByte.Add(float64(len(ch.GetData())))
			if !bitGet(have, i) {
				bitSet(have, i)
				missing--
			}
		}
		if missing > 0 {
			return fmt.Errorf("%w: %s served %s without %d of its %d chunks", ErrTruncated, m.Name, v.Digest, missing, n)
		}
	}
	if err := part.Commit(); err != nil {
		return fmt.Errorf("node: commit %s: %w", v.Digest, err)
	}
	return nil
}
