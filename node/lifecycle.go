package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/treecast/treecast/node/channel"
	"github.com/treecast/treecast/node/store"
	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// Lifecycle: objects leave a store by `treecast rm` ([Agent.Remove]), by quota eviction
// (least recently used first, see store.WithQuota), and by channel retention
// (Config.ChannelRetain); channels leave the cluster by [Agent.DeleteChannel]. An object
// that is some channel's latest version is pinned: eviction skips it and Remove refuses it
// unless forced; so are tagged objects, and, with retention, the retained versions.

// ErrPinned is wrapped when Remove refuses a channel's latest version (without force).
var ErrPinned = errors.New("node: object is pinned")

// lifecycleEvery is the period of the retention pass.
const lifecycleEvery = time.Second

// lifecycleMetrics count what left the store by itself.
type lifecycleMetrics struct {
	evicted, retired prometheus.Counter
}

func newLifecycleMetrics(reg prometheus.Registerer) *lifecycleMetrics {
	m := &lifecycleMetrics{
		evicted: prometheus.NewCounter(prometheus.CounterOpts{Name: "treecast_store_evictions_total",
			Help: "Objects evicted from the store to make room under its quota (least recently used first)."}),
		retired: prometheus.NewCounter(prometheus.CounterOpts{Name: "treecast_retention_removals_total",
			Help: "Objects removed because they fell out of their channel's retention (--channel-retain)."}),
	}
	reg.MustRegister(m.evicted, m.retired)
	return m
}

func (c *Config) validateLifecycle(bad func(string, ...any) error) error {
	if c.ChannelRetain < 0 {
		return bad("channel retain %d is negative", c.ChannelRetain)
	}
	if c.ScrubRate < 0 {
		return bad("scrub rate %d is negative", c.ScrubRate)
	}
	if c.HookTimeout < 0 {
		return bad("hook timeout %v is negative", c.HookTimeout)
	}
	for what, m := range map[string]map[string]string{"channel dir": c.ChannelDirs, "channel hook": c.ChannelHooks} {
		for ch, p := range m {
			if !channel.ValidName(ch) {
				return bad("%s %s=%s: channel %q is not a channel name", what, ch, p, ch)
			}
			if !filepath.IsAbs(p) {
				return bad("%s %s=%s: the path must be absolute", what, ch, p)
			}
		}
	}
	for ch, p := range c.ChannelDirs {
		if fi, err := os.Stat(filepath.Dir(p)); err != nil || !fi.IsDir() {
			return bad("channel dir %s=%s: its directory %s does not exist", ch, p, filepath.Dir(p))
		}
		if fi, err := os.Lstat(p); err == nil && !fi.Mode().IsRegular() {
			return bad("channel dir %s=%s: exists and is not a regular file", ch, p)
		}
	}
	return nil
}

// pinned reports whether eviction must keep d: a channel's latest version, or one of the
// retained versions of a channel.
func (a *Agent) pinned(d store.Digest) bool {
	s := d.String()
	return a.chans.IsLatest(s) || a.cfg.ChannelRetain > 0 && a.chans.Retained(s, a.cfg.ChannelRetain)
}

// lifecycle is the agent's retention loop: every lifecycleEvery, the versions of each channel
// beyond the ChannelRetain newest are removed from the store, unless tagged or pinned.
func (a *Agent) lifecycle() {
	if a.cfg.ChannelRetain < 1 {
		return
	}
	tick := time.NewTicker(lifecycleEvery)
	defer tick.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-tick.C:
		}
		for _, v := range a.chans.Retire(a.cfg.ChannelRetain) {
			d, err := store.ParseDigest(v.Digest)
			if err != nil || a.pinned(d) || a.rawStore().Tagged(d) {
				continue
			}
			if err := a.rawStore().Remove(d); err == nil {
				a.life.retired.Inc()
				a.log.Info("retention removed an old channel version", "channel", v.Channel, "version", v.Version, "digest", v.Digest)
			}
		}
	}
}

// RemoveResult is one agent's answer to a remove.
type RemoveResult struct {
	Node    string
	Digest  string
	Removed bool   // the agent held the object (complete or staged) and removed it
	Err     string // why it refused or failed
}

