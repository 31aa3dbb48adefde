package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

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
	if chunk != 0 && chunk < node.MinChunkSize {
		return nil, usageErr(fmt.Errorf("--chunk %s: at least 4KiB", f.chunk))
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
		follow  time.Duration
		detach  bool
	)
	c := &cobra.Command{
		Use:   "push FILE|-|agent:PATH|DIGEST --to TARGET",
		Short: "Push an object through the local agent to a group of agents",
		Long: `Push an object to every agent the target selects, down the planned overlay trees, and wait
until every receiver has verified its copy (or failed).

FILE is read here and uploaded to the agent, which stores it as it arrives (one copy on its
disk) and then pushes it; - uploads standard input. A file that changes while it is read
(its size, modification or change time, or for files up to 64 MiB the digest of a second
read) fails the push: nothing is stored or pushed. agent:PATH names a file on the agent's
own host, read there without a copy over the network; PATH must be absolute and lie inside
the agent's data directory. An object the agent already holds is named by its digest
(sha256:...). TARGET is node names (a,b,c), a label selector (rack=r1, pod=p2,dc=east),
channel:NAME (every subscriber) or all.

Every push has an id, printed when it starts, and runs on its agent to its end whatever
happens to this command: Ctrl-C detaches (once the upload is complete; before, it cancels
the upload), and 'treecast watch ID' reattaches; 'treecast status ID' shows its report and
'treecast cancel ID' stops it. The report lists every member the target matches; members
gossip does not see alive are listed offline and nothing is sent to them. A receiver that
fails, or an offline member that comes back, is fed again while the push runs; --follow
keeps feeding members that come back for that long after.

While the push runs, progress bars show the whole push and, when the terminal is tall enough,
each receiver; without a terminal, plain lines. The command ends with a table of receivers
(status, time, throughput; "held" when the receiver had the object already).

Exit status: 0 every receiver verified its copy; 1 some receiver failed (or the push could
not run); 2 usage error; 3 partial: the others verified but some matched members were
offline; 130 interrupted (the push goes on at its agent).`,
		Example: `  treecast push ./app.tar --to channel:web
  tar c site | treecast push - --to rack=r1
  treecast push agent:/var/lib/treecast/app.tar --to all
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
			if follow < 0 {
				return usageErr(fmt.Errorf("--follow %v: must not be negative", follow))
			}
			req := &pb.SubmitRequest{Target: target, Options: opts, Channel: channel, Tag: tag}
			if follow > 0 {
				req.Follow = durationpb.New(follow)
			}
			src, err := objectSource(c, req, args[0])
			if err != nil {
				return err
			}
			if src != nil && src.file != os.Stdin {
				defer src.file.Close()
			}
			client, done, err := dialAgent(c, agent)
			if err != nil {
				return err
			}
			defer done()
			s := &session{c: c, agent: agent, detach: detach, asJSON: pf.asJSON}
			if src == nil {
				return s.run(func(ctx context.Context) (eventStream, error) { return client.Submit(ctx, req) })
			}
			return s.run(func(ctx context.Context) (eventStream, error) {
				stream, err := client.Upload(ctx)
				if err != nil {
					return nil, err
				}
				hdr := &pb.UploadHeader{Submit: req, Size: src.size, Name: src.name}
				if err := stream.Send(&pb.UploadRequest{Msg: &pb.UploadRequest_Header{Header: hdr}}); err != nil {
					_, rerr := stream.Recv()
					return nil, rerr
				}
				s.uploading = make(chan struct{})
				go func() {
					defer close(s.uploading)
					s.uploadErr = src.upload(c.Context(), stream)
				}()
				return stream, nil
			})
		},
	}
	pf.register(c)
	agentFlag(c, &agent)
	c.Flags().StringVar(&to, "to", "", "receivers: names a,b; selector rack=r1; channel:NAME; or all")
	c.Flags().StringVar(&channel, "channel", "", "publish the object as this channel's latest version (receivers record it; --to may be any target)")
	c.Flags().StringVar(&tag, "tag", "", "name the object NAME:VERSION on every receiver and the source (treecast get NAME:VERSION)")
	c.Flags().DurationVar(&follow, "follow", 0, "after the push, keep feeding members the target matches that come back (or join) for this long, e.g. 24h")
	c.Flags().BoolVar(&detach, "detach", false, "print the push's id once it runs and return (follow it with 'treecast watch ID')")
	return c
}

// finishPush prints the report (table or JSON) and turns the outcome into the exit status:
// 1 when a receiver failed (or none verified), 3 when some were offline, else 0.
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
	verified, failed, offline := countResults(report)
	switch {
	case failed > 0 || verified+offline == 0:
		return &exitError{code: 1, err: fmt.Errorf("%d of %d receivers failed", failed, verified+failed+offline)}
	case offline > 0:
		return &exitError{code: 3, err: fmt.Errorf("partial: %d of %d receivers offline (nothing sent to them)", offline, verified+offline)}
	}
	return nil
}
