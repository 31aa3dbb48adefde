package sim

import (
	"context"
	"fmt"
)

func runNetwork(ctx context.Context, cfg Config, transfers []Transfer, res *Result) error {
	return fmt.Errorf("%w: %s: network schemes need the scheduler's transfer scheduling (scheduler.New), which this build lacks; overlay:STRATEGY schemes work", ErrBadScheme, cfg.Scheme.Name)
}
