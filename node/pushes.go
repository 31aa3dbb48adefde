package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/treecast/treecast/node/store"
	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// Detached pushes: every push the Submit and Upload RPCs start is a run of the agent, not of
// the RPC. It has an id, runs in a goroutine the agent owns until every receiver has
// answered (or its follow window ends, or it is cancelled), and keeps a record in
// DATA/pushes/<id>.json, written atomically (temporary file, fsync, rename) at every state
// change and every receiver's result. A client that goes away (Ctrl-C, a dropped session)
// only stops watching; Watch reattaches. When the agent stops, running pushes stay running
// on disk, and the next start of the agent on the same data directory resumes them: each
// receiver that lacks a verified copy is sent the object again, and the engine sends it only
// the chunks it does not hold (the Push header exchange carries the receiver's holding).

// Push states.
const (
	PushStoring   = "storing"   // the object is being uploaded or imported
	PushRunning   = "running"   // receivers are being fed
	PushFollowing = "following" // the first round is over; members that come back are fed
	PushDone      = "done"      // every receiver has answered (see the results)
	PushCancelled = "cancelled" // cancelled by an operator
	PushFailed    = "failed"    // the push could not run (the error says why)
)

// Receiver statuses in a push record.
const (
	recvPending  = "pending"
	recvVerified = "verified"
	recvFailed   = "failed"
	recvOffline  = "offline"
)

const (
	pushesDir = "pushes"
	// keepPushes bounds the finished push records kept on disk and listed.
	keepPushes = 200
	// maxTries bounds the rounds one receiver is tried in while it stays alive and fails.
	maxTries = 3
	// followPoll is how often a following push looks for members that came back.
	followPoll = time.Second
	// saveEvery bounds how often receivers' results rewrite a push's record while a round
	// runs.
	saveEvery = time.Second
	// resumeGrace is how long a resumed push waits for its receivers to show up in gossip
	// (the restarted agent is joining again) before it counts them offline.
	resumeGrace = 15 * time.Second
)

// ErrUnknownPush is returned for a push id the agent does not know.
var ErrUnknownPush = errors.New("node: unknown push")

// ErrObjectChanged fails a push whose file changed while it was read: nothing is stored
// under the torn contents and nothing is pushed.
var ErrObjectChanged = errors.New("node: the object changed while it was read")

// pushOpts is the persisted part of PushOptions.
type pushOpts struct {
	Strategy  string `json:"strategy,omitempty"`
	Fanout    int    `json:"fanout,omitempty"`
	Stripes   int    `json:"stripes,omitempty"`
	Parity    int    `json:"parity,omitempty"`
	ChunkSize int    `json:"chunk_size,omitempty"`
	RateLimit int64  `json:"rate_limit,omitempty"`
	Publisher string `json:"publisher,omitempty"`
	Tag       string `json:"tag,omitempty"`
	Channel   string `json:"channel,omitempty"`
}

func (o pushOpts) options() PushOptions {
	return PushOptions{Strategy: o.Strategy, Fanout: o.Fanout, Stripes: o.Stripes, Parity: o.Parity, ChunkSize: o.ChunkSize,
		RateLimit: o.RateLimit, Publisher: o.Publisher, Tag: o.Tag, Channel: o.Channel}
}

func optsOf(o PushOptions) pushOpts {
	return pushOpts{Strategy: o.Strategy, Fanout: o.Fanout, Stripes: o.Stripes, Parity: o.Parity, ChunkSize: o.ChunkSize,
		RateLimit: o.RateLimit, Publisher: o.Publisher, Tag: o.Tag, Channel: o.Channel}
}

// recvRecord is one receiver of a push record.
type recvRecord struct {
	Status string `json:"status"`
	Result Result `json:"result"`
	Tries  int    `json:"tries,omitempty"`
}

// pushRecord is what DATA/pushes/<id>.json holds.
type pushRecord struct {
	ID          string                 `json:"id"`
	State       string                 `json:"state"`
	Error       string                 `json:"error,omitempty"`
	Source      string                 `json:"source,omitempty"` // what was pushed: a file name, "-", a path, a digest
	Digest      string                 `json:"digest,omitempty"`
	Size        int64                  `json:"size"`
	Target      string                 `json:"target"`
	Opts        pushOpts               `json:"opts"`
	Started     time.Time              `json:"started"`
	Ended       time.Time              `json:"ended,omitzero"`
	FollowUntil time.Time              `json:"follow_until,omitzero"`
	Follow      time.Duration          `json:"follow,omitempty"`
	Round       int                    `json:"round"`
	Receivers   map[string]*recvRecord `json:"receivers"`
	Plan        []byte                 `json:"plan,omitempty"` // the first round's PlanEvent, protobuf
}

