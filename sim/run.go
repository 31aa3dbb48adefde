package sim

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/treecast/treecast/tree"
)

// Scheme is one way of delivering the transfers: a tree policy of the scheduler, where the
// network replicates (Overlay false), or an overlay strategy, where only the agents do.
type Scheme struct {
	// Name is the scheme as written: "dccast", "p2p-k3", "overlay:chain".
	Name string
	// Overlay is true for "overlay:STRATEGY" schemes.
	Overlay bool
	// Policy is the scheduler's tree policy (network schemes) or the overlay strategy.
	Policy string
	// Rate, when set ("dccast@maxmin"), overrides the experiment's rate policy for this
	// network scheme.
	Rate string
}

var (
	networkPolicies = []string{"dccast", "random", "minmax", "spt", "p2p", "p2p-lp", "quickcast", "multitree"}
	overlayPolicies = []string{"chain", "tree", "forest", "unicast"}
	kSuffix         = regexp.MustCompile(`^(p2p|p2p-lp|multitree)-k[1-9][0-9]?$`)
)

// ParseScheme parses one scheme: a tree policy (dccast, random, minmax, spt, p2p, p2p-kN,
// p2p-lp, p2p-lp-kN, quickcast, multitree, multitree-kN), optionally followed by @RATE (fcfs, srpt, maxmin) to
// give it its own rate policy, or overlay:STRATEGY (chain, tree, forest, unicast). Errors
// wrap ErrBadScheme and list the choices.
func ParseScheme(s string) (Scheme, error) {
	s = strings.TrimSpace(s)
	if base, rate, ok := strings.Cut(s, "@"); ok {
		sc, err := ParseScheme(base)
		if err != nil {
			return Scheme{}, err
		}
		if sc.Overlay {
			return Scheme{}, fmt.Errorf("%w: %q: overlay schemes have no rate policy", ErrBadScheme, s)
		}
		if !slices.Contains(RatePolicies, rate) {
			return Scheme{}, fmt.Errorf("%w: %q: unknown rate policy %q (want %s)", ErrBadScheme, s, rate, strings.Join(RatePolicies, ", "))
		}
		sc.Name, sc.Rate = s, rate
		return sc, nil
	}
	if strat, ok := strings.CutPrefix(s, "overlay:"); ok {
		for _, p := range overlayPolicies {
			if strat == p {
				return Scheme{Name: s, Overlay: true, Policy: p}, nil
			}
		}
		return Scheme{}, fmt.Errorf("%w: %q: unknown overlay strategy (want overlay: followed by %s)",
			ErrBadScheme, s, strings.Join(overlayPolicies, ", "))
	}
	for _, p := range networkPolicies {
		if s == p {
			return Scheme{Name: s, Policy: p}, nil
		}
	}
	if kSuffix.MatchString(s) {
		return Scheme{Name: s, Policy: s}, nil
	}
	return Scheme{}, fmt.Errorf("%w: %q (want %s, p2p-kN, p2p-lp-kN, multitree-kN, or overlay:%s)", ErrBadScheme, s,
		strings.Join(networkPolicies, ", "), strings.Join(overlayPolicies, "|"))
}

// ParseSchemes parses a comma-separated list of schemes; duplicates are an error.
func ParseSchemes(list string) ([]Scheme, error) {
	var out []Scheme
	seen := map[string]bool{}
	for _, s := range strings.Split(list, ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		sc, err := ParseScheme(s)
		if err != nil {
			return nil, err
		}
		if seen[sc.Name] {
			return nil, fmt.Errorf("%w: %q listed twice", ErrBadScheme, sc.Name)
		}
		seen[sc.Name] = true
		out = append(out, sc)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no scheme in %q", ErrBadScheme, list)
	}
	return out, nil
}

// Rate policies of network schemes.
var RatePolicies = []string{"fcfs", "srpt", "maxmin"}

// Config is one run: one scheme on one list of transfers.
type Config struct {
	Graph  *tree.Graph
	Scheme Scheme
	// Rate is the scheduler's rate policy for network schemes: fcfs (default), srpt or maxmin.
	Rate string
	// Seed seeds the scheduler's random choices (the random tree policy); it is reported in
	// the result.
	Seed uint64
	// ChunkVolume is the chunk size of overlay schemes, in volume units (default 1).
	ChunkVolume float64
	// Planner overrides the overlay plans (default: the scheduler's plans for the scheme's
	// strategy).
	Planner Planner
	// Progress, when set, is called as transfers complete.
	Progress func(done, total int)
}

// capacities returns every arc's capacity in units per slot: an arc of the default capacity
// (10 Gbit/s) carries one unit per slot.
func capacities(g *tree.Graph) []float64 {
	c := make([]float64, g.NumArcs())
	for a := range c {
		c[a] = g.Arc(tree.ArcID(a)).Capacity / tree.DefaultCapacity
	}
	return c
}

// Run simulates cfg.Scheme on transfers (sorted by arrival, IDs 0..n-1) and returns what it
// measured. When ctx is cancelled it stops and returns the result so far (completed
// transfers only) together with ctx.Err(). Errors from the scheduler or a broken plan are
// returned wrapped.
func Run(ctx context.Context, cfg Config, transfers []Transfer) (Result, error) {
	start := time.Now()
	res := Result{Scheme: cfg.Scheme.Name, Topology: cfg.Graph.Name(), Seed: cfg.Seed, Transfers: len(transfers)}
	var err error
	if cfg.Scheme.Overlay {
		err = runOverlay(ctx, cfg, transfers, &res)
	} else {
		err = runNetwork(ctx, cfg, transfers, &res)
	}
	res.summarize()
	res.WallMS = float64(time.Since(start).Microseconds()) / 1000
	if err == nil {
		err = ctx.Err()
	}
	return res, err
}

func runOverlay(ctx context.Context, cfg Config, transfers []Transfer, res *Result) error {
	chunk := cfg.ChunkVolume
	if chunk == 0 {
		chunk = 1
	}
	if !(chunk > 0) {
		return fmt.Errorf("%w: chunk volume %v must be > 0", ErrBadScheme, chunk)
	}
	plan := cfg.Planner
	if plan == nil {
		var err error
		if plan, err = schedulerPlanner(cfg.Graph, cfg.Scheme.Policy); err != nil {
			return err
		}
	}
	e := &overlayEngine{g: cfg.Graph, capacity: capacities(cfg.Graph), chunk: chunk, plan: plan, progress: cfg.Progress}
	return e.run(ctx, transfers, res)
}
