package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/treecast/treecast/node/store"
	"github.com/treecast/treecast/node/transfer"
	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// Names and pulls: tags (NAME:VERSION) name objects; [Agent.Pull] makes this agent hold an
// object named by digest or tag, fetching it from the cluster when its store lacks it.

// ErrUnknownTag is wrapped when no agent asked knows a tag.
var ErrUnknownTag = errors.New("node: unknown tag")

// ErrBadRef is wrapped by the error of a malformed digest or tag.
var ErrBadRef = errors.New("node: bad object reference")

// peerCallTimeout bounds each small call to a peer (a tag lookup, a manifest probe).
const peerCallTimeout = 3 * time.Second

// Tag is one tag as an agent knows it.
type Tag struct {
	Tag     string // NAME:VERSION
	Digest  string
	Created time.Time
	Held    bool // the agent holds the object complete
}

// Tags returns the tags this agent has recorded, sorted. Cost: O(tags), a stat per tag.
func (a *Agent) Tags() []Tag {
	var out []Tag
	for _, t := range a.rawStore().Tags() {
		out = append(out, Tag{Tag: t.Name, Digest: t.Digest.String(), Created: t.Created, Held: a.rawStore().Has(t.Digest)})
	}
	return out
}

// SetTag records tag (NAME:VERSION) as naming digest on this agent.
func (a *Agent) SetTag(tag, digest string) error {
	d, err := store.ParseDigest(digest)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadRef, err)
	}
	if err := a.rawStore().SetTag(tag, d); err != nil {
		return fmt.Errorf("%w: %w", ErrBadRef, err)
	}
	return nil
}

// ParseRef checks an object reference: a digest "sha256:<64 hex>" or a tag NAME:VERSION.
// It returns the digest or the tag (one of them empty), or an error wrapping [ErrBadRef]
// that says what is wrong.
func ParseRef(ref string) (digest, tag string, err error) {
	d, t, err := store.ParseRef(ref)
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrBadRef, err)
	}
	if t != "" {
		return "", t, nil
	}
	return d.String(), "", nil
}

// resolve turns a reference into a digest: a digest as is, a tag from this agent's table,
// else from the nearest member that knows it (asked one after the other, each call bounded
// by peerCallTimeout). Cost: O(members) calls in the worst case.
func (a *Agent) resolve(ctx context.Context, ref string) (string, error) {
	digest, tag, err := ParseRef(ref)
	if err != nil || digest != "" {
		return digest, err
	}
	if t, ok := a.rawStore().LookupTag(tag); ok {
		return t.Digest.String(), nil
	}
	var errs []error
	for _, m := range a.nearest() {
		d, err := a.askTag(ctx, m, tag)
		if err == nil {
			return d, nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if status.Code(err) != codes.NotFound {
			errs = append(errs, fmt.Errorf("%s: %w", m.Name, err))
		}
	}
	if len(errs) > 0 {
		return "", fmt.Errorf("%w: %s (no member that answered knows it; %w)", ErrUnknownTag, tag, errors.Join(errs...))
	}
	return "", fmt.Errorf("%w: %s (no member knows it)", ErrUnknownTag, tag)
}

// askTag asks member m what tag names.
func (a *Agent) askTag(ctx context.Context, m Member, tag string) (string, error) {
	cc, err := a.conn(m.Name, m.Addr)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, peerCallTimeout)
	defer cancel()
	resp, err := pb.NewAgentClient(cc).Tags(ctx, &pb.TagsRequest{Tag: tag})
	if err != nil {
		return "", err
	}
	for _, t := range resp.GetTags() {
		if t.GetTag() == tag {
			if _, err := store.ParseDigest(t.GetDigest()); err != nil {
				return "", fmt.Errorf("%w: %s answered %q for %s", ErrBadRef, m.Name, t.GetDigest(), tag)
			}
			return t.GetDigest(), nil
		}
	}
	return "", status.Errorf(codes.NotFound, "%s does not know %s", m.Name, tag)
}

