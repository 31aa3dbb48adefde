package sim

import (
	"context"
	"fmt"
	"math"

	"github.com/treecast/treecast/tree"
)

// OverlayEdge is one edge of an overlay tree: agent From forwards to agent To along Path, the
// arcs of the topology the edge is routed on, in order.
type OverlayEdge struct {
	From, To tree.NodeID
	Path     []tree.ArcID
}

// OverlayStripe is one tree of an overlay plan. Edges lists its edges with every edge after
// the edge that reaches its From (the source needs no edge).
type OverlayStripe struct {
	Edges []OverlayEdge
}

// OverlayPlan is the forest an overlay push runs down: the object's chunks are dealt to the
// stripes round-robin (chunk i goes down stripe i mod len(Stripes)), and every receiver must
// be reached once in every stripe.
type OverlayPlan struct {
	Stripes []OverlayStripe
}

// Planner returns the overlay plan for one transfer.
type Planner func(t Transfer) (OverlayPlan, error)

// ovEdge is the state of one overlay edge of an admitted transfer.
type ovEdge struct {
	tr       int32   // index of the transfer
	stripe   int32   // stripe number
	parent   int32   // edge that feeds From, or -1 when From is the source
	recv     int32   // index of To in the transfer's receivers, or -1 for a pure relay
	n        int32   // chunks of the stripe
	sent     int32   // chunks fully delivered to To
	active   bool    // a chunk is in flight
	rem      float64 // volume of the chunk in flight still to send
	path     []int32 // arcs
	children []int32 // edges that To feeds
}

// ovTransfer is the state of one admitted transfer.
type ovTransfer struct {
	t         Transfer
	stripes   int
	chunks    int     // chunks of the object
	chunkVol  float64 // volume of every chunk but the last
	lastVol   float64
	recvLeft  []int // per receiver: stripes not yet complete
	left      int   // receivers not yet complete
	recvTimes []float64
	doneAt    float64
	finished  bool
}

func (t *ovTransfer) chunkSize(stripe, j int32) float64 {
	if int(stripe)+int(j)*t.stripes == t.chunks-1 {
		return t.lastVol
	}
	return t.chunkVol
}

// overlayEngine simulates overlay pushes at chunk granularity in continuous time:
// pipelined store-and-forward (an agent forwards a chunk of a stripe as soon as it has
// received it, one chunk at a time per edge, in order), with every arc shared max-min fairly
// among the edges that have a chunk in flight on it.
type overlayEngine struct {
	g        *tree.Graph
	capacity []float64
	chunk    float64 // chunk volume
	plan     Planner
	progress func(done, total int)

	edges []ovEdge
	trs   []*ovTransfer
	mm    *maxMin

	// observe, when set (tests), sees every interval of constant rates.
	observe func(now, dt float64, paths [][]int32, rates []float64)
}

// run simulates the transfers (sorted by arrival) and returns the result so far when ctx is
// cancelled. Cost: O(E x (F + M)) where E is the number of distinct chunk-completion
// instants, F the edges in flight and M the cost of a max-min recomputation, which happens
// only when the set of edges in flight changes.
func (e *overlayEngine) run(ctx context.Context, transfers []Transfer, res *Result) error {
	e.mm = newMaxMin(e.capacity)
	var (
		now     float64
		next    int // next transfer to admit
		active  []int32
		paths   [][]int32
		rates   []float64
		dirty   = true
		done    int
		events  int
		bw      float64
		arcLoad = map[int32]float64{}
	)
	activate := func(ei int32) {
		ed := &e.edges[ei]
		if ed.active || ed.sent >= ed.n {
			return
		}
		if ed.parent >= 0 && e.edges[ed.parent].sent <= ed.sent {
			return
		}
		ed.active = true
		ed.rem = e.trs[ed.tr].chunkSize(ed.stripe, ed.sent)
		active = append(active, ei)
		dirty = true
	}
	finishReceiver := func(tr *ovTransfer, r int32) {
		tr.recvLeft[r]--
		if tr.recvLeft[r] > 0 {
			return
		}
		tr.recvTimes[r] = now - float64(tr.t.Arrival)
		tr.left--
		if tr.left == 0 {
			tr.finished = true
			tr.doneAt = now
			done++
			if e.progress != nil {
				e.progress(done, len(transfers))
			}
		}
	}
	for done < len(transfers) {
		if events++; events&1023 == 0 && ctx.Err() != nil {
			break
		}
		// Admit the transfers arriving now.
		for next < len(transfers) && float64(transfers[next].Arrival) <= now {
			first, err := e.admit(transfers[next], arcLoad, &bw, res)
			if err != nil {
				return err
			}
			for ei := first; ei < int32(len(e.edges)); ei++ {
				if e.edges[ei].parent < 0 {
					activate(ei)
				}
			}
			if tr := e.trs[len(e.trs)-1]; tr.left == 0 { // degenerate: nothing to send
				tr.finished, tr.doneAt = true, now
				done++
			}
			next++
		}
		if dirty {
			paths = paths[:0]
			for _, ei := range active {
				paths = append(paths, e.edges[ei].path)
			}
			if cap(rates) < len(paths) {
				rates = make([]float64, len(paths), 2*len(paths))
			}
			rates = rates[:len(paths)]
			e.mm.rates(paths, rates)
			dirty = false
		}
		// The next event: a chunk finishing, or an arrival.
		dt := math.Inf(1)
		for i, ei := range active {
			dt = min(dt, e.edges[ei].rem/rates[i])
		}
		if next < len(transfers) {
			dt = min(dt, float64(transfers[next].Arrival)-now)
		}
		if math.IsInf(dt, 1) {
			return fmt.Errorf("%w: overlay plans leave %d transfers unfinished with nothing in flight", ErrBadScheme, len(transfers)-done)
		}
		if e.observe != nil && len(active) > 0 {
			e.observe(now, dt, paths, rates)
		}
		now += dt
		var finished []int32
		for i, ei := range active {
			ed := &e.edges[ei]
			if math.IsInf(rates[i], 1) {
				ed.rem = 0
			} else {
				ed.rem -= rates[i] * dt
			}
			if ed.rem <= 1e-9*e.chunk {
				finished = append(finished, ei)
			}
		}
		if len(finished) == 0 {
			continue
		}
		for _, ei := range finished {
			ed := &e.edges[ei]
			ed.active = false
			ed.sent++
			tr := e.trs[ed.tr]
			if ed.sent == ed.n && ed.recv >= 0 {
				finishReceiver(tr, ed.recv)
			}
		}
		// Rebuild the list in flight: drop finished edges, then start the next chunk on each
		// finished edge and on the edges its receiver feeds.
		kept := active[:0]
		for _, ei := range active {
			if e.edges[ei].active {
				kept = append(kept, ei)
			}
		}
		active = kept
		dirty = true
		for _, ei := range finished {
			activate(ei)
			for _, c := range e.edges[ei].children {
				activate(c)
			}
		}
	}
	res.TotalBandwidth = bw
	for _, tr := range e.trs {
		if tr.finished {
			res.TCT = append(res.TCT, tr.doneAt-float64(tr.t.Arrival))
			res.ReceiverTimes = append(res.ReceiverTimes, tr.recvTimes)
		}
	}
	return nil
}

