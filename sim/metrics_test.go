package sim

import (
	"math"
	"testing"
)

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	for _, tt := range []struct{ p, want float64 }{{50, 5}, {99, 10}, {100, 10}, {10, 1}, {11, 2}, {0, 1}} {
		if got := Percentile(xs, tt.p); got != tt.want {
			t.Errorf("Percentile(%v) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if xs[0] != 5 {
		t.Error("Percentile sorted its input")
	}
	if Percentile(nil, 50) != 0 {
		t.Error("empty percentile not 0")
	}
}

func TestSummarize(t *testing.T) {
	rs := []Result{
		{Scheme: "a", MeanTCT: 2, TotalBandwidth: 10},
		{Scheme: "b", MeanTCT: 5},
		{Scheme: "a", MeanTCT: 4, TotalBandwidth: 10},
	}
	s := Summarize(rs)
	if len(s) != 2 || s[0].Scheme != "a" || s[1].Scheme != "b" || s[0].Runs != 2 {
		t.Fatalf("summaries %+v", s)
	}
	// Mean of 2 and 4 is 3; sample standard deviation sqrt(((2-3)^2+(4-3)^2)/1) = sqrt 2.
	if s[0].MeanTCT.Mean != 3 || math.Abs(s[0].MeanTCT.Std-math.Sqrt2) > 1e-12 || s[0].TotalBandwidth.Std != 0 {
		t.Fatalf("stats %+v", s[0].MeanTCT)
	}
}

// Per-receiver statistics pool the receivers of every completed transfer: worked out by hand
// on two transfers with 3 and 1 receivers.
func TestReceiverStats(t *testing.T) {
	r := Result{TCT: []float64{4, 9}, ReceiverTimes: [][]float64{{1, 4, 2}, {9}}}
	r.summarize()
	// Receivers 1, 2, 4, 9: mean 16/4 = 4; nearest-rank median the 2nd value (2), p99 the 4th (9).
	// Transfers: mean (4+9)/2 = 6.5, median 4.
	if r.MeanReceiverTime != 4 || r.P50ReceiverTime != 2 || r.P99ReceiverTime != 9 || r.MeanTCT != 6.5 || r.P50TCT != 4 || r.Completed != 2 {
		t.Fatalf("receiver mean/p50/p99 %v/%v/%v, TCT mean/p50 %v/%v, completed %d",
			r.MeanReceiverTime, r.P50ReceiverTime, r.P99ReceiverTime, r.MeanTCT, r.P50TCT, r.Completed)
	}
	s := Summarize([]Result{r, {Scheme: r.Scheme, MeanReceiverTime: 6}})
	if s[0].MeanReceiverTime.Mean != 5 || s[0].P99ReceiverTime.Mean != 4.5 {
		t.Fatalf("summary %+v", s[0])
	}
}
