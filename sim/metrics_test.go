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
