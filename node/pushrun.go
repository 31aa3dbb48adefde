package node

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// A push runs in rounds. The first round feeds every member the target matches that gossip
// sees alive; the others are recorded offline. After each round, every matched receiver
// without a verified copy that is alive again (it came back, or it failed and is still up)
// is fed in another round, at most maxTries times while it keeps failing, a little later
// each time. A following push (SubmitRequest.follow) then keeps looking, every second until
// its window ends, for matched members (new ones included) that come back, and feeds them.

// matchTargets resolves target against every member gossip knows: alive are the members
// that may be fed now, offline those the target matches that gossip does not see alive. Both
// are sorted, without self. A name list naming a member gossip never heard of is an error
// (wrapping ErrNoReceivers); so is a target matching no member at all.
func matchTargets(members []Member, target, self string) (alive, offline []string, err error) {
	all := make([]Member, len(members))
	for i, m := range members {
		m.State = "alive"
		all[i] = m
	}
	every, err := selectTargets(all, target, self)
	if err != nil {
		return nil, nil, err
	}
	alive, err = selectTargets(members, target, self)
	if err != nil && !errors.Is(err, ErrNoReceivers) {
		return nil, nil, err
	}
	up := map[string]bool{}
	for _, n := range alive {
		up[n] = true
	}
	for _, n := range every {
		if !up[n] {
			offline = append(offline, n)
		}
	}
	return alive, offline, nil
}

func isChannelTarget(t string) bool { return strings.HasPrefix(strings.TrimSpace(t), "channel:") }

// run runs the push's rounds to its end (the object is in the store).
func (r *pushRun) run() { r.runWith(nil) }

// runWith stores the object with storeFn first (an upload or an import), then runs the
// rounds. It returns when the push has ended, or when the agent stops (the push then stays
// running on disk and resumes at the next start).
func (r *pushRun) runWith(storeFn func(context.Context) (digest string, size int64, err error)) {
	a := r.m.a
	if storeFn != nil {
		digest, size, err := storeFn(r.ctx)
		if err != nil {
			if r.cancelledBy() != "" {
				r.finish(PushCancelled, "cancelled by "+r.cancelledBy()+" while the object was being stored")
				return
			}
			r.finish(PushFailed, err.Error())
			return
		}
		r.update(func(rec *pushRecord) { rec.Digest, rec.Size, rec.State = digest, size, PushRunning })
		a.log.Info("push object stored", "push", r.rec.ID, "digest", digest, "size", size)
	}
	var lastRound time.Time
	for {
		if r.ctx.Err() != nil {
			r.stopped()
			return
		}
		todo, wait := r.nextRound(lastRound)
		rec := r.snapshot()
		if wait > 0 {
			if !r.sleep(wait) {
				continue
			}
			continue
		}
		if len(todo) > 0 || rec.Round == 0 && isChannelTarget(rec.Target) {
			if err := r.round(todo); err != nil {
				if r.ctx.Err() != nil {
					continue
				}
				r.finish(PushFailed, err.Error())
				return
			}
			lastRound = time.Now()
			continue
		}
		if rec.Follow > 0 {
			if rec.FollowUntil.IsZero() {
				r.update(func(rec *pushRecord) { rec.FollowUntil, rec.State = time.Now().Add(rec.Follow), PushFollowing })
				continue
			}
			if time.Now().Before(rec.FollowUntil) {
				r.sleep(min(followPoll, time.Until(rec.FollowUntil)))
				continue
			}
		}
		r.finish(PushDone, "")
		return
	}
}

// sleep waits d or until the push's context ends; it reports whether d passed.
func (r *pushRun) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.ctx.Done():
		return false
	}
}

func (r *pushRun) cancelledBy() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cancelled
}

// stopped ends the push after its context ended: cancelled by an operator, or the agent is
// stopping (the push then stays running on disk, to resume).
func (r *pushRun) stopped() {
	if who := r.cancelledBy(); who != "" {
		r.finish(PushCancelled, "cancelled by "+who)
		return
	}
	r.m.a.log.Info("push interrupted by the agent's stop; it resumes when the agent starts again", "push", r.rec.ID)
}

// nextRound updates the receivers from the membership and returns who to feed now, or how
// long to wait before looking again (receivers that failed are retried after a pause).
func (r *pushRun) nextRound(last time.Time) (todo []string, wait time.Duration) {
	a := r.m.a
	rec := r.snapshot()
	alive, offline, err := matchTargets(a.Members(), rec.Target, a.cfg.Name)
	if err != nil {
		alive, offline = nil, nil
	}
	up := map[string]bool{}
	for _, n := range alive {
		up[n] = true
	}
	changed := false
	r.mu.Lock()
	addNew := r.rec.Round == 0 || r.rec.Follow > 0
	for _, n := range append(append([]string{}, alive...), offline...) {
		if _, ok := r.rec.Receivers[n]; !ok && addNew {
			r.rec.Receivers[n] = &recvRecord{Status: recvPending, Result: Result{Receiver: n}}
			changed = true
		}
	}
	retry := time.Duration(0)
	joining := !r.resumed.IsZero() && time.Since(r.resumed) < resumeGrace
	for n, x := range r.rec.Receivers {
		if x.Status == recvVerified {
			continue
		}
		if !up[n] && joining {
			r.mu.Unlock()
			return nil, followPoll
		}
		if !up[n] {
			if x.Status == recvPending {
				x.Status, x.Result.Err = recvOffline, "offline: gossip does not see this member alive"
				changed = true
			}
			continue
		}
		if x.Tries >= maxTries {
			continue
		}
		if x.Tries > 0 {
			retry = max(retry, time.Duration(x.Tries)*2*time.Second)
		}
		todo = append(todo, n)
	}
	if changed {
		if err := r.saveLocked(); err != nil {
			a.log.Warn("push record not saved", "push", r.rec.ID, "err", err)
		}
		r.notifyLocked()
	}
	r.mu.Unlock()
	sort.Strings(todo)
	if len(todo) > 0 && retry > 0 && !last.IsZero() {
		if w := time.Until(last.Add(retry)); w > 0 {
			return nil, min(w, followPoll)
		}
	}
	return todo, 0
}

