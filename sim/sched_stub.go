package sim

import (
	"context"
	"fmt"

	"github.com/treecast/treecast/tree"
)

func schedulerPlanner(g *tree.Graph, strategy string) (Planner, error) {
	return nil, fmt.Errorf("%w: overlay plans need the scheduler", ErrBadScheme)
}

func runNetwork(ctx context.Context, cfg Config, transfers []Transfer, res *Result) error {
	return fmt.Errorf("%w: network schemes need the scheduler", ErrBadScheme)
}