// nearest returns the alive members but this agent, nearest first by their labels (same
// rack, then pod, then dc, then the others), in random order within a level (spreading the
// load of many agents pulling at once). Cost: O(members log members).
func (a *Agent) nearest() []Member {
	type cand struct {
		m    Member
		tier int
		r    uint64
	}
	var cs []cand
	for _, m := range a.Members() {
		if m.Name == a.cfg.Name || m.State != "alive" || m.Addr == "" {
			continue
		}
		tier := 3
		for _, k := range []string{"dc", "pod", "rack"} {
			if a.cfg.Labels[k] == "" || a.cfg.Labels[k] != m.Labels[k] {
				break
			}
			tier--
		}
		cs = append(cs, cand{m, tier, rand.Uint64()})
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].tier != cs[j].tier {
			return cs[i].tier < cs[j].tier
		}
		return cs[i].r < cs[j].r
	})
	out := make([]Member, len(cs))
	for i, c := range cs {
		out[i] = c.m
	}
	return out
}

// PullResult says where a pulled object came from.
type PullResult struct {
	Digest string
	Size   int64
	// Holder is the member it was fetched from ("" when this agent held it already).
	Holder string
	// BytesFetched counts the chunk bytes fetched; AlreadyHeld the chunks an earlier,
	// interrupted pull had staged (not fetched again).
	BytesFetched int64
	AlreadyHeld  int
}

// Pull makes this agent hold the object ref names (a digest, or a tag NAME:VERSION resolved
// as [Agent.Resolve] does). When the store lacks it, it is fetched from the nearest member
// that holds it (same rack first; members that do not hold it answer NotFound at once),
// every chunk verified against the manifest, only the chunks not already staged: a pull
// that was interrupted (ctx cancelled, the holder gone) keeps what it verified, and the next
// pull continues from there. The object becomes visible only when whole. A pulled tag is
// recorded here too. Errors: [ErrBadRef], [ErrUnknownTag], [ErrUnknownDigest] when no member
// serves it. Cost: O(members) probes in the worst case, then one object's transfer.
func (a *Agent) Pull(ctx context.Context, ref string) (PullResult, error) {
	digest, err := a.resolve(ctx, ref)
	if err != nil {
		return PullResult{}, err
	}
	_, tag, _ := ParseRef(ref)
	defer func() {
		if tag != "" && a.rawStore().Has(mustDigest(digest)) {
			if err := a.SetTag(tag, digest); err != nil {
				a.log.Warn("record pulled tag", "tag", tag, "err", err)
			}
		}
	}()
	if m, err := a.store.Stat(digest); err == nil {
		return PullResult{Digest: digest, Size: m.Size()}, nil
	}
	res := PullResult{Digest: digest}
	if in, err := a.rawStore().Stat(mustDigest(digest)); err == nil {
		res.AlreadyHeld = in.Held
	}
	var errs []error
	for _, m := range a.nearest() {
		err := a.fetchObject(ctx, m, digest, func(n int) { res.BytesFetched += int64(n) })
		if err == nil {
			res.Holder = m.Name
			if man, err := a.store.Stat(digest); err == nil {
				res.Size = man.Size()
			}
			a.log.Info("pulled", "digest", digest, "from", m.Name, "bytes", res.BytesFetched, "already_held_chunks", res.AlreadyHeld)
			return res, nil
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if status.Code(err) == codes.NotFound {
			continue
		}
		errs = append(errs, fmt.Errorf("from %s: %w", m.Name, err))
		if errors.Is(err, ErrDiskFull) || errors.Is(err, store.ErrQuota) {
			break
		}
	}
	if len(errs) > 0 {
		return res, fmt.Errorf("node: pull %s: %w", digest, errors.Join(errs...))
	}
	return res, fmt.Errorf("%w: %s: no member holds it", ErrUnknownDigest, digest)
}

// committed is the engine's Deps.Committed: a receiver that committed an object records the
// push's tag, and runs the channel's materialisation and hook when it has one.
func (a *Agent) committed(digest string, meta transfer.Meta) *transfer.Hook {
	if meta.Tag != "" {
		if err := a.SetTag(meta.Tag, digest); err != nil {
			a.log.Warn("record tag", "tag", meta.Tag, "digest", digest, "err", err)
		}
	}
	if meta.Channel == "" {
		return nil
	}
	return a.channelCommitted(meta.Channel, digest, meta.ChannelVersion)
}

func mustDigest(s string) store.Digest {
	d, _ := store.ParseDigest(s)
	return d
}

// rawStore is the agent's node/store Store.
func (a *Agent) rawStore() *store.Store { return a.store.(diskStore).s }
