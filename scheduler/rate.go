package scheduler

import (
	"math"
	"slices"

	"github.com/treecast/treecast/tree"
)

const tiny = 1e-9

// share allocates the current slot's capacity among the started shares under SRPT or
// max-min fairness, and returns the allocations (ordered by transfer then share).
func (s *Scheduler) share() []Allocation {
	type ref struct {
		act *active
		j   int
		x   *share
	}
	var live []ref
	for _, act := range s.active {
		for j, x := range act.shares {
			if x.start <= s.now && !x.finished && x.remaining > tiny {
				live = append(live, ref{act, j, x})
			}
		}
	}
	if s.used == nil {
		s.used = make([]float64, len(s.cap))
		s.users = make([]int32, len(s.cap))
	}
	used, users := s.used, s.users
	var touched []tree.ArcID
	for _, l := range live {
		for _, a := range l.x.arcs {
			if users[a] == 0 && used[a] == 0 {
				touched = append(touched, a)
			}
			users[a] = -1 // mark touched; counts are rebuilt below
		}
	}
	defer func() {
		for _, a := range touched {
			used[a], users[a] = 0, 0
		}
	}()
	alloc := make([]float64, len(live))
	residual := func(x *share) float64 {
		r := math.Inf(1)
		for _, a := range x.arcs {
			r = min(r, s.cap[a]-used[a])
		}
		return r
	}
	take := func(i int, v float64) {
		alloc[i] += v
		for _, a := range live[i].x.arcs {
			used[a] += v
		}
	}
	if s.cfg.Rate == RateSRPT {
		remaining := func(act *active) float64 {
			sum := 0.0
			for _, x := range act.shares {
				if !x.finished {
					sum += max(0, x.remaining)
				}
			}
			return sum
		}
		order := make([]int, len(live))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(i, j int) int {
			ri, rj := remaining(live[i].act), remaining(live[j].act)
			switch {
			case ri < rj:
				return -1
			case ri > rj:
				return 1
			}
			return live[i].act.tr.ID - live[j].act.tr.ID
		})
		for _, i := range order {
			if v := min(residual(live[i].x), live[i].x.remaining); v > tiny {
				take(i, v)
			}
		}
	} else {
		// Max-min fair progressive filling: raise every open share's rate equally until an arc
		// saturates or a share runs out of volume; close those shares; repeat. Each round
		// closes at least one share, so it costs O(shares² × arcs per share) at worst.
		open := make([]int, len(live))
		for i := range open {
			open[i] = i
		}
		for len(open) > 0 {
			for _, a := range touched {
				users[a] = 0
			}
			delta := math.Inf(1)
			for _, i := range open {
				delta = min(delta, live[i].x.remaining-alloc[i])
				for _, a := range live[i].x.arcs {
					users[a]++
				}
			}
			for _, a := range touched {
				if users[a] > 0 {
					delta = min(delta, (s.cap[a]-used[a])/float64(users[a]))
				}
			}
			for _, i := range open {
				take(i, delta)
			}
			kept := open[:0]
			for _, i := range open {
				full := live[i].x.remaining-alloc[i] <= tiny
				for _, a := range live[i].x.arcs {
					full = full || s.cap[a]-used[a] <= tiny
				}
				if !full {
					kept = append(kept, i)
				}
			}
			open = kept
		}
	}
	var out []Allocation
	for i, l := range live {
		if alloc[i] > tiny {
			out = append(out, Allocation{ID: l.act.tr.ID, Share: l.j, Volume: alloc[i]})
		}
	}
	return out
}
