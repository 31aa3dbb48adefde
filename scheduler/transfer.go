package scheduler

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/treecast/treecast/tree"
)

// Policy names how the scheduler picks the tree (or trees, or paths) of a transfer.
type Policy string

// The tree policies. "p2p-kN" (N >= 1) is also accepted: p2p spread over N shortest paths;
// so is "p2p-lp-kN": p2p-lp over N shortest paths.
const (
	// PolicyDCCast takes a minimum-weight Steiner tree (Takahashi-Matsuyama) with arc weight
	// (load already scheduled on the arc + the new transfer's volume) / arc capacity.
	PolicyDCCast Policy = "dccast"
	// PolicyRandom takes a uniformly random spanning tree of the topology (Wilson's
	// algorithm), rooted at the source and pruned to the receivers: a tree that ignores both
	// load and length, the RANDOM baseline of DCCast.
	PolicyRandom Policy = "random"
	// PolicyMinMax takes a tree minimising the largest arc load (exactly: the smallest load
	// threshold whose arcs still connect every receiver), fewest arcs among those.
	PolicyMinMax Policy = "minmax"
	// PolicySPT takes the shortest-path (hop) tree.
	PolicySPT Policy = "spt"
	// PolicyP2P sends to every receiver separately on its shortest path.
	PolicyP2P Policy = "p2p"
	// PolicyP2PLP sends to every receiver separately over its K shortest paths (3, or N for
	// "p2p-lp-kN") at rates a linear program chooses: the papers' P2P baseline. The LP is
	// re-solved whenever a transfer arrives or a receiver completes; transfers are served in
	// priority order (FCFS: arrival; SRPT: least remaining volume), each taking the maximum
	// throughput its paths can get from the capacity the transfers before it left.
	PolicyP2PLP Policy = "p2p-lp"
	// PolicyQuickCast splits receivers into at most two cohorts by agglomerative clustering
	// on hop distance and gives each cohort its own DCCast tree, the second built after the
	// first cohort's volume is added to the load of its tree's arcs; it keeps the split only
	// if the cohorts' trees weigh at most 1.1 times the single tree.
	PolicyQuickCast Policy = "quickcast"
	// PolicyMultiTree spreads the volume evenly over Config.Trees trees with minimum overlap
	// (Datacast), weighted as DCCast.
	PolicyMultiTree Policy = "multitree"
)

// Rate names how the scheduler shares arc capacity among transfers slot by slot.
type Rate string

// The rate policies.
const (
	// RateFCFS is DCCast's: a new transfer takes the residual capacity of its tree's
	// bottleneck slot by slot; earlier promises never change, so its completion time is known
	// at submission.
	RateFCFS Rate = "fcfs"
	// RateSRPT serves transfers with the smallest remaining volume first, every slot.
	RateSRPT Rate = "srpt"
	// RateMaxMin shares capacity max-min fairly among active trees, every slot (QuickCast).
	RateMaxMin Rate = "maxmin"
)

// Errors of transfer scheduling.
var (
	ErrBadConfig   = errors.New("scheduler: bad config")
	ErrBadTransfer = errors.New("scheduler: bad transfer")
)

// Config configures a transfer Scheduler.
type Config struct {
	Policy Policy
	Rate   Rate
	// Trees is the number of trees of PolicyMultiTree (default 2).
	Trees int
	// SlotCapacity is the volume an arc of tree.DefaultCapacity carries per slot (default 1,
	// as in DCCast); other arcs carry in proportion to their capacity.
	SlotCapacity float64
	// Seed seeds PolicyRandom.
	Seed uint64
}

// Transfer is one point-to-multipoint transfer.
type Transfer struct {
	ID      int
	Src     tree.NodeID
	Dsts    []tree.NodeID
	Volume  float64
	Arrival int // slot at which it may start
}

// Share is one tree of a transfer's decision: the volume it carries to its receivers.
type Share struct {
	Tree      *tree.Tree
	Receivers []tree.NodeID
	Volume    float64
}