// round feeds todo (the first round of a channel target publishes to the channel instead).
func (r *pushRun) round(todo []string) error {
	a := r.m.a
	var rec pushRecord
	r.update(func(x *pushRecord) {
		x.Round++
		rec = *x
	})
	opts := rec.Opts.options()
	opts.ID = rec.ID
	if rec.Round > 1 {
		opts.ID = fmt.Sprintf("%s-%d", rec.ID, rec.Round)
	}
	opts.Plan = func(p PlanInfo) { r.recordPlan(p) }
	opts.Progress = func(ev Event) { r.progress(ev) }
	a.log.Info("push round", "push", rec.ID, "transfer", opts.ID, "round", rec.Round, "receivers", strings.Join(todo, ","))
	obj := Object{Digest: rec.Digest}
	var rep Report
	var err error
	switch {
	case rec.Round == 1 && isChannelTarget(rec.Target):
		rep, err = a.Push(r.ctx, obj, rec.Target, opts)
	case rec.Round == 1 && opts.Channel != "":
		rep, err = a.publishTo(r.ctx, opts.Channel, obj, joinNames(todo), opts)
	default:
		// Later rounds feed members the first one missed; the version the first round
		// published reaches subscribers by catch-up, so they carry no channel.
		opts.Channel = ""
		rep, err = a.push(r.ctx, obj, joinNames(todo), opts)
	}
	if errors.Is(err, ErrNoReceivers) {
		r.sleep(followPoll) // gossip changed between the match and the plan: look again
		return nil
	}
	if err != nil {
		return err
	}
	stopping := r.ctx.Err() != nil
	r.update(func(x *pushRecord) {
		for _, res := range rep.Receivers {
			cur, ok := x.Receivers[res.Receiver]
			if !ok {
				cur = &recvRecord{}
				x.Receivers[res.Receiver] = cur
			}
			if res.OK {
				cur.Status, cur.Result = recvVerified, res
				cur.Tries++
			} else if !stopping {
				cur.Status, cur.Result = recvFailed, res
				cur.Tries++
			}
		}
	})
	for _, res := range rep.Receivers {
		if res.OK {
			a.log.Info("receiver verified", "push", rec.ID, "receiver", res.Receiver, "elapsed", res.Elapsed.Round(time.Millisecond))
		} else if !stopping {
			a.log.Warn("receiver failed", "push", rec.ID, "receiver", res.Receiver, "err", res.Err)
		}
	}
	return nil
}

// recordPlan keeps the first round's plan, listing every receiver of the push.
func (r *pushRun) recordPlan(p PlanInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.plan != nil {
		return
	}
	pe := planEventOf(p)
	pe.TransferId = r.rec.ID
	pe.Receivers = r.receiverNamesLocked()
	// The view needs the object's size, not its chunk hashes (up to 2 MiB, and the record is
	// rewritten at every change).
	m := pe.GetManifest()
	pe.Manifest = &pb.Manifest{Digest: m.GetDigest(), Size: m.GetSize(), ChunkSize: m.GetChunkSize()}
	r.plan = pe
	if b, err := proto.Marshal(pe); err == nil {
		r.rec.Plan = b
		_ = r.saveLocked()
	}
	r.notifyLocked()
}

func (r *pushRun) receiverNamesLocked() []string {
	names := make([]string, 0, len(r.rec.Receivers))
	for n := range r.rec.Receivers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// progress records a progress event of the current round.
func (r *pushRun) progress(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	x, ok := r.rec.Receivers[ev.Receiver]
	if !ok {
		return
	}
	r.total = uint64(max(ev.Total, 0))
	if ev.Final {
		if ev.OK {
			x.Status = recvVerified
			x.Result = Result{Receiver: ev.Receiver, OK: true, Elapsed: ev.Elapsed}
			r.held[ev.Receiver] = r.total
		} else if r.ctx.Err() == nil {
			x.Status = recvFailed
			x.Result = Result{Receiver: ev.Receiver, Err: ev.Err, Elapsed: ev.Elapsed}
		}
		// Saved at most every saveEvery here (the round's end saves every result): a push
		// to many receivers does not rewrite its record once per receiver.
		if time.Since(r.saved) >= saveEvery {
			_ = r.saveLocked()
		}
	} else {
		r.held[ev.Receiver] = uint64(max(ev.Held, 0))
	}
	r.notifyLocked()
}

// planEventOf converts a plan to its protocol event.
func planEventOf(p PlanInfo) *pb.PlanEvent {
	sm := p.Summary
	pe := &pb.PlanEvent{TransferId: p.Transfer, Manifest: p.manifest.Proto(), Receivers: p.Receivers, Plan: p.raw,
		Summary: &pb.PlanSummary{Strategy: string(sm.Strategy), Auto: sm.Auto, Stripes: uint32(sm.Stripes), Parity: uint32(sm.Parity),
			Receivers: uint32(sm.Receivers), Depth: uint32(sm.Depth), ChunkSize: uint32(sm.ChunkSize),
			MaxArcCopies: sm.MaxArcCopies, TotalCopies: sm.TotalCopies}}
	for _, e := range p.Edges {
		pe.Edges = append(pe.Edges, &pb.PlanEdge{Parent: e.Parent, Child: e.Child, Stripe: uint32(e.Stripe)})
	}
	return pe
}
