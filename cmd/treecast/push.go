package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/treecast/treecast/node"

	pb "github.com/treecast/treecast/proto/treecast/v1"
)

func init() { commands = append(commands, newPushCmd) }

// pushFlags are the options shared by push and demo.
type pushFlags struct {
	strategy string
	fanout   int
	stripes  int
	parity   int
	chunk    string
	asJSON   bool
	rate     string
}

func (f *pushFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.strategy, "strategy", "auto", "overlay strategy: auto (the scheduler chooses for the network), chain, tree, forest or unicast")
	c.Flags().IntVar(&f.fanout, "fanout", 0, "children per node per tree (0: the strategy's default)")
	c.Flags().IntVar(&f.stripes, "stripes", 0, "stripes of the forest strategy (0: its default)")
	c.Flags().IntVar(&f.parity, "parity", 0, "Reed-Solomon parity trees of a forest: a receiver that loses that many trees still decodes")
	c.Flags().StringVar(&f.chunk, "chunk", "", "chunk size of a new object (default: the plan chooses)")
	c.Flags().BoolVar(&f.asJSON, "json", false, "print one JSON object instead of progress and a table")
	c.Flags().StringVar(&f.rate, "rate-limit", "", "cap on this push's sending on every agent it passes, e.g. 100M, 1G (bytes per second; the agents' own --rate-limit still applies)")
}

func (f *pushFlags) options() (*pb.PushOptions, error) {
	var chunk int64
	if f.chunk != "" {
		var err error
		if chunk, err = parseSize(f.chunk); err != nil {
			return nil, usageErr(fmt.Errorf("--chunk: %w", err))
		}
	}
	if chunk > 64<<20 {
		return nil, usageErr(fmt.Errorf("--chunk %s: at most 64MiB", f.chunk))
	}
	strategies := map[string]pb.Strategy{
		"auto": pb.Strategy_STRATEGY_AUTO, "chain": pb.Strategy_STRATEGY_CHAIN, "tree": pb.Strategy_STRATEGY_TREE,
		"forest": pb.Strategy_STRATEGY_FOREST, "unicast": pb.Strategy_STRATEGY_UNICAST,
	}
	st, ok := strategies[f.strategy]
	if !ok {
		return nil, usageErr(fmt.Errorf("unknown strategy %q (want auto, chain, tree, forest or unicast)", f.strategy))
	}
	if f.fanout < 0 || f.stripes < 0 || f.parity < 0 {
		return nil, usageErr(fmt.Errorf("--fanout, --stripes and --parity must not be negative"))
	}
	if f.parity > 0 && st != pb.Strategy_STRATEGY_FOREST && st != pb.Strategy_STRATEGY_AUTO {
		return nil, usageErr(fmt.Errorf("--parity %d needs --strategy forest or auto", f.parity))
	}
	var rate int64
	if f.rate != "" {
		var err error
		if rate, err = node.ParseRate(f.rate); err != nil || rate <= 0 {
			return nil, usageErr(fmt.Errorf("--rate-limit %q: want a positive byte rate such as 100M or 1G", f.rate))
		}
	}
	return &pb.PushOptions{ChunkSize: uint32(chunk), Strategy: st, Fanout: uint32(f.fanout), Stripes: uint32(f.stripes), Parity: uint32(f.parity),
		RateLimit: uint64(rate)}, nil
}

func newPushCmd() *cobra.Command {
	var (
		pf      pushFlags
		agent   string
		to      string
		channel string
		tag     string
	)
	c := &cobra.Command{
		Use:   "push FILE|DIGEST --to TARGET",
		Short: "Push an object through the local agent to a group of agents",
		Long: `Push an object to every agent the target selects, down the planned overlay trees, and wait
until every receiver has verified its copy (or failed). FILE is read by the agent, so it must
lie inside the agent's data directory; an object the agent already holds is named by its
digest (sha256:...). TARGET is node names (a,b,c), a label selector (rack=r1, pod=p2,dc=east),
channel:NAME (every subscriber) or all.

While the push runs, progress bars show the whole push and, when the terminal is tall enough,
each receiver; without a terminal, plain lines. The command ends with a table of receivers
(status, time, throughput) and exits 0 only if every receiver verified its copy.`,
		Example: `  treecast push /var/lib/treecast/app.tar --to channel:web
  treecast push sha256:9f86d0... --to rack=r1 --strategy forest --stripes 4 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opts, err := pf.options()
			if err != nil {
				return err
			}
			target, err := parseTarget(to)
			if err != nil {
				return usageErr(err)
			}
			if err := checkPushNames(tag, channel); err != nil {
				return err
			}
			req := &pb.SubmitRequest{Target: target, Options: opts, Channel: channel, Tag: tag}
			if err := objectRequest(req, args[0]); err != nil {
				return usageErr(err)
			}
			client, done, err := dialAgent(c, agent)
			if err != nil {
				return err
			}
			defer done()
			stream, err := client.Submit(c.Context(), req)
			if err != nil {
				return fmt.Errorf("agent %s: %w", agent, err)
			}
			plan, report, err := followPush(stream, newPushView(c.ErrOrStderr(), pf.asJSON))
			if err != nil {
				return refusedAsUsage(fmt.Errorf("push: %w", err))
			}
			return finishPush(c, report, plan, pf.asJSON)
		},
	}
	pf.register(c)
	agentFlag(c, &agent)
	c.Flags().StringVar(&to, "to", "", "receivers: names a,b; selector rack=r1; channel:NAME; or all")
	c.Flags().StringVar(&channel, "channel", "", "publish the object as this channel's latest version (receivers record it; --to may be any target)")
	c.Flags().StringVar(&tag, "tag", "", "name the object NAME:VERSION on every receiver and the source (treecast get NAME:VERSION)")
	return c
}

// finishPush prints the report (table or JSON) and turns failed receivers into exit code 1.
func finishPush(c *cobra.Command, report *pb.Report, plan *pb.PlanEvent, asJSON bool) error {
	if asJSON {
		out := reportJSON(report)
		if s := plan.GetSummary(); s != nil {
			sm := summaryOf(s)
			out.Plan = &sm
		}
		if err := encodeJSON(c.OutOrStdout(), out); err != nil {
			return err
		}
	} else {
		writeReport(c.OutOrStdout(), report, plan.GetManifest().GetSize())
	}
	verified, failed := countResults(report)
	if failed > 0 || verified == 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d receivers failed", failed, verified+failed)}
	}
	return nil
}