// Decision is the scheduler's answer to a submission.
type Decision struct {
	ID     int
	Shares []Share
	// Completion is the slot at whose start the transfer will have completed (FCFS only;
	// -1 under SRPT and max-min, where it depends on later arrivals).
	Completion int
}

// Allocation is the volume one share of a transfer sends in one slot.
type Allocation struct {
	ID, Share int
	Volume    float64
}

// Completion reports a finished transfer: when it finished (the slot at whose start all
// its volume had arrived) and when each receiver finished.
type Completion struct {
	ID        int
	Arrival   int
	Finish    int
	Receivers map[tree.NodeID]int
}

// StepResult is what happened in one slot.
type StepResult struct {
	Slot        int
	Allocations []Allocation
	Completed   []Completion
	// Bandwidth is the volume carried over all arcs in the slot (volume × tree arcs).
	Bandwidth float64
}

type share struct {
	Share
	arcs      []tree.ArcID
	remaining float64
	finished  bool
	// plan holds FCFS promises: plan[i] is the volume to send in slot start+i.
	start int
	plan  []float64
	// rate is the volume per slot PolicyP2PLP last gave this share.
	rate float64
}

type active struct {
	tr     Transfer
	shares []*share
	done   int // shares finished
	finish map[tree.NodeID]int
	lp     []*lpRecv // PolicyP2PLP: shares grouped by receiver
}

// Scheduler schedules point-to-multipoint transfers on a topology where the network
// replicates (SDN multicast). It keeps, for every arc, the load it has promised in every
// future slot. It is not safe for concurrent use; callers drive it from one goroutine and
// supply time by calling Step.
type Scheduler struct {
	g      *tree.Graph
	cfg    Config
	kPaths int
	rng    *rand.Rand
	now    int
	cap    []float64   // per arc, volume per slot
	load   [][]float64 // load[a][i]: promised volume on arc a in slot now+i (FCFS)
	// free[a] is an index i such that every slot before now+i is full on arc a (FCFS
	// promises only add load, so it only moves forward, and back by one per Step).
	free   []int
	total  []float64 // total future promised (FCFS) or remaining active (others) volume per arc
	active []*active
	used   []float64 // per-arc scratch of share(), all zero between calls
	users  []int32
	lp     *lpState // PolicyP2PLP only
}

