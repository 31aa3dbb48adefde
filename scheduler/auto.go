package scheduler

import (
	"math"
	"math/bits"
	"runtime"
	"sync"
	"time"

	"github.com/treecast/treecast/tree"
)

// Chunk sizes and the cost model of StrategyAuto.
const (
	// DefaultObjectSize is the object size assumed when Options.ObjectSize is 0 (1 GiB).
	DefaultObjectSize = 1 << 30
	// MinChunkSize and MaxAutoChunkSize bound the chunk sizes ChunkSizeFor chooses (64 KiB,
	// 4 MiB); MaxChunkSize bounds any chunk size (64 MiB).
	MinChunkSize     = 64 << 10
	MaxAutoChunkSize = 4 << 20
	MaxChunkSize     = 64 << 20
	// MaxAutoChunks is the most chunks ChunkSizeFor cuts an object into: larger objects get
	// chunks above MaxAutoChunkSize, which keeps the manifest (32 bytes a chunk) at 2 MiB.
	MaxAutoChunks = 1 << 16
	// FillShare is the share of the transfer time the pipeline fill may take when
	// ChunkSizeFor chooses: depth × stripes × frame <= object / FillShare.
	FillShare = 32
	// MinStripeChunks is the fewest chunks ChunkSizeFor gives each stripe when it can.
	// Chunks go to the stripes in turn, so the stripes' shares then differ by at most
	// 1/MinStripeChunks, and so do the copies on the arcs of the fuller stripes' relays.
	MinStripeChunks = 32
	// MinFrameSize and MaxFrameSize bound the frames a chunk is sent in (see FrameSizeFor).
	MinFrameSize = 32 << 10
	MaxFrameSize = 1 << 20
	// HopCost is the fixed cost of one overlay hop in [Prediction], beyond the latency of
	// its route: the time for a relay to receive, verify and pass a chunk's first frame on,
	// and the share of a failure's repair that grows with depth.
	HopCost = time.Millisecond
)

// FrameSizeFor returns the size of the frames a chunk of chunkSize bytes travels in: a
// sixteenth of the chunk within [MinFrameSize, MaxFrameSize]. A relay passes each frame on
// as it arrives (cut-through), so a frame, not a chunk, is a hop's pipeline fill; larger
// frames for larger chunks mean fewer writes and reads per byte.
func FrameSizeFor(chunkSize int) int {
	return min(max(chunkSize/16, MinFrameSize), MaxFrameSize)
}

// ChunkSizeFor returns the chunk size for an object of size bytes (DefaultObjectSize when
// 0) pushed down trees of the given depth and number of stripes. Relays pass chunks on frame
// by frame, so the chunk size does not set the pipeline fill (a frame per hop) below 1 MiB;
// a larger chunk costs fewer writes, hash calls and messages per byte. The choice is the
// largest power of two within [MinChunkSize, MaxAutoChunkSize] that gives every stripe at
// least MinStripeChunks chunks (stripes of equal shares) and keeps the fill, depth ×
// stripes × FrameSizeFor(chunk) (each stripe gets 1/stripes of a link), within
// 1/FillShare of the object unless frames are already at their smallest; larger when the
// object would otherwise have more than MaxAutoChunks chunks (up to MaxChunkSize). Cost O(1).
func ChunkSizeFor(size int64, depth, stripes int) int {
	if size <= 0 {
		size = DefaultObjectSize
	}
	depth, stripes = max(depth, 1), max(stripes, 1)
	fits := func(c int64) bool {
		if size/c < MinStripeChunks*int64(stripes) {
			return false
		}
		f := int64(FrameSizeFor(int(c)))
		return f == MinFrameSize || int64(depth)*int64(stripes)*f <= size/FillShare
	}
	c := int64(MaxAutoChunkSize)
	for c > MinChunkSize && !fits(c) {
		c /= 2
	}
	for c < MaxChunkSize && (size+c-1)/c > MaxAutoChunks {
		c *= 2
	}
	return int(c)
}

// DepthCap is the depth auto prefers to stay within for n receivers: 2⌈log2(n+1)⌉ + 4. A
// deeper plan fills its pipeline more slowly and loses more receivers when a relay fails.
func DepthCap(n int) int {
	return 2*bits.Len(uint(n)) + 4
}

// Prediction is the cost model auto ranks plans by.
type Prediction struct {
	// Seconds is the predicted time for every receiver to hold the object: the object over
	// the bottleneck (the slowest arc's rate divided by the copies it carries, in the
	// worst case), plus, for the deepest receiver, each hop's HopCost, route latency and
	// fill (stripes × frame / rate: relays pass a chunk on frame by frame).
	Seconds float64
	// Ideal is the object over the slowest arc's rate: Seconds / Ideal is the slowdown.
	Ideal float64
}

