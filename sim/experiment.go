package sim

import (
	"context"
	"errors"
	"fmt"

	"github.com/treecast/treecast/tree"
)

// Experiment runs every scheme on the workload of every seed.
type Experiment struct {
	Graph   *tree.Graph
	Schemes []Scheme
	// Rate is the rate policy of network schemes (default fcfs).
	Rate string
	// Workload is drawn anew for each seed, unless Trace is set: then every seed replays the
	// trace (the seed still drives the scheduler's random choices).
	Workload Workload
	Trace    []Transfer
	Seeds    Range
	// ChunkVolume is the chunk size of overlay schemes (default 1 unit).
	ChunkVolume float64
	// Progress, when set, is called as transfers complete: run is the index of the current
	// run (scheme x seed) among runs, done of total transfers of that run are complete.
	Progress func(p Progress)
}

// Progress reports how far an experiment is.
type Progress struct {
	Scheme      string
	Seed        uint64
	Run, Runs   int
	Done, Total int
}

// Run runs the experiment, seeds in the outer loop and schemes in the inner one, so that an
// interrupted experiment has compared every scheme on the seeds it finished. When ctx is
// cancelled it returns the results of the runs so far (the interrupted run included, with
// its completed transfers) and ctx.Err(). Any other error stops the experiment at once.
func (x Experiment) Run(ctx context.Context) ([]Result, error) {
	if len(x.Schemes) == 0 {
		return nil, fmt.Errorf("%w: no schemes", ErrBadScheme)
	}
	runs := len(x.Schemes) * (x.Seeds.Hi - x.Seeds.Lo + 1)
	var out []Result
	run := 0
	for seed := x.Seeds.Lo; seed <= x.Seeds.Hi; seed++ {
		transfers := x.Trace
		if transfers == nil {
			var err error
			if transfers, err = Generate(x.Graph, x.Workload, uint64(seed)); err != nil {
				return out, err
			}
		}
		for _, sc := range x.Schemes {
			cfg := Config{Graph: x.Graph, Scheme: sc, Rate: x.Rate, Seed: uint64(seed), ChunkVolume: x.ChunkVolume}
			if x.Progress != nil {
				p := Progress{Scheme: sc.Name, Seed: uint64(seed), Run: run, Runs: runs, Total: len(transfers)}
				x.Progress(p)
				cfg.Progress = func(done, total int) {
					p.Done, p.Total = done, total
					x.Progress(p)
				}
			}
			res, err := Run(ctx, cfg, transfers)
			run++
			if err != nil {
				if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
					out = append(out, res)
				}
				return out, fmt.Errorf("%s seed %d: %w", sc.Name, seed, err)
			}
			out = append(out, res)
		}
	}
	return out, nil
}
