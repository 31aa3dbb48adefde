package sim

import (
	"context"
	"fmt"
	"slices"

	"github.com/treecast/treecast/tree"
)

// slotScheduler is what the slot engine needs from a scheduler: take a transfer at the start
// of its arrival slot, and advance one slot, telling what every transfer sent in it.
type slotScheduler interface {
	submit(t Transfer) error
	// step runs slot number slot and returns what was sent in it and the transfers the
	// scheduler reports complete.
	step(slot int) ([]slotSend, []slotDone, error)
	// idle reports whether no admitted transfer has volume left.
	idle() bool
}

// slotSend is volume sent in one slot by one transfer down one tree: every arc of Arcs
// carries Volume, and every receiver of Dsts (which the tree must span) receives it; nil Dsts
// means every receiver of the transfer the tree spans.
type slotSend struct {
	Transfer int
	Arcs     []tree.ArcID
	Dsts     []tree.NodeID
	Volume   float64
}

// slotDone is a transfer the scheduler reports complete at the start of slot Finish.
type slotDone struct {
	Transfer, Finish int
}

// netTransfer is the engine's own account of a transfer: what each receiver has received.
type netTransfer struct {
	t        Transfer
	got      []float64 // per receiver
	left     int       // receivers still short of the volume
	times    []float64
	arcVol   map[tree.ArcID]float64 // volume carried per arc, for max copies
	finished bool
	// confirmed is set when the scheduler reports the completion too.
	confirmed bool
	doneAt    float64
}

// slotEngine drives a scheduler slot by slot and checks what it reports against the
// topology: no arc above capacity in any slot, no receiver given more than the volume.
type slotEngine struct {
	g        *tree.Graph
	capacity []float64
	sched    slotScheduler
	progress func(done, total int)
	// observe, when set (tests), sees every slot's arc loads.
	observe func(slot int, load []float64)
}

// maxSlots bounds a run, so that a scheduler that stops serving cannot loop forever.
const maxSlots = 50_000_000

func (e *slotEngine) run(ctx context.Context, transfers []Transfer, res *Result) error {
	trs := make([]*netTransfer, len(transfers))
	load := make([]float64, len(e.capacity))
	var touched []tree.ArcID
	onTree := make([]bool, e.g.NumNodes())
	var finishedNow []*netTransfer
	next, done := 0, 0
	eps := 1e-9
	for slot := 0; done < len(transfers); slot++ {
		if slot&255 == 0 && ctx.Err() != nil {
			break
		}
		if slot > maxSlots {
			return fmt.Errorf("%w: %d transfers unfinished after %d slots", ErrScheduler, len(transfers)-done, maxSlots)
		}
		for next < len(transfers) && transfers[next].Arrival <= slot {
			t := transfers[next]
			if err := e.sched.submit(t); err != nil {
				return fmt.Errorf("sim: submit transfer %d: %w", t.ID, err)
			}
			trs[t.ID] = &netTransfer{t: t, got: make([]float64, len(t.Dsts)), left: len(t.Dsts),
				times: make([]float64, len(t.Dsts)), arcVol: map[tree.ArcID]float64{}}
			next++
		}
		if next < len(transfers) && e.sched.idle() {
			// Nothing in flight: jump to the next arrival.
			if a := transfers[next].Arrival; a > slot+1 {
				slot = a - 1
				continue
			}
		}
		sends, dones, err := e.sched.step(slot)
		if err != nil {
			return fmt.Errorf("sim: slot %d: %w", slot, err)
		}
		for _, s := range sends {
			if s.Volume <= 0 {
				continue
			}
			if s.Transfer < 0 || s.Transfer >= len(trs) || trs[s.Transfer] == nil {
				return fmt.Errorf("%w: slot %d: allocation for unknown transfer %d", ErrScheduler, slot, s.Transfer)
			}
			nt := trs[s.Transfer]
			if nt.finished {
				return fmt.Errorf("%w: slot %d: transfer %d sends %v after every receiver has its volume", ErrScheduler, slot, nt.t.ID, s.Volume)
			}
			for _, a := range s.Arcs {
				if load[a] == 0 {
					touched = append(touched, a)
				}
				load[a] += s.Volume
				nt.arcVol[a] += s.Volume
				onTree[e.g.Arc(a).To] = true
			}
			res.TotalBandwidth += s.Volume * float64(len(s.Arcs))
			for _, d := range s.Dsts {
				if !onTree[d] {
					return fmt.Errorf("%w: slot %d: transfer %d sends to %s down a tree that does not reach it", ErrScheduler, slot, nt.t.ID, e.g.NodeName(d))
				}
			}
			for i, d := range nt.t.Dsts {
				if !onTree[d] || (s.Dsts != nil && !slices.Contains(s.Dsts, d)) || nt.got[i] >= nt.t.Volume*(1-eps) {
					continue
				}
				nt.got[i] += s.Volume
				if nt.got[i] > nt.t.Volume*(1+eps)+eps {
					return fmt.Errorf("%w: slot %d: transfer %d receiver %s got %v of %v", ErrScheduler, slot, nt.t.ID,
						e.g.NodeName(d), nt.got[i], nt.t.Volume)
				}
				if nt.got[i] >= nt.t.Volume*(1-eps) {
					// Completes at the end of this slot.
					nt.times[i] = float64(slot + 1 - nt.t.Arrival)
					nt.left--
				}
			}
			for _, a := range s.Arcs {
				onTree[e.g.Arc(a).To] = false
			}
			if nt.left == 0 && !nt.finished {
				nt.finished = true
				nt.doneAt = float64(slot + 1)
				for _, v := range nt.arcVol {
					res.MaxCopies = max(res.MaxCopies, v/nt.t.Volume)
				}
				nt.arcVol = nil
				finishedNow = append(finishedNow, nt)
				done++
				if e.progress != nil {
					e.progress(done, len(transfers))
				}
			}
		}
		for _, d := range dones {
			if d.Transfer < 0 || d.Transfer >= len(trs) || trs[d.Transfer] == nil || !trs[d.Transfer].finished || d.Finish != slot+1 {
				return fmt.Errorf("%w: slot %d: scheduler reports transfer %d complete at slot %d, but its receivers do not all have its volume",
					ErrScheduler, slot, d.Transfer, d.Finish)
			}
			trs[d.Transfer].confirmed = true
		}
		for _, nt := range finishedNow {
			if !nt.confirmed {
				return fmt.Errorf("%w: slot %d: transfer %d delivered its volume to every receiver, but the scheduler does not report it complete",
					ErrScheduler, slot, nt.t.ID)
			}
		}
		finishedNow = finishedNow[:0]
		if e.observe != nil {
			e.observe(slot, load)
		}
		for _, a := range touched {
			if load[a] > e.capacity[a]*(1+eps) {
				return fmt.Errorf("%w: slot %d: arc %s->%s carries %v, capacity %v", ErrScheduler, slot,
					e.g.NodeName(e.g.Arc(a).From), e.g.NodeName(e.g.Arc(a).To), load[a], e.capacity[a])
			}
			load[a] = 0
		}
		touched = touched[:0]
		if next == len(transfers) && done < len(transfers) && e.sched.idle() {
			return fmt.Errorf("%w: scheduler idle with %d transfers unfinished", ErrScheduler, len(transfers)-done)
		}
	}
	for _, nt := range trs {
		if nt != nil && nt.finished {
			res.TCT = append(res.TCT, nt.doneAt-float64(nt.t.Arrival))
			res.ReceiverTimes = append(res.ReceiverTimes, nt.times)
		}
	}
	return nil
}
