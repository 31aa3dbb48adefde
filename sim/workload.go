package sim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/treecast/treecast/tree"
)

// Errors of the sim package. Functions wrap them with details; compare with errors.Is.
var (
	ErrBadVolume   = errors.New("sim: bad volume spec")
	ErrBadRange    = errors.New("sim: bad range")
	ErrBadWorkload = errors.New("sim: bad workload")
	ErrBadTrace    = errors.New("sim: bad trace")
	ErrBadScheme   = errors.New("sim: bad scheme")
	ErrScheduler   = errors.New("sim: scheduler broke an invariant")
)

// Transfer is one point-to-multipoint transfer of a workload: Volume units (one unit is what
// an arc of capacity 1 carries in one slot) from Src to every node of Dsts, arriving at the
// start of slot Arrival.
type Transfer struct {
	ID      int
	Arrival int
	Src     tree.NodeID
	Dsts    []tree.NodeID
	Volume  float64
}

// Volume is a distribution of transfer volumes: a sum of terms, each a constant or a random
// variable. Parse one with [ParseVolume].
type Volume struct {
	spec  string
	terms []volumeTerm
}

type volumeTerm struct {
	kind string // "const", "exp", "pareto", "uniform"
	a, b float64
	// cap, when > 0, bounds the term's samples: min(sample, cap) (exp and pareto only).
	cap float64
}

// String returns the spec the volume was parsed from.
func (v Volume) String() string { return v.spec }

// Mean returns the expected volume (+Inf for an uncapped Pareto term with alpha <= 1). A
// capped term's mean is that of min(X, cap): for exp:M,max=C it is M(1-e^(-C/M)); for
// pareto:A,L,max=C (C >= L) it is L + L^A (C^(1-A) - L^(1-A))/(1-A), or L(1 + ln(C/L)) when
// A = 1.
func (v Volume) Mean() float64 {
	m := 0.0
	for _, t := range v.terms {
		switch t.kind {
		case "const":
			m += t.a
		case "exp":
			if t.cap > 0 {
				m += t.a * -math.Expm1(-t.cap/t.a)
			} else {
				m += t.a
			}
		case "uniform":
			m += (t.a + t.b) / 2
		case "pareto":
			alpha, lo := t.a, t.b
			switch {
			case t.cap > 0 && t.cap <= lo:
				m += t.cap
			case t.cap > 0 && alpha == 1:
				m += lo * (1 + math.Log(t.cap/lo))
			case t.cap > 0:
				m += lo + math.Pow(lo, alpha)*(math.Pow(t.cap, 1-alpha)-math.Pow(lo, 1-alpha))/(1-alpha)
			case alpha <= 1:
				return math.Inf(1)
			default:
				m += alpha * lo / (alpha - 1)
			}
		}
	}
	return m
}

// Sample draws one volume. Cost O(number of terms).
func (v Volume) Sample(rng *rand.Rand) float64 {
	s := 0.0
	for _, t := range v.terms {
		switch t.kind {
		case "const":
			s += t.a
		case "exp":
			s += capped(rng.ExpFloat64()*t.a, t.cap)
		case "uniform":
			s += t.a + rng.Float64()*(t.b-t.a)
		case "pareto":
			// Inverse CDF: MIN / U^(1/alpha), U in (0, 1].
			s += capped(t.b/math.Pow(1-rng.Float64(), 1/t.a), t.cap)
		}
	}
	return s
}

