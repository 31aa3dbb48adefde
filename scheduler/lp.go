package scheduler

import (
	"cmp"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize/convex/lp"

	"github.com/treecast/treecast/tree"
)

// lpState is the state of PolicyP2PLP: whether the rates must be solved again.
type lpState struct {
	dirty bool
}

// lpRecv is one receiver of a PolicyP2PLP transfer: its shares (one per path, indices into
// active.shares) and the volume it still needs.
type lpRecv struct {
	shares    []int
	remaining float64
}

// lpPaths returns a PolicyP2PLP transfer's shares: one per path of each receiver's K shortest
// (fewest-hop) paths, each with the receiver's whole volume, which the paths carry together.
func (s *Scheduler) lpPaths(tr Transfer) ([]Share, error) {
	var out []Share
	for _, r := range dedup(tr.Src, tr.Dsts) {
		paths, err := tree.KShortestPaths(s.g, tr.Src, r, s.kPaths, tree.Hops)
		if err != nil {
			return nil, err
		}
		for _, path := range paths {
			out = append(out, Share{Tree: &tree.Tree{Root: tr.Src, Arcs: path, Cost: float64(len(path))},
				Receivers: []tree.NodeID{r}, Volume: tr.Volume})
		}
	}
	return out, nil
}

// submit groups a new transfer's shares by receiver and asks for new rates.
func (l *lpState) submit(act *active) {
	for j, x := range act.shares {
		n := len(act.lp)
		if n == 0 || act.shares[act.lp[n-1].shares[0]].Receivers[0] != x.Receivers[0] {
			act.lp = append(act.lp, &lpRecv{remaining: act.tr.Volume})
			n++
		}
		act.lp[n-1].shares = append(act.lp[n-1].shares, j)
	}
	l.dirty = true
}

// sent books an allocation: the receiver's remaining volume drops, and every share of it
// shows that remaining volume, so that all of them finish when the receiver has its volume.
// A receiver that completes asks for new rates.
func (l *lpState) sent(act *active, al Allocation) {
	for _, r := range act.lp {
		if !slices.Contains(r.shares, al.Share) {
			continue
		}
		r.remaining -= al.Volume
		if r.remaining <= tiny {
			r.remaining = 0
			l.dirty = true
		}
		for _, j := range r.shares {
			act.shares[j].remaining = r.remaining
		}
		return
	}
}

// lpShare allocates the current slot under PolicyP2PLP. When a transfer arrived or a
// receiver completed since the last slot, it solves the rates again: transfers in priority
// order (FCFS: arrival; SRPT: least remaining volume, then arrival), each taking the maximum
// total rate over its receivers' paths that the capacity left by the transfers before it
// allows (one LP per transfer, gonum's simplex); otherwise it keeps the rates, each capped at
// what its receiver still needs. Cost per solve O(active transfers x paths x path length)
// plus one small LP (paths variables, receivers + arcs constraints) per transfer that can
// still send.
func (s *Scheduler) lpShare() []Allocation {
	for _, act := range s.active {
		if act.tr.Arrival == s.now { // submitted ahead of its arrival: it starts now
			s.lp.dirty = true
		}
	}
	if s.lp.dirty {
		s.lpSolve()
		s.lp.dirty = false
	}
	var out []Allocation
	for _, act := range s.active {
		if act.tr.Arrival > s.now {
			continue
		}
		for _, r := range act.lp {
			left := r.remaining
			for _, j := range r.shares {
				v := min(act.shares[j].rate, left)
				if v > tiny {
					out = append(out, Allocation{ID: act.tr.ID, Share: j, Volume: v})
					left -= v
				}
			}
		}
	}
	return out
}

func (s *Scheduler) lpSolve() {
	order := slices.Clone(s.active)
	left := func(a *active) float64 {
		sum := 0.0
		for _, r := range a.lp {
			sum += r.remaining
		}
		return sum
	}
	slices.SortStableFunc(order, func(a, b *active) int {
		if s.cfg.Rate == RateSRPT {
			if c := cmp.Compare(left(a), left(b)); c != 0 {
				return c
			}
		}
		return cmp.Or(cmp.Compare(a.tr.Arrival, b.tr.Arrival), cmp.Compare(a.tr.ID, b.tr.ID))
	})
	residual := slices.Clone(s.cap)
	bottleneck := func(x *share) float64 {
		r := math.Inf(1)
		for _, a := range x.arcs {
			r = min(r, residual[a])
		}
		return r
	}
	type variable struct {
		recv *lpRecv
		x    *share
	}
	var vars []variable
	for _, act := range order {
		vars = vars[:0]
		for _, r := range act.lp {
			for _, j := range r.shares {
				x := act.shares[j]
				x.rate = 0
				if act.tr.Arrival <= s.now && r.remaining > tiny && bottleneck(x) > tiny {
					vars = append(vars, variable{r, x})
				}
			}
		}
		if len(vars) == 0 {
			continue
		}
		if len(vars) == 1 { // one path: its bottleneck, or what the receiver needs
			v := vars[0]
			v.x.rate = min(bottleneck(v.x), v.recv.remaining)
			for _, a := range v.x.arcs {
				residual[a] -= v.x.rate
			}
			continue
		}
		// maximize sum(x) s.t. per receiver sum(x) <= remaining, per arc sum(x) <= residual,
		// x >= 0; in standard form with one slack per row, starting from the all-slack basis
		// (x = 0 is feasible).
		var rows []float64 // right-hand sides
		rowOf := map[any]int{}
		row := func(key any, rhs float64) int {
			if i, ok := rowOf[key]; ok {
				return i
			}
			rowOf[key] = len(rows)
			rows = append(rows, rhs)
			return len(rows) - 1
		}
		type entry struct{ row, col int }
		var entries []entry
		for j, v := range vars {
			entries = append(entries, entry{row(v.recv, v.recv.remaining), j})
			for _, a := range v.x.arcs {
				entries = append(entries, entry{row(a, residual[a]), j})
			}
		}
		m, nv := len(rows), len(vars)
		A := mat.NewDense(m, nv+m, nil)
		for _, e := range entries {
			A.Set(e.row, e.col, 1)
		}
		c := make([]float64, nv+m)
		basic := make([]int, m)
		for i := range m {
			A.Set(i, nv+i, 1)
			basic[i] = nv + i
		}
		for j := range nv {
			c[j] = -1
		}
		_, sol, err := lp.Simplex(c, A, rows, 1e-10, basic)
		// Book the solution path by path, clipped to what is left, so that rounding can never
		// overload an arc or overfill a receiver; on a solver failure this is a greedy fill.
		taken := map[*lpRecv]float64{}
		for j, v := range vars {
			want := math.Inf(1)
			if err == nil {
				want = max(sol[j], 0)
			}
			r := min(want, bottleneck(v.x), v.recv.remaining-taken[v.recv])
			if r <= tiny {
				continue
			}
			v.x.rate = r
			taken[v.recv] += r
			for _, a := range v.x.arcs {
				residual[a] -= r
			}
		}
	}
}