// New returns a scheduler for g. Cost O(arcs).
func New(g *tree.Graph, cfg Config) (*Scheduler, error) {
	s := &Scheduler{g: g, cfg: cfg}
	if cfg.Policy == "" {
		s.cfg.Policy = PolicyDCCast
	}
	if cfg.Rate == "" {
		s.cfg.Rate = RateFCFS
	}
	switch p := s.cfg.Policy; {
	case p == PolicyDCCast, p == PolicyRandom, p == PolicyMinMax, p == PolicySPT, p == PolicyP2P, p == PolicyQuickCast, p == PolicyMultiTree:
		s.kPaths = 1
	case p == PolicyP2PLP:
		s.kPaths = 3
	case strings.HasPrefix(string(p), "p2p-lp-k"):
		k, err := strconv.Atoi(strings.TrimPrefix(string(p), "p2p-lp-k"))
		if err != nil || k < 1 || k > 64 {
			return nil, fmt.Errorf("%w: policy %q: want p2p-lp-kN with 1 <= N <= 64", ErrBadConfig, p)
		}
		s.kPaths = k
	case strings.HasPrefix(string(p), "p2p-k"):
		k, err := strconv.Atoi(strings.TrimPrefix(string(p), "p2p-k"))
		if err != nil || k < 1 || k > 64 {
			return nil, fmt.Errorf("%w: policy %q: want p2p-kN with 1 <= N <= 64", ErrBadConfig, p)
		}
		s.kPaths = k
	default:
		return nil, fmt.Errorf("%w: unknown policy %q (want dccast, random, minmax, spt, p2p, p2p-kN, p2p-lp, p2p-lp-kN, quickcast or multitree)", ErrBadConfig, p)
	}
	switch s.cfg.Rate {
	case RateFCFS, RateSRPT, RateMaxMin:
	default:
		return nil, fmt.Errorf("%w: unknown rate policy %q (want fcfs, srpt or maxmin)", ErrBadConfig, s.cfg.Rate)
	}
	if strings.HasPrefix(string(s.cfg.Policy), "p2p-lp") {
		if s.cfg.Rate == RateMaxMin {
			return nil, fmt.Errorf("%w: policy %q takes rate fcfs or srpt (the LP's priority order), not maxmin", ErrBadConfig, s.cfg.Policy)
		}
		s.lp = &lpState{}
	}
	if s.cfg.Trees == 0 {
		s.cfg.Trees = 2
	}
	if s.cfg.Trees < 1 || s.cfg.Trees > 16 {
		return nil, fmt.Errorf("%w: %d trees, want 1 to 16", ErrBadConfig, s.cfg.Trees)
	}
	if s.cfg.SlotCapacity == 0 {
		s.cfg.SlotCapacity = 1
	}
	if !(s.cfg.SlotCapacity > 0) || math.IsInf(s.cfg.SlotCapacity, 0) {
		return nil, fmt.Errorf("%w: slot capacity %v", ErrBadConfig, s.cfg.SlotCapacity)
	}
	s.rng = rand.New(rand.NewPCG(s.cfg.Seed, 0x6463636173740a))
	s.cap = make([]float64, g.NumArcs())
	for a := range s.cap {
		s.cap[a] = s.cfg.SlotCapacity * g.Arc(tree.ArcID(a)).Capacity / tree.DefaultCapacity
	}
	s.load = make([][]float64, g.NumArcs())
	s.free = make([]int, g.NumArcs())
	s.total = make([]float64, g.NumArcs())
	return s, nil
}

// Now returns the current slot: the next Step executes it.
func (s *Scheduler) Now() int { return s.now }

// Active returns the number of transfers not yet complete.
func (s *Scheduler) Active() int { return len(s.active) }

// Promised returns the volume promised on arc a in slot t (FCFS; 0 for past slots).
func (s *Scheduler) Promised(a tree.ArcID, t int) float64 {
	i := t - s.now
	if i < 0 || i >= len(s.load[a]) {
		return 0
	}
	return s.load[a][i]
}

// Capacity returns the volume arc a carries per slot.
func (s *Scheduler) Capacity(a tree.ArcID) float64 { return s.cap[a] }

// Submit decides the trees of a transfer and, under FCFS, allocates its volume to future
// slots and returns its promised completion. The transfer may start at max(Arrival, Now).
// Errors wrap ErrBadTransfer (empty receivers, non-positive volume, arrival in the past,
// duplicate id) or the tree package's errors (unknown or unreachable node). Cost: the
// policy's tree computation (one TM run for dccast; a few for minmax and quickcast) plus,
// under FCFS, O(tree arcs × slots until completion).
func (s *Scheduler) Submit(tr Transfer) (Decision, error) {
	if err := s.check(tr); err != nil {
		return Decision{}, err
	}
	shares, err := s.choose(tr)
	if err != nil {
		return Decision{}, err
	}
	act := &active{tr: tr, finish: map[tree.NodeID]int{}}
	dec := Decision{ID: tr.ID, Completion: -1}
	start := max(tr.Arrival, s.now)
	for _, sh := range shares {
		x := &share{Share: sh, arcs: sh.Tree.Arcs, remaining: sh.Volume, start: start}
		if s.lp == nil { // the LP's shares of a receiver carry its volume together
			for _, a := range x.arcs {
				s.total[a] += sh.Volume
			}
		}
		act.shares = append(act.shares, x)
		dec.Shares = append(dec.Shares, sh)
	}
	if s.lp != nil {
		s.lp.submit(act)
	} else if s.cfg.Rate == RateFCFS {
		dec.Completion = start
		for _, x := range act.shares {
			dec.Completion = max(dec.Completion, s.promise(x))
		}
	}
	s.active = append(s.active, act)
	return dec, nil
}

