package sim

import "math"

// maxMin computes max-min fair rates by progressive filling (water-filling): all flows grow
// at the same pace; when an arc fills, the flows through it freeze at their current rate,
// and the others keep growing. The result is the unique max-min fair allocation: no flow's
// rate can grow without shrinking the rate of a flow that has no more.
//
// It reuses its buffers between calls, so one maxMin serves one engine and is not safe for
// concurrent use.
type maxMin struct {
	capacity []float64 // per arc, units per slot
	rem      []float64 // per arc: capacity not yet given out
	cnt      []int32   // per arc: unfrozen flows through it
	start    []int32   // per arc: flows through it are byArc[start[a]:start[a]+n]
	fill     []int32
	byArc    []int32
	touched  []int32
	live     []int32
	mark     []bool
	frozen   []bool
}

func newMaxMin(capacity []float64) *maxMin {
	n := len(capacity)
	return &maxMin{capacity: capacity, rem: make([]float64, n), cnt: make([]int32, n),
		start: make([]int32, n), fill: make([]int32, n), mark: make([]bool, n)}
}

// rates sets rates[i] to the max-min fair rate of a flow along paths[i] (arc indexes). A flow
// with an empty path gets +Inf. Cost O(I x (A + sum of path lengths)) in the worst case, with
// A the arcs in use and I the number of distinct bottleneck levels (at most the number of
// flows; usually a handful, since all arcs at the lowest level freeze together).
func (m *maxMin) rates(paths [][]int32, rates []float64) {
	m.touched = m.touched[:0]
	for _, p := range paths {
		for _, a := range p {
			if !m.mark[a] {
				m.mark[a] = true
				m.touched = append(m.touched, a)
				m.cnt[a] = 0
				m.rem[a] = m.capacity[a]
			}
			m.cnt[a]++
		}
	}
	// Flows by arc, in CSR form.
	total := int32(0)
	for _, a := range m.touched {
		m.start[a] = total
		m.fill[a] = total
		total += m.cnt[a]
	}
	if cap(m.byArc) < int(total) {
		m.byArc = make([]int32, total)
	}
	m.byArc = m.byArc[:total]
	for i, p := range paths {
		for _, a := range p {
			m.byArc[m.fill[a]] = int32(i)
			m.fill[a]++
		}
	}
	if cap(m.frozen) < len(paths) {
		m.frozen = make([]bool, len(paths))
	}
	m.frozen = m.frozen[:len(paths)]
	left := 0
	for i, p := range paths {
		m.frozen[i] = len(p) == 0
		if len(p) == 0 {
			rates[i] = math.Inf(1)
		} else {
			rates[i] = 0
			left++
		}
	}
	// live holds the arcs that still carry unfrozen flows; it shrinks as arcs fill.
	m.live = append(m.live[:0], m.touched...)
	level := 0.0 // the rate every unfrozen flow has reached
	for left > 0 {
		// The next arc to fill: the least remaining capacity per unfrozen flow.
		inc := math.Inf(1)
		for _, a := range m.live {
			inc = min(inc, m.rem[a]/float64(m.cnt[a]))
		}
		inc = max(inc, 0)
		level += inc
		for _, a := range m.live {
			m.rem[a] -= inc * float64(m.cnt[a])
		}
		// Freeze the flows through every arc that is now full (within rounding).
		for _, a := range m.live {
			if m.cnt[a] == 0 || m.rem[a] > 1e-12*m.capacity[a] {
				continue
			}
			for _, f := range m.byArc[m.start[a]:m.fill[a]] {
				if m.frozen[f] {
					continue
				}
				m.frozen[f] = true
				rates[f] = level
				left--
				for _, b := range paths[f] {
					m.cnt[b]--
				}
			}
		}
		kept := m.live[:0]
		for _, a := range m.live {
			if m.cnt[a] > 0 {
				kept = append(kept, a)
			}
		}
		m.live = kept
	}
	for _, a := range m.touched {
		m.mark[a] = false
	}
}