// RemoveObject deletes the object ref names (a digest, or a tag NAME:VERSION as each agent knows
// it) and every tag naming it: from this agent when target is empty, else from every alive
// agent the target selects (this one included when it matches), each asked over the Remove
// RPC (at most peerCallTimeout each). A channel's latest version is refused (ErrPinned)
// unless force; forced, an agent subscribed to the channel fetches it again by catch-up.
// An agent that does not hold the object answers Removed false without an error. Errors:
// ErrBadRef, and those of target selection; per-agent failures are in the results. With TLS,
// the other agents remove only with the operator's grant carried by ctx (WithRemoveGrant,
// made by SignRemove); without it each answers ErrNoGrant in its result.
func (a *Agent) RemoveObject(ctx context.Context, ref, target string, force bool) ([]RemoveResult, error) {
	if _, _, err := ParseRef(ref); err != nil {
		return nil, err
	}
	if target == "" {
		return []RemoveResult{a.removeLocal(ref, force)}, nil
	}
	names, err := selectTargets(a.Members(), target, "")
	if err != nil {
		return nil, err
	}
	byName := map[string]Member{}
	for _, m := range a.Members() {
		byName[m.Name] = m
	}
	var out []RemoveResult
	for _, n := range names {
		if n == a.cfg.Name {
			out = append(out, a.removeLocal(ref, force))
			continue
		}
		r := RemoveResult{Node: n}
		rs, err := a.removeAt(ctx, byName[n], ref, force)
		switch {
		case err != nil:
			r.Err = err.Error()
		case len(rs) == 1:
			r = rs[0]
			r.Node = n
		default:
			r.Err = fmt.Sprintf("answered %d results", len(rs))
		}
		out = append(out, r)
	}
	return out, nil
}

func (a *Agent) removeAt(ctx context.Context, m Member, ref string, force bool) ([]RemoveResult, error) {
	cc, err := a.conn(m.Name, m.Addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, peerCallTimeout)
	defer cancel()
	resp, err := pb.NewAgentClient(cc).Remove(ctx, &pb.RemoveRequest{Ref: ref, Force: force, Grant: removeGrantFrom(ctx)})
	if err != nil {
		return nil, err
	}
	var out []RemoveResult
	for _, r := range resp.GetResults() {
		out = append(out, RemoveResult{Node: r.GetNode(), Digest: r.GetDigest(), Removed: r.GetRemoved(), Err: r.GetError()})
	}
	return out, nil
}

// removeLocal removes ref from this agent's store.
func (a *Agent) removeLocal(ref string, force bool) RemoveResult {
	r := RemoveResult{Node: a.cfg.Name}
	digest, tag, err := ParseRef(ref)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	if tag != "" {
		t, ok := a.rawStore().LookupTag(tag)
		if !ok {
			return r // not known here: nothing to remove
		}
		digest = t.Digest.String()
	}
	r.Digest = digest
	d := mustDigest(digest)
	if a.chans.IsLatest(digest) && !force {
		r.Err = fmt.Sprintf("%v: %s is a channel's latest version (remove it with force)", ErrPinned, digest)
		return r
	}
	st := a.rawStore()
	errFull := st.Remove(d)
	staged, errStaged := st.RemoveStaged(d)
	_, errTags := st.Untag(d)
	r.Removed = errFull == nil || staged
	for _, e := range []error{errFull, errStaged, errTags} {
		if e != nil && !errors.Is(e, store.ErrNotFound) && r.Err == "" {
			r.Err = e.Error()
		}
	}
	if r.Removed {
		a.log.Info("object removed", "digest", digest, "ref", ref)
	}
	return r
}

// DeleteChannel deletes channel ch on every agent (see channel.Table.Delete): publishers only,
// as for a publish (Config.Publishers; by is the caller, "" this agent). Errors: ErrConfig
// for a bad or unknown channel, ErrForbidden.
func (a *Agent) DeleteChannel(ch, by string) (ChannelVersion, error) {
	if !channel.ValidName(ch) {
		return ChannelVersion{}, fmt.Errorf("%w: channel %q: must be a non-empty word", ErrConfig, ch)
	}
	if by == "" {
		by = a.cfg.Name
	}
	if err := a.mayPublish(by, ch); err != nil {
		return ChannelVersion{}, err
	}
	v, err := a.chans.Delete(ch, by, a.Members())
	if errors.Is(err, channel.ErrUnknownChannel) {
		return v, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err == nil {
		a.log.Info("channel deleted", "channel", ch, "version", v.Version, "by", by)
	}
	return v, err
}

// removeRPC serves the Remove RPC: a node may only remove on the agent it calls (the
// fan-out of an operator's remove); an operator may name a target.
func (a *Agent) removeRPC(ctx context.Context, req *pb.RemoveRequest, callerRole string) (*pb.RemoveResponse, error) {
	target := ""
	if callerRole == "node" {
		if err := a.checkRemoveGrant(req.GetGrant(), req.GetRef(), req.GetForce()); err != nil {
			return nil, status.Error(codes.PermissionDenied, err.Error())
		}
	}
	ctx = WithRemoveGrant(ctx, req.GetGrant())
	if req.GetTarget() != nil {
		if callerRole == "node" {
			return nil, status.Error(codes.PermissionDenied, "node: a node may only remove objects of the agent it calls")
		}
		var err error
		if target, err = targetString(req.GetTarget()); err != nil {
			return nil, statusErr(err)
		}
	}
	rs, err := a.RemoveObject(ctx, req.GetRef(), target, req.GetForce())
	if err != nil {
		return nil, statusErr(err)
	}
	out := &pb.RemoveResponse{}
	for _, r := range rs {
		out.Results = append(out.Results, &pb.RemoveResult{Node: r.Node, Digest: r.Digest, Removed: r.Removed, Error: r.Err})
	}
	return out, nil
}