func (s *Scheduler) check(tr Transfer) error {
	n := tree.NodeID(s.g.NumNodes())
	switch {
	case len(tr.Dsts) == 0:
		return fmt.Errorf("%w: transfer %d has no receivers", ErrBadTransfer, tr.ID)
	case !(tr.Volume > 0) || math.IsInf(tr.Volume, 0):
		return fmt.Errorf("%w: transfer %d has volume %v", ErrBadTransfer, tr.ID, tr.Volume)
	case tr.Arrival < s.now:
		return fmt.Errorf("%w: transfer %d arrives at slot %d, before now (%d)", ErrBadTransfer, tr.ID, tr.Arrival, s.now)
	case tr.Src < 0 || tr.Src >= n:
		return fmt.Errorf("%w: transfer %d: source %d", tree.ErrUnknownNode, tr.ID, tr.Src)
	}
	for _, a := range s.active {
		if a.tr.ID == tr.ID {
			return fmt.Errorf("%w: transfer id %d is already active", ErrBadTransfer, tr.ID)
		}
	}
	return nil
}

// promise allocates a share's volume to the earliest residual capacity along its tree, slot
// by slot, and returns the slot at whose start it completes. Slots that are full on any arc
// of the tree are skipped without scanning, thanks to the per-arc free index.
func (s *Scheduler) promise(x *share) int {
	rem := x.Volume
	first := x.start - s.now
	for _, a := range x.arcs {
		first = max(first, s.free[a])
	}
	for i := first; ; i++ {
		r := math.Inf(1)
		for _, a := range x.arcs {
			used := 0.0
			if i < len(s.load[a]) {
				used = s.load[a][i]
			}
			r = min(r, s.cap[a]-used)
		}
		if r > tiny {
			v := min(r, rem)
			for _, a := range x.arcs {
				for len(s.load[a]) <= i {
					s.load[a] = append(s.load[a], 0)
				}
				s.load[a][i] += v
				for s.free[a] < len(s.load[a]) && s.cap[a]-s.load[a][s.free[a]] <= tiny {
					s.free[a]++
				}
			}
			t := s.now + i
			for len(x.plan) < t-x.start {
				x.plan = append(x.plan, 0)
			}
			x.plan = append(x.plan, v)
			rem -= v
		}
		if rem <= tiny {
			return s.now + i + 1
		}
	}
}

// Step executes the current slot: it sends what the rate policy allocates, reports the
// transfers that complete, and advances time by one slot.
func (s *Scheduler) Step() StepResult {
	res := StepResult{Slot: s.now}
	switch {
	case s.lp != nil:
		res.Allocations = s.lpShare()
	case s.cfg.Rate == RateFCFS:
		for _, act := range s.active {
			for j, x := range act.shares {
				if i := s.now - x.start; i >= 0 && i < len(x.plan) && x.plan[i] > 0 {
					res.Allocations = append(res.Allocations, Allocation{ID: act.tr.ID, Share: j, Volume: x.plan[i]})
				}
			}
		}
	default:
		res.Allocations = s.share()
	}
	for _, al := range res.Allocations {
		act := s.find(al.ID)
		x := act.shares[al.Share]
		res.Bandwidth += al.Volume * float64(len(x.arcs))
		if s.lp != nil {
			s.lp.sent(act, al)
			continue
		}
		x.remaining -= al.Volume
		for _, a := range x.arcs {
			s.total[a] -= al.Volume
		}
	}
	// Completions.
	kept := s.active[:0]
	for _, act := range s.active {
		for _, x := range act.shares {
			if x.remaining <= tiny && !x.finished {
				x.finished = true
				act.done++
				for _, r := range x.Receivers {
					act.finish[r] = max(act.finish[r], s.now+1)
				}
			}
		}
		if act.done == len(act.shares) {
			c := Completion{ID: act.tr.ID, Arrival: act.tr.Arrival, Finish: act.tr.Arrival, Receivers: act.finish}
			for _, f := range act.finish {
				c.Finish = max(c.Finish, f)
			}
			res.Completed = append(res.Completed, c)
			continue
		}
		kept = append(kept, act)
	}
	clear(s.active[len(kept):])
	s.active = kept
	// Advance: drop the slot just executed from the promised loads.
	for a := range s.load {
		if len(s.load[a]) > 0 {
			s.load[a] = s.load[a][1:]
		}
		s.free[a] = max(0, s.free[a]-1)
	}
	s.now++
	return res
}

