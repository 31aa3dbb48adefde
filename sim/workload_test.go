package sim

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/treecast/treecast/tree"
)

func TestParseVolume(t *testing.T) {
	tests := []struct {
		spec string
		mean float64
		ok   bool
	}{
		{"10+exp:20", 30, true},
		{"const:5", 5, true},
		{"7", 7, true},
		{"pareto:2,10", 20, true},
		{"pareto:1,10", math.Inf(1), true},
		{"uniform:2,4 + 1", 4, true},
		{"", 0, false},
		{"exp:0", 0, false},
		{"exp:-1", 0, false},
		{"pareto:2", 0, false},
		{"pareto:0,1", 0, false},
		{"gauss:1", 0, false},
		{"10+", 0, false},
		{"-3", 0, false},
		{"0", 0, false},
		{"NaN", 0, false},
		{"uniform:4,2", 0, false},
		// Caps: E[min(X, C)] for exp is M(1 - e^(-C/M)); for pareto:1,L it is L(1 + ln(C/L)).
		{"exp:20,max=20", 20 * (1 - math.Exp(-1)), true},
		{"pareto:1,2,max=2000", 2 * (1 + math.Log(1000)), true},
		{"pareto:2,10,max=10", 10, true},
		{"exp:20,max=0", 0, false},
		{"pareto:2,10,max=5", 0, false},
		{"uniform:1,2,max=3", 0, false},
		{"exp:20,max=x", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			v, err := ParseVolume(tt.spec)
			if !tt.ok {
				if !errors.Is(err, ErrBadVolume) {
					t.Fatalf("ParseVolume(%q) error = %v, want ErrBadVolume", tt.spec, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := v.Mean(); got != tt.mean && math.Abs(got-tt.mean) > 1e-9*tt.mean {
				t.Fatalf("mean %v, want %v", got, tt.mean)
			}
		})
	}
}

// The sample mean of many draws is close to the distribution's mean (for capped terms, the
// closed form of E[min(X, cap)]), and no draw falls outside the distribution's support: a
// cap bounds every draw.
func TestVolumeSampleMean(t *testing.T) {
	for _, tt := range []struct {
		spec     string
		min, max float64
	}{{"10+exp:20", 10, math.Inf(1)}, {"pareto:3,6", 6, math.Inf(1)}, {"uniform:1,3", 1, 3},
		{"exp:20,max=30", 0, 30}, {"pareto:1.1,2,max=2000", 2, 2000}, {"pareto:0.9,1,max=50", 1, 50}} {
		v, err := ParseVolume(tt.spec)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		const n = 200000
		s := 0.0
		for range n {
			x := v.Sample(rng)
			if x < tt.min || x > tt.max {
				t.Fatalf("%s: draw %v outside [%v, %v]", tt.spec, x, tt.min, tt.max)
			}
			s += x
		}
		if got, want := s/n, v.Mean(); math.Abs(got-want) > 0.02*want {
			t.Errorf("%s: sample mean %v, want about %v", tt.spec, got, want)
		}
	}
}

func TestParseRange(t *testing.T) {
	tests := []struct {
		in     string
		lo, hi int
		ok     bool
	}{
		{"1-6", 1, 6, true}, {"3", 3, 3, true}, {" 2 - 4 ", 2, 4, true},
		{"6-1", 0, 0, false}, {"0-3", 0, 0, false}, {"a-b", 0, 0, false}, {"", 0, 0, false}, {"1-2-3", 0, 0, false},
	}
	for _, tt := range tests {
		r, err := ParseRange(tt.in, 1)
		if tt.ok != (err == nil) || (tt.ok && (r.Lo != tt.lo || r.Hi != tt.hi)) {
			t.Errorf("ParseRange(%q) = %v, %v", tt.in, r, err)
		}
		if !tt.ok && !errors.Is(err, ErrBadRange) {
			t.Errorf("ParseRange(%q) error %v does not wrap ErrBadRange", tt.in, err)
		}
	}
}

func TestGenerate(t *testing.T) {
	g := tree.GScale()
	w := DCCastWorkload()
	a, err := Generate(g, w, 7)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(g, w, 7)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed gave different workloads")
	}
	c, _ := Generate(g, w, 8)
	if reflect.DeepEqual(a, c) {
		t.Fatal("different seeds gave the same workload")
	}
	// About lambda x horizon transfers: 500, standard deviation about 22.
	if len(a) < 400 || len(a) > 600 {
		t.Fatalf("%d transfers, want about 500", len(a))
	}
	counts := map[int]int{}
	for i, tr := range a {
		if tr.ID != i || tr.Arrival < 0 || tr.Arrival >= w.Horizon || (i > 0 && tr.Arrival < a[i-1].Arrival) {
			t.Fatalf("transfer %d: id %d arrival %d out of order or range", i, tr.ID, tr.Arrival)
		}
		if len(tr.Dsts) < 1 || len(tr.Dsts) > 6 || tr.Volume < 10 {
			t.Fatalf("transfer %d: %d receivers, volume %v", i, len(tr.Dsts), tr.Volume)
		}
		counts[len(tr.Dsts)]++
		if slices.Contains(tr.Dsts, tr.Src) {
			t.Fatalf("transfer %d: source among receivers", i)
		}
		s := slices.Clone(tr.Dsts)
		slices.Sort(s)
		if len(slices.Compact(s)) != len(tr.Dsts) {
			t.Fatalf("transfer %d: duplicate receivers %v", i, tr.Dsts)
		}
	}
	for k := 1; k <= 6; k++ {
		if counts[k] == 0 {
			t.Errorf("no transfer with %d receivers", k)
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	g := tree.GScale()
	w := DCCastWorkload()
	for name, mod := range map[string]func(*Workload){
		"too many receivers": func(w *Workload) { w.Receivers = Range{1, 12} },
		"zero lambda":        func(w *Workload) { w.Lambda = 0 },
		"zero horizon":       func(w *Workload) { w.Horizon = 0 },
		"no volume":          func(w *Workload) { w.Volume = Volume{} },
	} {
		w2 := w
		mod(&w2)
		if _, err := Generate(g, w2, 1); !errors.Is(err, ErrBadWorkload) {
			t.Errorf("%s: error %v, want ErrBadWorkload", name, err)
		}
	}
}

func FuzzParseVolume(f *testing.F) {
	for _, s := range []string{"10+exp:20", "pareto:1.5,10", "const:3", "uniform:1,2+4", "exp:", "+", "1e308+1e308",
		"pareto:0.7,0.54,max=2000", "exp:20,max=", "max=3", "pareto:1,1,max=1e308"} {
		f.Add(s)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	f.Fuzz(func(t *testing.T, spec string) {
		v, err := ParseVolume(spec)
		if err != nil {
			if !errors.Is(err, ErrBadVolume) {
				t.Fatalf("error %v does not wrap ErrBadVolume", err)
			}
			return
		}
		if !(v.Mean() > 0) {
			t.Fatalf("%q: mean %v", spec, v.Mean())
		}
		if x := v.Sample(rng); !(x >= 0) {
			t.Fatalf("%q: sample %v", spec, x)
		}
	})
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"1-6", "3", "6-1", "-1", "1--2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRange(s, 1)
		if err != nil {
			if !errors.Is(err, ErrBadRange) {
				t.Fatalf("error %v does not wrap ErrBadRange", err)
			}
			return
		}
		if r.Lo < 1 || r.Hi < r.Lo {
			t.Fatalf("%q gave %v", s, r)
		}
	})
}
