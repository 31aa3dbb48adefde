package transfer

import (
	"context"
	"fmt"
)

// Cut-through: a relay passes a chunk's frames on to a child as they arrive, instead of
// after the whole chunk arrived and was verified. A forwarder takes a chunk for cut-through
// only when it keeps up (its stream is open, its backlog sent, nothing queued or lagging, at
// most one other chunk being cut through) and the child does not hold the chunk; otherwise
// the chunk reaches it the ordinary way, verified, through its queue. The relay still verifies every
// chunk before it counts, stores or exposes it, and so does every child: a corrupt chunk cut
// through fails the child's verification, and the child fetches it again (from this relay,
// then the source). A chunk whose incoming stream breaks mid-way is abandoned: the forwarder
// moves on (the child discards the unfinished chunk when the next one starts) and sends it
// whole once it is held.

// maxCutPending is how many chunks a forwarder may have taken for cut-through at once: the one
// it is sending and the next, whose frames wait behind it. A child that keeps up then gets
// every chunk cut through, although the next chunk's first frame arrives here before the last
// frame of the one before has left.
const maxCutPending = 2

// offerCut offers the first frame of a chunk. It reports whether the forwarder took the
// chunk: then every later frame of it must be given with passCut, or the chunk given up with
// abortCut.
func (f *forwarder) offerCut(fr Frame) bool {
	f.lagMu.Lock()
	defer f.lagMu.Unlock()
	if !f.cutReady || f.cutPending >= maxCutPending || len(f.lagging) > 0 || len(f.queue) > 0 || bitGet(f.heldAt, fr.Index) {
		return false
	}
	select {
	case <-f.stopped:
		return false
	case <-f.finished:
		return false
	case <-f.aborted:
		return false
	default:
	}
	f.cutPending++
	f.cutIdx[fr.Index] = true
	fr.Buf.Ref()   // the forwarder's, dropped once sent
	f.frames <- fr // room: the channel holds the frames of maxCutPending chunks
	return true
}

// passCut gives the next frame of a chunk being cut through, taking a reference to its
// buffer. It never blocks: the frames channel holds the frames of maxCutPending chunks (of
// frames at least FrameSize; a frame that finds it full is dropped, and the child's stream
// then fails on the gap).
func (f *forwarder) passCut(fr Frame) {
	f.lagMu.Lock()
	defer f.lagMu.Unlock()
	if isClosed(f.stopped) { // drained: nobody would send or free it
		return
	}
	fr.Buf.Ref()
	select {
	case f.frames <- fr:
	default:
		fr.Buf.Free()
	}
}

// abortCut gives up chunk i's cut-through: its incoming stream ended mid-way. The chunk is
// then sent whole once verified (it goes through the queue again).
func (f *forwarder) abortCut(i int) {
	f.lagMu.Lock()
	delete(f.cutIdx, i)
	f.lagMu.Unlock()
	f.passCut(Frame{Index: i, abort: true})
}

// cutTaken reports whether verified chunk i was taken for cut-through (and forgets it): the
// forwarder sends it from the frames, not from the queue.
func (f *forwarder) cutTaken(i int) bool {
	f.lagMu.Lock()
	defer f.lagMu.Unlock()
	ok := f.cutIdx[i]
	delete(f.cutIdx, i)
	return ok
}

// cutMayStart marks the forwarder idle for cut-through once its stream is open and its
// backlog sent; held is the child's holding answer.
func (f *forwarder) cutMayStart(held []byte) {
	f.lagMu.Lock()
	f.heldAt = held
	f.cutReady = true
	f.lagMu.Unlock()
}

// sendCut sends the frames of the chunk being cut through, first and then each as it
// arrives, until its last frame (or it is given up).
func (f *forwarder) sendCut(ctx context.Context, up Upstream, first Frame) error {
	defer func() {
		f.lagMu.Lock()
		f.cutPending = max(f.cutPending-1, 0)
		f.lagMu.Unlock()
	}()
	fr := first
	for !fr.abort {
		err := f.sendCutFrame(ctx, up, fr)
		fr.Buf.Free()
		if err != nil {
			return fmt.Errorf("send chunk %d: %w", fr.Index, err)
		}
		f.e.m.BytesOut.Add(float64(len(fr.Data)))
		if !fr.More {
			bitSet(f.sentBits, fr.Index)
			f.sent++
			f.e.m.chunksOut.Inc()
			f.e.m.chunksCut.Inc()
			return nil
		}
		select {
		case fr = <-f.frames:
		case <-f.aborted:
			return errAborted
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// sendCutFrame sends one frame of a chunk being cut through, at the forwarder's pace. The
// caller keeps (and frees) its reference to the frame's buffer.
func (f *forwarder) sendCutFrame(ctx context.Context, up Upstream, fr Frame) error {
	f.e.hang()
	if err := f.e.waitRate(ctx, len(fr.Data)); err != nil {
		return err
	}
	if err := WaitLimiter(ctx, f.limiter, len(fr.Data)); err != nil {
		return err
	}
	out := Frame{Index: fr.Index, Offset: fr.Offset, Data: fr.Data, More: fr.More, Buf: fr.Buf}
	if f.e.cfg.Corrupt != nil && fr.Offset == 0 {
		out.Data, out.Buf = f.e.cfg.Corrupt(f.hdr.Child, fr.Index, fr.Data), nil
	}
	return f.sendTimed(func() error { return up.SendFrame(out) })
}

// sendWhole sends a chunk the forwarder holds as frames; buf, when set, holds data (the
// caller's reference, which the frames share).
func (f *forwarder) sendWhole(up Upstream, i int, data []byte, buf *Buf) error {
	fs := f.frameSize
	for off := 0; ; off += fs {
		end := min(off+fs, len(data))
		fr := Frame{Index: i, Offset: off, Data: data[off:end], More: end < len(data), Buf: buf}
		if err := f.sendTimed(func() error { return up.SendFrame(fr) }); err != nil {
			return err
		}
		if end == len(data) {
			return nil
		}
	}
}