// ParseVolume parses a volume spec: terms joined by '+', each one of
//
//	X                       the constant X (also const:X)
//	exp:MEAN[,max=C]        exponential with mean MEAN, capped at C
//	pareto:ALPHA,MIN[,max=C] Pareto with shape ALPHA and scale (minimum) MIN: heavy-tailed,
//	                        capped at C
//	uniform:A,B             uniform on [A, B]
//
// A cap replaces every sample above C by C (QuickCast caps its heavy-tailed sizes at 2,000);
// it must be > 0 (and >= MIN for pareto). DCCast's workload is "10+exp:20". Every parameter
// must be a finite number, constants >= 0, means, shapes and minimums > 0, and the sum must
// be able to exceed 0. Errors wrap ErrBadVolume and name the term.
func ParseVolume(spec string) (Volume, error) {
	v := Volume{spec: spec}
	if strings.TrimSpace(spec) == "" {
		return v, fmt.Errorf("%w: empty", ErrBadVolume)
	}
	for _, raw := range strings.Split(spec, "+") {
		term := strings.TrimSpace(raw)
		kind, args, hasArgs := strings.Cut(term, ":")
		if !hasArgs {
			kind, args = "const", term
		}
		capSpec := ""
		if i := strings.Index(args, ",max="); i >= 0 {
			args, capSpec = args[:i], args[i+len(",max="):]
		} else if rest, ok := strings.CutPrefix(args, "max="); ok {
			args, capSpec = "", rest
		}
		nums, err := parseFloats(args)
		if err != nil {
			return v, fmt.Errorf("%w: %q: term %q: %v", ErrBadVolume, spec, term, err)
		}
		want := map[string]int{"const": 1, "exp": 1, "pareto": 2, "uniform": 2}[kind]
		if want == 0 {
			return v, fmt.Errorf("%w: %q: term %q: unknown distribution %q (want a number, const:X, exp:MEAN, pareto:ALPHA,MIN or uniform:A,B)", ErrBadVolume, spec, term, kind)
		}
		if len(nums) != want {
			return v, fmt.Errorf("%w: %q: term %q: %s takes %d number(s)", ErrBadVolume, spec, term, kind, want)
		}
		t := volumeTerm{kind: kind, a: nums[0]}
		if want == 2 {
			t.b = nums[1]
		}
		if capSpec != "" {
			c, err := parseFloats(capSpec)
			switch {
			case kind != "exp" && kind != "pareto":
				return v, fmt.Errorf("%w: %q: term %q: only exp and pareto take max=", ErrBadVolume, spec, term)
			case err != nil || len(c) != 1:
				return v, fmt.Errorf("%w: %q: term %q: max=%s is not one number", ErrBadVolume, spec, term, capSpec)
			case c[0] <= 0 || (kind == "pareto" && c[0] < t.b):
				return v, fmt.Errorf("%w: %q: term %q: cap %v must be > 0 and at least the minimum", ErrBadVolume, spec, term, c[0])
			}
			t.cap = c[0]
		}
		switch {
		case kind == "const" && t.a < 0:
			return v, fmt.Errorf("%w: %q: negative constant %v", ErrBadVolume, spec, t.a)
		case kind == "exp" && t.a <= 0:
			return v, fmt.Errorf("%w: %q: exponential mean %v must be > 0", ErrBadVolume, spec, t.a)
		case kind == "pareto" && (t.a <= 0 || t.b <= 0):
			return v, fmt.Errorf("%w: %q: pareto shape %v and minimum %v must be > 0", ErrBadVolume, spec, t.a, t.b)
		case kind == "uniform" && (t.a < 0 || t.b < t.a):
			return v, fmt.Errorf("%w: %q: uniform:%v,%v needs 0 <= A <= B", ErrBadVolume, spec, t.a, t.b)
		}
		v.terms = append(v.terms, t)
	}
	if v.Mean() <= 0 {
		return v, fmt.Errorf("%w: %q: volume is always 0", ErrBadVolume, spec)
	}
	return v, nil
}

func capped(x, c float64) float64 {
	if c > 0 {
		return min(x, c)
	}
	return x
}

func parseFloats(s string) ([]float64, error) {
	var out []float64
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		x, err := strconv.ParseFloat(p, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%q is not a finite number", p)
		}
		out = append(out, x)
	}
	return out, nil
}

// Range is an inclusive range of whole numbers, such as receivers per transfer or seeds.
type Range struct{ Lo, Hi int }

// ParseRange parses "A-B" (A <= B) or a single number "A". Both ends must be >= min. Errors
// wrap ErrBadRange and name the text.
func ParseRange(s string, min int) (Range, error) {
	lo, hi, isRange := strings.Cut(strings.TrimSpace(s), "-")
	if !isRange {
		hi = lo
	}
	a, errA := strconv.Atoi(strings.TrimSpace(lo))
	b, errB := strconv.Atoi(strings.TrimSpace(hi))
	switch {
	case errA != nil || errB != nil:
		return Range{}, fmt.Errorf("%w: %q: want A-B or A with whole numbers", ErrBadRange, s)
	case a > b:
		return Range{}, fmt.Errorf("%w: %q: %d > %d", ErrBadRange, s, a, b)
	case a < min:
		return Range{}, fmt.Errorf("%w: %q: %d is below %d", ErrBadRange, s, a, min)
	}
	return Range{a, b}, nil
}

