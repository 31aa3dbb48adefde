package sim

import (
	"context"
	"fmt"
	"math"
	"slices"

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
	rate     float64 // max-min rate while active
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
// cancelled. Rates are recomputed only when the set of edges in flight changes, and then
// only for the edges that share arcs, directly or through other edges, with one that
// started or stopped: the others keep their max-min rates. Cost: O(E x F) for the events
// (E distinct chunk-completion instants, F edges in flight) plus O(C) per recomputation, C
// the size of the affected component.
func (e *overlayEngine) run(ctx context.Context, transfers []Transfer, res *Result) error {
	e.mm = newMaxMin(e.capacity)
	arcFlows := make([][]int32, len(e.capacity)) // edges in flight on each arc
	arcStamp := make([]int32, len(e.capacity))
	var edgeStamp []int32 // per edge: the last recomputation that visited it
	var (
		now      float64
		next     int // next transfer to admit
		active   []int32
		changed  []int32 // arcs whose set of edges in flight changed
		comp     []int32
		paths    [][]int32
		rates    []float64
		stamp    int32
		done     int
		events   int
		bw       float64
		arcLoad  = map[int32]float64{}
		finished []int32
	)
	canSend := func(ed *ovEdge) bool {
		return ed.sent < ed.n && (ed.parent < 0 || e.edges[ed.parent].sent > ed.sent)
	}
	activate := func(ei int32) {
		ed := &e.edges[ei]
		if ed.active || !canSend(ed) {
			return
		}
		ed.active = true
		ed.rem = e.trs[ed.tr].chunkSize(ed.stripe, ed.sent)
		active = append(active, ei)
		for _, a := range ed.path {
			arcFlows[a] = append(arcFlows[a], ei)
			changed = append(changed, a)
		}
		if len(ed.path) == 0 {
			ed.rate = math.Inf(1)
		}
	}
	stop := func(ei int32) {
		ed := &e.edges[ei]
		ed.active = false
		for _, a := range ed.path {
			fl := arcFlows[a]
			k := slices.Index(fl, ei)
			fl[k] = fl[len(fl)-1]
			arcFlows[a] = fl[:len(fl)-1]
			changed = append(changed, a)
		}
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
		if events++; events&63 == 0 && ctx.Err() != nil {
			break
		}
		// Admit the transfers arriving now.
		for next < len(transfers) && float64(transfers[next].Arrival) <= now {
			first, err := e.admit(transfers[next], arcLoad, &bw, res)
			if err != nil {
				return err
			}
			for len(edgeStamp) < len(e.edges) {
				edgeStamp = append(edgeStamp, 0)
			}
			for ei := first; ei < int32(len(e.edges)); ei++ {
				if e.edges[ei].parent < 0 {
					activate(ei)
				}
			}
			next++
		}
		if len(changed) > 0 {
			// The edges to re-rate: those connected to a changed arc through shared arcs. When
			// that component grows past half the edges in flight, re-rate them all instead.
			stamp++
			comp = comp[:0]
			limit := len(active) / 2
			for len(changed) > 0 && len(comp) <= limit {
				a := changed[len(changed)-1]
				changed = changed[:len(changed)-1]
				if arcStamp[a] == stamp {
					continue
				}
				arcStamp[a] = stamp
				for _, f := range arcFlows[a] {
					if edgeStamp[f] != stamp {
						edgeStamp[f] = stamp
						comp = append(comp, f)
						changed = append(changed, e.edges[f].path...)
					}
				}
			}
			if len(comp) > limit {
				comp = append(comp[:0], active...)
			}
			changed = changed[:0]
			paths = paths[:0]
			for _, f := range comp {
				paths = append(paths, e.edges[f].path)
			}
			rates = slices.Grow(rates[:0], len(paths))[:len(paths)]
			e.mm.rates(paths, rates)
			for i, f := range comp {
				e.edges[f].rate = rates[i]
			}
		}
		// The next event: a chunk finishing, or an arrival.
		dt := math.Inf(1)
		for _, ei := range active {
			dt = min(dt, e.edges[ei].rem/e.edges[ei].rate)
		}
		if next < len(transfers) {
			dt = min(dt, float64(transfers[next].Arrival)-now)
		}
		if math.IsInf(dt, 1) {
			return fmt.Errorf("%w: overlay plans leave %d transfers unfinished with nothing in flight", ErrBadScheme, len(transfers)-done)
		}
		if e.observe != nil && len(active) > 0 {
			paths, rates = paths[:0], rates[:0]
			for _, ei := range active {
				paths = append(paths, e.edges[ei].path)
				rates = append(rates, e.edges[ei].rate)
			}
			e.observe(now, dt, paths, rates)
		}
		now += dt
		finished = finished[:0]
		for _, ei := range active {
			ed := &e.edges[ei]
			if math.IsInf(ed.rate, 1) {
				ed.rem = 0
			} else {
				ed.rem -= ed.rate * dt
			}
			if ed.rem <= 1e-9*e.chunk {
				finished = append(finished, ei)
			}
		}
		if len(finished) == 0 {
			continue
		}
		// A finished edge goes on with its next chunk if its sender holds it, else stops.
		stopped := false
		for _, ei := range finished {
			ed := &e.edges[ei]
			ed.sent++
			if ed.sent == ed.n && ed.recv >= 0 {
				finishReceiver(e.trs[ed.tr], ed.recv)
			}
			if canSend(ed) {
				ed.rem = e.trs[ed.tr].chunkSize(ed.stripe, ed.sent)
			} else {
				stop(ei)
				stopped = true
			}
		}
		if stopped {
			kept := active[:0]
			for _, ei := range active {
				if e.edges[ei].active {
					kept = append(kept, ei)
				}
			}
			active = kept
		}
		// The receivers of finished edges now hold one more chunk to forward.
		for _, ei := range finished {
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