// pushRun is one push of the agent: its record, its live progress and its watchers.
type pushRun struct {
	m      *pushManager
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	rec       pushRecord
	plan      *pb.PlanEvent
	held      map[string]uint64 // chunks held per receiver, in the current round
	total     uint64
	changed   chan struct{} // closed and replaced at every change
	cancelled string        // who cancelled, once cancelled
	resumed   time.Time     // when a push of an earlier run of the agent was resumed
	saved     time.Time     // when the record was last written
}

// pushManager holds the agent's pushes.
type pushManager struct {
	a   *Agent
	dir string

	mu   sync.Mutex
	runs map[string]*pushRun
}

func newPushManager(a *Agent) *pushManager {
	return &pushManager{a: a, dir: filepath.Join(a.cfg.DataDir, pushesDir), runs: map[string]*pushRun{}}
}

// newRun registers a new push in state storing (or running when the digest is known).
func (m *pushManager) newRun(rec pushRecord) (*pushRun, error) {
	if err := os.MkdirAll(m.dir, 0o755); err != nil {
		return nil, fmt.Errorf("node: pushes: %w", err)
	}
	if rec.ID == "" {
		rec.ID = newTransferID()
	}
	if rec.Receivers == nil {
		rec.Receivers = map[string]*recvRecord{}
	}
	if rec.Started.IsZero() {
		rec.Started = time.Now()
	}
	r := &pushRun{m: m, rec: rec, held: map[string]uint64{}, changed: make(chan struct{})}
	r.ctx, r.cancel = context.WithCancel(m.a.ctx)
	if len(rec.Plan) > 0 {
		pe := &pb.PlanEvent{}
		if proto.Unmarshal(rec.Plan, pe) == nil {
			r.plan = pe
		}
	}
	m.mu.Lock()
	m.runs[rec.ID] = r
	m.mu.Unlock()
	r.mu.Lock()
	err := r.saveLocked()
	r.mu.Unlock()
	if err != nil {
		m.mu.Lock()
		delete(m.runs, rec.ID)
		m.mu.Unlock()
		r.cancel()
		return nil, err
	}
	return r, nil
}

// get returns the push called id.
func (m *pushManager) get(id string) (*pushRun, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.runs[id]; ok {
		return r, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownPush, id)
}

// list returns up to limit pushes, newest first.
func (m *pushManager) list(limit int) []*pushRun {
	m.mu.Lock()
	out := make([]*pushRun, 0, len(m.runs))
	for _, r := range m.runs {
		out = append(out, r)
	}
	m.mu.Unlock()
	started := make(map[*pushRun]time.Time, len(out))
	for _, r := range out {
		r.mu.Lock()
		started[r] = r.rec.Started
		r.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := started[out[i]], started[out[j]]
		if !a.Equal(b) {
			return a.After(b)
		}
		return out[i].rec.ID > out[j].rec.ID
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// load reads the records of DATA/pushes, drops the oldest finished ones past keepPushes,
// and resumes the pushes that were running when the agent stopped. A push that was still
// storing cannot resume (its client's upload is gone): it fails.
func (m *pushManager) load() error {
	ents, err := os.ReadDir(m.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("node: pushes: %w", err)
	}
	var recs []pushRecord
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(m.dir, e.Name()))
		if err != nil {
			return fmt.Errorf("node: pushes: %w", err)
		}
		var rec pushRecord
		if err := json.Unmarshal(b, &rec); err != nil || rec.ID+".json" != e.Name() {
			m.a.log.Warn("ignoring an unreadable push record", "file", e.Name(), "err", err)
			continue
		}
		recs = append(recs, rec)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Started.After(recs[j].Started) })
	finished := 0
	for _, rec := range recs {
		active := rec.State == PushRunning || rec.State == PushFollowing || rec.State == PushStoring
		if !active {
			if finished++; finished > keepPushes {
				_ = os.Remove(filepath.Join(m.dir, rec.ID+".json"))
				continue
			}
		}
		if rec.State == PushStoring {
			rec.State, rec.Error, rec.Ended = PushFailed, "the agent stopped while the object was being stored", time.Now()
		}
		r, err := m.newRun(rec)
		if err != nil {
			return err
		}
		if rec.State == PushRunning || rec.State == PushFollowing {
			r.resumed = time.Now()
			m.a.log.Info("resuming push", "push", rec.ID, "digest", rec.Digest, "target", rec.Target, "round", rec.Round)
			m.a.goFunc(r.run)
		}
	}
	return nil
}