// Predict returns the plan's Prediction for an object of size bytes (DefaultObjectSize when
// 0). Cost O(sum of path lengths).
func (p *Plan) Predict(size int64) Prediction {
	if size <= 0 {
		size = DefaultObjectSize
	}
	g := p.Graph
	c := p.Copies()
	rate := math.Inf(1) // bytes/s of the slowest arc the plan uses
	worst := 0.0        // seconds to push the object over the busiest arc
	for a, v := range c.PerArc {
		if v == 0 {
			continue
		}
		r := g.Arc(tree.ArcID(a)).Capacity / 8
		rate = min(rate, r)
		worst = max(worst, float64(size)*v/r)
	}
	if math.IsInf(rate, 1) {
		return Prediction{}
	}
	// The deepest path: hops, each with its route's latency.
	hop := float64(len(p.Stripes)) * float64(FrameSizeFor(p.ChunkSize)) / rate
	deepest := 0.0
	at := make([]float64, g.NumNodes())
	for _, s := range p.Stripes {
		at[p.Source] = 0
		for _, e := range s.Edges {
			lat := 0.0
			for _, a := range e.Path {
				lat += g.Arc(a).Latency.Seconds()
			}
			t := at[e.From] + HopCost.Seconds() + lat + hop
			at[e.To] = t
			deepest = max(deepest, t)
		}
	}
	return Prediction{Seconds: worst + deepest, Ideal: float64(size) / rate}
}

// autoCandidate is one forest shape auto tries.
type autoCandidate struct{ stripes, budget int }

// buildAuto builds auto's candidates on pt and returns the best (see Build).
func buildAuto(pt *physTree, src tree.NodeID, recv []tree.NodeID, opts Options) *Plan {
	n := len(recv)
	chain := opts.Parity == 0 && opts.Stripes <= 1 && n <= DepthCap(n)
	stripes := []int{2, 4, 8, 16}
	if opts.Stripes > 0 {
		stripes = []int{opts.Stripes}
	}
	var shapes []autoCandidate
	for _, s := range stripes {
		if s > max(2, n) && opts.Stripes == 0 {
			continue // more trees than receivers: every tree but a few would be a star
		}
		t := s + opts.Parity
		budgets := []int{t, t + min(1, t/4), t + t/4} // at most 1.25 copies per tree's share
		if opts.Fanout > 0 {
			budgets = []int{opts.Fanout}
		}
		for i, b := range budgets {
			if b < 2 || i > 0 && b == budgets[i-1] || i == 2 && b == budgets[0] {
				continue
			}
			shapes = append(shapes, autoCandidate{s, b})
		}
	}
	if n > 1024 && opts.Stripes == 0 && opts.Fanout == 0 {
		// Large: the shapes that do best on large hierarchies, to keep planning fast.
		shapes = []autoCandidate{{8, 8 + opts.Parity + 1}, {8, 8 + opts.Parity + (8+opts.Parity)/4}, {4, 4 + opts.Parity + (4+opts.Parity)/4}}
	}
	// Plans within the depth cap whose receivers are interior in one data stripe at most
	// rank first, then plans within the cap; then the lowest predicted time.
	var best *Plan
	var bestCost float64
	bestRank := 0
	consider := func(p *Plan) {
		cost := p.Predict(opts.ObjectSize).Seconds
		rank := 0
		if p.Depth() <= DepthCap(n) {
			rank = 1
			if p.maxInterior() <= 1 {
				rank = 2
			}
		}
		if best == nil || rank > bestRank || rank == bestRank && cost < bestCost*(1-1e-9) {
			best, bestCost, bestRank = p, cost, rank
		}
	}
	if chain {
		consider(build(pt, src, recv, Options{Strategy: StrategyChain, Stripes: 1, ObjectSize: opts.ObjectSize, ChunkSize: opts.ChunkSize}))
	}
	// The shapes are planned in parallel, one goroutine per shape and at most GOMAXPROCS at
	// once, each on its own hierarchy and route arena (the physical tree is otherwise read
	// only); they are then considered in order, so the choice does not depend on timing.
	plans := make([]*Plan, len(shapes))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, sh := range shapes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			own := *pt
			own.arena = nil
			h := hierarchy(&own, src, recv, sh.stripes+opts.Parity)
			h.reset(sh.budget)
			plans[i] = buildForest(h, recv, Options{Strategy: StrategyForest, Stripes: sh.stripes, Parity: opts.Parity,
				Fanout: sh.budget, ObjectSize: opts.ObjectSize, ChunkSize: opts.ChunkSize})
		}()
	}
	wg.Wait()
	for _, p := range plans {
		consider(p)
	}
	best.Auto = true
	return best
}

// maxInterior returns the most data stripes in which one receiver forwards. Cost O(edges).
func (p *Plan) maxInterior() int {
	count := make([]int32, p.Graph.NumNodes())
	last := make([]int32, p.Graph.NumNodes()) // the last stripe counted for a node, plus one
	best := 0
	for s := range p.DataStripes {
		for _, e := range p.Stripes[s].Edges {
			if e.From != p.Source && last[e.From] != int32(s+1) {
				last[e.From] = int32(s + 1)
				count[e.From]++
				best = max(best, int(count[e.From]))
			}
		}
	}
	return best
}