// String returns "A-B", or "A" when both ends are equal.
func (r Range) String() string {
	if r.Lo == r.Hi {
		return strconv.Itoa(r.Lo)
	}
	return fmt.Sprintf("%d-%d", r.Lo, r.Hi)
}

// Workload describes a random workload: arrivals form a Poisson process of rate Lambda per
// slot from slot 0 until slot Horizon (exclusive); each transfer has a source drawn uniformly
// from the topology's endpoints, a number of receivers uniform in Receivers, drawn without
// replacement from the other endpoints, and a volume drawn from Volume.
type Workload struct {
	Lambda    float64
	Receivers Range
	Volume    Volume
	Horizon   int
}

// DCCastWorkload returns the workload of the DCCast paper: lambda 1, 1 to 6 receivers, volume
// 10+exp:20, arrivals until slot 500.
func DCCastWorkload() Workload {
	v, _ := ParseVolume("10+exp:20")
	return Workload{Lambda: 1, Receivers: Range{1, 6}, Volume: v, Horizon: 500}
}

// Validate checks the workload against the topology g (nil skips the topology checks). Errors
// wrap ErrBadWorkload and name the offending value.
func (w Workload) Validate(g *tree.Graph) error {
	switch {
	case !(w.Lambda > 0) || math.IsInf(w.Lambda, 0):
		return fmt.Errorf("%w: lambda %v must be a positive number", ErrBadWorkload, w.Lambda)
	case w.Horizon < 1:
		return fmt.Errorf("%w: horizon %d must be >= 1", ErrBadWorkload, w.Horizon)
	case w.Receivers.Lo < 1 || w.Receivers.Hi < w.Receivers.Lo:
		return fmt.Errorf("%w: receivers %s: want 1 <= A <= B", ErrBadWorkload, w.Receivers)
	case len(w.Volume.terms) == 0:
		return fmt.Errorf("%w: no volume distribution", ErrBadWorkload)
	}
	if g != nil {
		if n := len(g.Endpoints()) - 1; w.Receivers.Hi > n {
			return fmt.Errorf("%w: up to %d receivers per transfer, but %s has only %d endpoints besides the source",
				ErrBadWorkload, w.Receivers.Hi, g.Name(), n)
		}
	}
	return nil
}

// Generate draws the workload's transfers on g with the given seed: the same seed, workload
// and topology give the same transfers. Transfers are sorted by arrival and numbered from 0.
// Cost O(transfers x receivers) expected, plus O(endpoints) per transfer.
func Generate(g *tree.Graph, w Workload, seed uint64) ([]Transfer, error) {
	if err := w.Validate(g); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0x73696d776b6c64))
	ends := g.Endpoints()
	pool := make([]tree.NodeID, len(ends))
	var out []Transfer
	t := 0.0
	for {
		// A Poisson process of rate lambda: exponential gaps; a transfer arrives at the start of
		// the slot its arrival instant falls in, so the count per slot is Poisson(lambda).
		t += rng.ExpFloat64() / w.Lambda
		if t >= float64(w.Horizon) {
			break
		}
		copy(pool, ends)
		si := rng.IntN(len(pool))
		src := pool[si]
		pool[si] = pool[len(pool)-1]
		others := pool[:len(pool)-1]
		k := w.Receivers.Lo + rng.IntN(w.Receivers.Hi-w.Receivers.Lo+1)
		dsts := make([]tree.NodeID, k)
		for i := range k { // partial Fisher-Yates
			j := i + rng.IntN(len(others)-i)
			others[i], others[j] = others[j], others[i]
			dsts[i] = others[i]
		}
		out = append(out, Transfer{ID: len(out), Arrival: int(t), Src: src, Dsts: dsts, Volume: w.Volume.Sample(rng)})
	}
	return out, nil
}