func (s *Scheduler) find(id int) *active {
	for _, a := range s.active {
		if a.tr.ID == id {
			return a
		}
	}
	panic("scheduler: allocation for an unknown transfer")
}

// dcWeight is DCCast's arc weight for a new transfer of volume v.
func (s *Scheduler) dcWeight(v float64) tree.Weight {
	return func(a tree.ArcID) float64 { return (s.total[a] + v) / s.cap[a] }
}

// choose returns the shares of a transfer under the policy.
func (s *Scheduler) choose(tr Transfer) ([]Share, error) {
	g, v := s.g, tr.Volume
	single := func(t *tree.Tree, err error) ([]Share, error) {
		if err != nil {
			return nil, err
		}
		return []Share{{Tree: t, Receivers: dedup(tr.Src, tr.Dsts), Volume: v}}, nil
	}
	switch p := s.cfg.Policy; {
	case p == PolicyDCCast:
		return single(tree.SteinerTM(g, tr.Src, tr.Dsts, s.dcWeight(v)))
	case p == PolicySPT:
		return single(tree.ShortestPathTree(g, tr.Src, tr.Dsts, tree.Hops))
	case p == PolicyRandom:
		return single(randomTree(g, tr.Src, tr.Dsts, s.rng))
	case p == PolicyMinMax:
		return single(s.minMaxTree(tr))
	case p == PolicyMultiTree:
		f, err := tree.MultiTree(g, tree.AlgoTM, tr.Src, tr.Dsts, s.cfg.Trees, s.dcWeight(v/float64(s.cfg.Trees)))
		if err != nil {
			return nil, err
		}
		var out []Share
		for _, t := range f.Trees {
			out = append(out, Share{Tree: t, Receivers: dedup(tr.Src, tr.Dsts), Volume: v / float64(len(f.Trees))})
		}
		return out, nil
	case p == PolicyQuickCast:
		return s.quickCast(tr)
	default: // p2p, p2p-kN, p2p-lp and p2p-lp-kN
		if s.lp != nil {
			return s.lpPaths(tr)
		}
		var out []Share
		for _, r := range dedup(tr.Src, tr.Dsts) {
			paths, err := tree.KShortestPaths(g, tr.Src, r, s.kPaths, tree.Hops)
			if err != nil {
				return nil, err
			}
			for _, path := range paths {
				out = append(out, Share{Tree: &tree.Tree{Root: tr.Src, Arcs: path, Cost: float64(len(path))}, Receivers: []tree.NodeID{r}, Volume: v / float64(len(paths))})
			}
		}
		return out, nil
	}
}