// admit adds the edges of transfer t's plan and returns the index of its first edge.
func (e *overlayEngine) admit(t Transfer, arcLoad map[int32]float64, bw *float64, res *Result) (int32, error) {
	plan, err := e.plan(t)
	if err != nil {
		return 0, fmt.Errorf("sim: plan for transfer %d: %w", t.ID, err)
	}
	if len(plan.Stripes) == 0 {
		return 0, fmt.Errorf("%w: plan for transfer %d has no stripes", ErrBadScheme, t.ID)
	}
	chunks := max(1, int(math.Ceil(t.Volume/e.chunk-1e-9)))
	tr := &ovTransfer{t: t, stripes: len(plan.Stripes), chunks: chunks, chunkVol: math.Min(e.chunk, t.Volume),
		lastVol: t.Volume - float64(chunks-1)*math.Min(e.chunk, t.Volume)}
	tr.recvLeft = make([]int, len(t.Dsts))
	tr.recvTimes = make([]float64, len(t.Dsts))
	recvIdx := make(map[tree.NodeID]int32, len(t.Dsts))
	for i, d := range t.Dsts {
		recvIdx[d] = int32(i)
	}
	ti := int32(len(e.trs))
	e.trs = append(e.trs, tr)
	first := int32(len(e.edges))
	clear(arcLoad)
	for s, st := range plan.Stripes {
		n := int32(0)
		if s < chunks {
			n = int32((chunks - s + len(plan.Stripes) - 1) / len(plan.Stripes))
		}
		vol := 0.0
		for j := range n {
			vol += tr.chunkSize(int32(s), j)
		}
		inEdge := map[tree.NodeID]int32{}
		for k, oe := range st.Edges {
			parent := int32(-1)
			if oe.From != t.Src {
				p, ok := inEdge[oe.From]
				if !ok {
					return 0, fmt.Errorf("%w: transfer %d stripe %d edge %d leaves %s before any edge reaches it",
						ErrBadScheme, t.ID, s, k, e.g.NodeName(oe.From))
				}
				parent = p
			}
			if _, dup := inEdge[oe.To]; dup || oe.To == t.Src {
				return 0, fmt.Errorf("%w: transfer %d stripe %d reaches %s twice", ErrBadScheme, t.ID, s, e.g.NodeName(oe.To))
			}
			ei := int32(len(e.edges))
			inEdge[oe.To] = ei
			path := make([]int32, len(oe.Path))
			for i, a := range oe.Path {
				path[i] = int32(a)
				arcLoad[int32(a)] += vol
			}
			*bw += vol * float64(len(path))
			r, isRecv := recvIdx[oe.To]
			if !isRecv {
				r = -1
			}
			e.edges = append(e.edges, ovEdge{tr: ti, stripe: int32(s), parent: parent, recv: r, n: n, path: path})
			if parent >= 0 {
				e.edges[parent].children = append(e.edges[parent].children, ei)
			}
			if isRecv && n > 0 {
				tr.recvLeft[r]++
			}
		}
		if n > 0 {
			for _, d := range t.Dsts {
				if _, ok := inEdge[d]; !ok {
					return 0, fmt.Errorf("%w: transfer %d stripe %d does not reach receiver %s", ErrBadScheme, t.ID, s, e.g.NodeName(d))
				}
			}
		}
	}
	for _, load := range arcLoad {
		res.MaxCopies = max(res.MaxCopies, load/t.Volume)
	}
	tr.left = len(t.Dsts)
	return first, nil
}
