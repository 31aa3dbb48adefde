package sim

import (
	"math"
	"slices"
)

// Result is what one run of one scheme on one workload measured. Times are in slots, volumes
// in units (one unit is what an arc of capacity 1 carries in one slot).
type Result struct {
	Scheme    string `json:"scheme"`
	Topology  string `json:"topology"`
	Seed      uint64 `json:"seed"`
	Transfers int    `json:"transfers"`
	// Completed is the number of transfers whose every receiver finished (less than Transfers
	// only when the run was cancelled).
	Completed int `json:"completed"`
	// TotalBandwidth is the sum over arcs of the volume they carried.
	TotalBandwidth float64 `json:"total_bandwidth"`
	// MaxCopies is the largest number of copies of one transfer on one arc (volume of the
	// transfer on the arc / its volume), over all transfers and arcs.
	MaxCopies float64 `json:"max_copies"`
	MeanTCT   float64 `json:"mean_tct"`
	P50TCT    float64 `json:"p50_tct"`
	P99TCT    float64 `json:"p99_tct"`
	MaxTCT    float64 `json:"max_tct"`
	// MeanReceiverTime, P50ReceiverTime and P99ReceiverTime are the mean, median and 99th
	// percentile over the receivers of completed transfers of the time from arrival to that
	// receiver's completion (QuickCast's metric; nearest-rank percentiles).
	MeanReceiverTime float64 `json:"mean_receiver_time"`
	P50ReceiverTime  float64 `json:"p50_receiver_time"`
	P99ReceiverTime  float64 `json:"p99_receiver_time"`
	WallMS           float64 `json:"wall_ms"`
	// TCT holds the completion time of every completed transfer, in transfer order;
	// ReceiverTimes the time of each of its receivers, in the order of Transfer.Dsts.
	TCT           []float64   `json:"-"`
	ReceiverTimes [][]float64 `json:"-"`
}

// summarize fills the TCT statistics from r.TCT and r.ReceiverTimes.
func (r *Result) summarize() {
	r.Completed = len(r.TCT)
	r.MeanTCT = mean(r.TCT)
	r.P50TCT = Percentile(r.TCT, 50)
	r.P99TCT = Percentile(r.TCT, 99)
	r.MaxTCT = Percentile(r.TCT, 100)
	var all []float64
	for _, rt := range r.ReceiverTimes {
		all = append(all, rt...)
	}
	r.MeanReceiverTime = mean(all)
	r.P50ReceiverTime = Percentile(all, 50)
	r.P99ReceiverTime = Percentile(all, 99)
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// Percentile returns the p-th percentile (0 < p <= 100) of xs by the nearest-rank method: the
// smallest value such that at least p% of the values are <= it. It returns 0 for no values.
// Cost O(n log n); xs is not modified.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// Summary is the mean and spread over seeds of one scheme's results.
type Summary struct {
	Scheme   string
	Topology string
	Runs     int
	// Mean and Std of each metric over the runs (sample standard deviation; 0 for one run).
	Transfers, TotalBandwidth, MaxCopies, MeanTCT, P50TCT, P99TCT, MaxTCT Stat
	MeanReceiverTime, P50ReceiverTime, P99ReceiverTime                    Stat
	WallMS                                                                Stat
}

// Stat is a mean and a sample standard deviation.
type Stat struct{ Mean, Std float64 }

func stat(xs []float64) Stat {
	m := mean(xs)
	if len(xs) < 2 {
		return Stat{Mean: m}
	}
	v := 0.0
	for _, x := range xs {
		v += (x - m) * (x - m)
	}
	return Stat{Mean: m, Std: math.Sqrt(v / float64(len(xs)-1))}
}

// Summarize groups results by scheme, in the order schemes first appear, and returns the
// mean and spread of every metric over each scheme's runs. Cost O(len(results)).
func Summarize(results []Result) []Summary {
	var order []string
	by := map[string][]Result{}
	for _, r := range results {
		if _, ok := by[r.Scheme]; !ok {
			order = append(order, r.Scheme)
		}
		by[r.Scheme] = append(by[r.Scheme], r)
	}
	out := make([]Summary, 0, len(order))
	for _, name := range order {
		rs := by[name]
		col := func(f func(Result) float64) Stat {
			xs := make([]float64, len(rs))
			for i, r := range rs {
				xs[i] = f(r)
			}
			return stat(xs)
		}
		out = append(out, Summary{
			Scheme: name, Topology: rs[0].Topology, Runs: len(rs),
			Transfers:        col(func(r Result) float64 { return float64(r.Transfers) }),
			TotalBandwidth:   col(func(r Result) float64 { return r.TotalBandwidth }),
			MaxCopies:        col(func(r Result) float64 { return r.MaxCopies }),
			MeanTCT:          col(func(r Result) float64 { return r.MeanTCT }),
			P50TCT:           col(func(r Result) float64 { return r.P50TCT }),
			P99TCT:           col(func(r Result) float64 { return r.P99TCT }),
			MaxTCT:           col(func(r Result) float64 { return r.MaxTCT }),
			MeanReceiverTime: col(func(r Result) float64 { return r.MeanReceiverTime }),
			P50ReceiverTime:  col(func(r Result) float64 { return r.P50ReceiverTime }),
			P99ReceiverTime:  col(func(r Result) float64 { return r.P99ReceiverTime }),
			WallMS:           col(func(r Result) float64 { return r.WallMS }),
		})
	}
	return out
}