// minMaxTree finds the smallest load threshold whose arcs (load + volume <= threshold,
// relative to capacity) still connect every receiver, by binary search over the distinct
// arc loads, and returns the fewest-hop Steiner tree over those arcs.
func (s *Scheduler) minMaxTree(tr Transfer) (*tree.Tree, error) {
	rel := make([]float64, len(s.total))
	for a := range rel {
		rel[a] = (s.total[a] + tr.Volume) / s.cap[a]
	}
	levels := slices.Clone(rel)
	slices.Sort(levels)
	levels = slices.Compact(levels)
	under := func(th float64) tree.Weight {
		return func(a tree.ArcID) float64 {
			if rel[a] > th {
				return math.Inf(1)
			}
			return 1
		}
	}
	lo, hi := 0, len(levels)-1
	if _, err := tree.SteinerTM(s.g, tr.Src, tr.Dsts, under(levels[hi])); err != nil {
		return nil, err
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if _, err := tree.SteinerTM(s.g, tr.Src, tr.Dsts, under(levels[mid])); err == nil {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	t, err := tree.SteinerTM(s.g, tr.Src, tr.Dsts, under(levels[lo]))
	if err != nil {
		return nil, err
	}
	t.Cost = t.Weigh(s.dcWeight(tr.Volume))
	return t, nil
}

// quickCast splits the receivers into two cohorts by agglomerative (average-linkage)
// clustering on hop distance, builds the first cohort's DCCast tree, raises the weight of its
// arcs by the volume, builds the second cohort's tree under those weights, and keeps the
// split when the two trees weigh at most 1.1 times the single tree.
func (s *Scheduler) quickCast(tr Transfer) ([]Share, error) {
	recv := dedup(tr.Src, tr.Dsts)
	w := s.dcWeight(tr.Volume)
	whole, err := tree.SteinerTM(s.g, tr.Src, recv, w)
	if err != nil {
		return nil, err
	}
	one := []Share{{Tree: whole, Receivers: recv, Volume: tr.Volume}}
	if len(recv) < 2 {
		return one, nil
	}
	a, b := s.cohorts(recv)
	ta, err := tree.SteinerTM(s.g, tr.Src, a, w)
	if err != nil {
		return nil, err
	}
	// The first cohort's tree will carry the volume: its arcs weigh that much more for the
	// second cohort's tree (and in the comparison with the single tree).
	onA := make(map[tree.ArcID]bool, len(ta.Arcs))
	for _, x := range ta.Arcs {
		onA[x] = true
	}
	wb := func(x tree.ArcID) float64 {
		if onA[x] {
			return (s.total[x] + 2*tr.Volume) / s.cap[x]
		}
		return w(x)
	}
	tb, err := tree.SteinerTM(s.g, tr.Src, b, wb)
	if err != nil {
		return nil, err
	}
	if ta.Cost+tb.Cost > 1.1*whole.Cost {
		return one, nil
	}
	return []Share{{Tree: ta, Receivers: a, Volume: tr.Volume}, {Tree: tb, Receivers: b, Volume: tr.Volume}}, nil
}

// cohorts clusters receivers into two groups, merging the closest clusters (average hop
// distance) until two remain.
func (s *Scheduler) cohorts(recv []tree.NodeID) ([]tree.NodeID, []tree.NodeID) {
	n := len(recv)
	dist := make([][]float64, n)
	for i, r := range recv {
		t, _ := tree.ShortestPathTree(s.g, r, recv, tree.Hops)
		depth := map[tree.NodeID]float64{r: 0}
		for _, a := range t.Arcs {
			depth[s.g.Arc(a).To] = depth[s.g.Arc(a).From] + 1
		}
		dist[i] = make([]float64, n)
		for j, q := range recv {
			dist[i][j] = depth[q]
		}
	}
	clusters := make([][]int, n)
	for i := range clusters {
		clusters[i] = []int{i}
	}
	avg := func(x, y []int) float64 {
		sum := 0.0
		for _, i := range x {
			for _, j := range y {
				sum += dist[i][j]
			}
		}
		return sum / float64(len(x)*len(y))
	}
	for len(clusters) > 2 {
		bi, bj, best := 0, 1, math.Inf(1)
		for i := range clusters {
			for j := i + 1; j < len(clusters); j++ {
				if d := avg(clusters[i], clusters[j]); d < best {
					bi, bj, best = i, j, d
				}
			}
		}
		clusters[bi] = append(clusters[bi], clusters[bj]...)
		clusters = append(clusters[:bj], clusters[bj+1:]...)
	}
	pick := func(c []int) []tree.NodeID {
		slices.Sort(c)
		out := make([]tree.NodeID, len(c))
		for i, j := range c {
			out[i] = recv[j]
		}
		return out
	}
	return pick(clusters[0]), pick(clusters[1])
}