// prune forgets the oldest finished pushes past keepPushes, and removes their records.
func (m *pushManager) prune() {
	finished := 0
	for _, r := range m.list(0) {
		r.mu.Lock()
		st, id := r.rec.State, r.rec.ID
		r.mu.Unlock()
		if !ended(st) {
			continue
		}
		if finished++; finished > keepPushes {
			m.mu.Lock()
			delete(m.runs, id)
			m.mu.Unlock()
			_ = os.Remove(filepath.Join(m.dir, id+".json"))
		}
	}
}

// snapshot returns a copy of the record.
func (r *pushRun) snapshot() pushRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.rec
	rec.Receivers = make(map[string]*recvRecord, len(r.rec.Receivers))
	for k, v := range r.rec.Receivers {
		c := *v
		rec.Receivers[k] = &c
	}
	return rec
}

// notifyLocked wakes the watchers.
func (r *pushRun) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// saveLocked writes the record atomically. Cost: one small file write and fsync.
func (r *pushRun) saveLocked() error {
	b, err := json.Marshal(&r.rec)
	if err != nil {
		return err
	}
	if err := store.WriteFileAtomic(filepath.Join(r.m.dir, r.rec.ID+".json"), b); err != nil {
		return fmt.Errorf("node: push record %s: %w", r.rec.ID, err)
	}
	r.saved = time.Now()
	return nil
}

// update changes the record under the lock, saves it and wakes the watchers.
func (r *pushRun) update(f func(*pushRecord)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.rec)
	if err := r.saveLocked(); err != nil {
		r.m.a.log.Warn("push record not saved", "push", r.rec.ID, "err", err)
	}
	r.notifyLocked()
}

// finish ends the push in state (done, cancelled or failed).
func (r *pushRun) finish(state, errText string) {
	r.update(func(rec *pushRecord) {
		rec.State, rec.Error, rec.Ended = state, errText, time.Now()
		for _, x := range rec.Receivers {
			if x.Status == recvPending {
				x.Status, x.Result.Err = recvFailed, "the push ended before this receiver was fed: "+state
			}
		}
	})
	r.m.prune()
	rec := r.snapshot()
	v, f, o := countRecv(rec)
	r.m.a.log.Info("push ended", "push", rec.ID, "state", state, "digest", rec.Digest, "verified", v, "failed", f, "offline", o,
		"err", errText, "elapsed", rec.Ended.Sub(rec.Started).Round(time.Millisecond))
}

// cancelBy cancels the push; it returns the state the push is in afterwards.
func (r *pushRun) cancelBy(who string) string {
	r.mu.Lock()
	st := r.rec.State
	if st == PushDone || st == PushCancelled || st == PushFailed {
		r.mu.Unlock()
		return st
	}
	r.cancelled = who
	r.mu.Unlock()
	r.cancel()
	select {
	case <-r.doneCh():
	case <-time.After(10 * time.Second):
	}
	return r.snapshot().State
}

// doneCh returns a channel closed once the push has ended.
func (r *pushRun) doneCh() <-chan struct{} {
	c := make(chan struct{})
	go func() {
		defer close(c)
		for {
			r.mu.Lock()
			st, ch := r.rec.State, r.changed
			r.mu.Unlock()
			if st == PushDone || st == PushCancelled || st == PushFailed {
				return
			}
			select {
			case <-ch:
			case <-r.m.a.ctx.Done():
				return
			}
		}
	}()
	return c
}

func countRecv(rec pushRecord) (verified, failed, offline int) {
	for _, x := range rec.Receivers {
		switch x.Status {
		case recvVerified:
			verified++
		case recvOffline:
			offline++
		default:
			failed++
		}
	}
	return
}
