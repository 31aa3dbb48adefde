package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/treecast/treecast/node/store"
	"github.com/treecast/treecast/node/transfer"
)

// Scrub: with Config.ScrubRate, the agent re-reads every stored chunk in the background, at
// most ScrubRate bytes per second, and checks it against the object's manifest. An object
// with a bad chunk (bit rot, a bad sector, a stray write) is taken out of the complete
// objects at once (store.Demote: it is no longer listed, served or pushed as complete), and
// the agent fetches the bad chunks again from the nearest member that holds the object, over
// Fetch, verified as any fetch; the other chunks are kept. An object no holder can serve
// stays partial (listed as such) and is retried at the next pass. Passes run one after the
// other, ScrubPause apart.

// DefaultScrubPause is the pause between scrub passes when Config.ScrubPause is 0.
const DefaultScrubPause = time.Minute

type scrubMetrics struct {
	bytes, bad, repaired, failed prometheus.Counter
}

func newScrubMetrics(reg prometheus.Registerer) *scrubMetrics {
	m := &scrubMetrics{
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "treecast_scrub_bytes_total",
			Help: "Stored chunk bytes re-read and re-verified by the background scrub."}),
		bad: prometheus.NewCounter(prometheus.CounterOpts{Name: "treecast_scrub_bad_chunks_total",
			Help: "Stored chunks the scrub found not matching their manifest hash."}),
		repaired: prometheus.NewCounter(prometheus.CounterOpts{Name: "treecast_scrub_repairs_total",
			Help: "Objects with bad chunks repaired by fetching those chunks from another holder."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "treecast_scrub_repair_failures_total",
			Help: "Repairs of scrubbed objects that no holder could serve (retried next pass)."}),
	}
	reg.MustRegister(m.bytes, m.bad, m.repaired, m.failed)
	return m
}

// scrubLoop runs scrub passes until the agent stops.
func (a *Agent) scrubLoop() {
	if a.cfg.ScrubRate <= 0 {
		return
	}
	lim := transfer.NewLimiter(a.cfg.ScrubRate)
	pause := a.cfg.ScrubPause
	if pause == 0 {
		pause = DefaultScrubPause
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
		}
		if err := a.scrubPass(a.ctx, func(n int) error { return transfer.WaitLimiter(a.ctx, lim, n) }); err != nil && a.ctx.Err() == nil {
			a.log.Warn("scrub pass", "err", err)
		}
		t.Reset(pause)
	}
}

// scrubPass verifies every chunk of every complete object once (wait paces the reads), and
// repairs the objects that were demoted, now or by an earlier pass.
func (a *Agent) scrubPass(ctx context.Context, wait func(n int) error) error {
	st := a.rawStore()
	infos, err := st.List()
	if err != nil {
		return err
	}
	for _, in := range infos {
		m := in.Manifest
		for i := range m.NumChunks() {
			if err := wait(m.ChunkLen(i)); err != nil {
				return err
			}
			data, err := st.ReadChunk(m.Digest, i)
			if errors.Is(err, store.ErrNotFound) {
				break // removed meanwhile
			}
			a.scrub.bytes.Add(float64(len(data)))
			if err == nil {
				err = m.VerifyChunk(i, data)
			}
			if err == nil {
				continue
			}
			a.scrub.bad.Inc()
			a.log.Warn("scrub: bad chunk; the object is taken out of service and repaired", "digest", m.Digest, "chunk", i, "err", err)
			if derr := st.Demote(m.Digest, []int{i}); derr != nil {
				a.log.Warn("scrub: demote", "digest", m.Digest, "err", derr)
			}
			a.mu.Lock()
			a.demoted[m.Digest] = true
			a.mu.Unlock()
			break // the resume re-verifies every other chunk
		}
	}
	a.mu.Lock()
	var todo []store.Digest
	for d := range a.demoted {
		todo = append(todo, d)
	}
	a.mu.Unlock()
	for _, d := range todo {
		err := a.repair(ctx, d.String())
		if ctx.Err() != nil {
			return ctx.Err()
		}
		a.mu.Lock()
		if err == nil || st.Has(d) {
			delete(a.demoted, d)
		}
		a.mu.Unlock()
		if err != nil {
			a.scrub.failed.Inc()
			a.log.Warn("scrub: repair failed; retried at the next pass", "digest", d, "err", err)
			continue
		}
		a.scrub.repaired.Inc()
	}
	return nil
}

// repair fetches what the staged object digest lacks from the nearest holder.
func (a *Agent) repair(ctx context.Context, digest string) error {
	var errs []error
	for _, m := range a.nearest() {
		err := a.fetchObject(ctx, m, digest, nil)
		if err == nil {
			a.log.Info("scrub: repaired", "digest", digest, "from", m.Name)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if status.Code(err) != codes.NotFound {
			errs = append(errs, fmt.Errorf("from %s: %w", m.Name, err))
		}
	}
	if len(errs) == 0 {
		return fmt.Errorf("%w: %s: no other member holds it", ErrUnknownDigest, digest)
	}
	return errors.Join(errs...)
}
