package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	pb "github.com/treecast/treecast/proto/treecast/v1"
)

func init() { commands = append(commands, newStatusCmd, newWatchCmd, newCancelCmd) }

func newWatchCmd() *cobra.Command {
	var (
		agent  string
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "watch ID",
		Short: "Follow a push: live progress, then its report (the same view as push)",
		Long: `Reattach to a push the agent runs (its id is printed by push and listed by status): progress
as push shows it, then the report. A finished push's report is printed at once. Ctrl-C
detaches again; the push goes on. Exit status as push's: 0, 1, 3, or 130 when detached.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			client, done, err := dialAgent(c, agent)
			if err != nil {
				return err
			}
			defer done()
			s := &session{c: c, agent: agent, asJSON: asJSON}
			return s.run(func(ctx context.Context) (eventStream, error) {
				return client.Watch(ctx, &pb.WatchRequest{PushId: args[0]})
			})
		},
	}
	agentFlag(c, &agent)
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON object instead of progress and a table")
	return c
}

func newStatusCmd() *cobra.Command {
	var (
		agent  string
		asJSON bool
		limit  int
	)
	c := &cobra.Command{
		Use:   "status [ID]",
		Short: "List the agent's recent pushes, or show one push's report",
		Long: `Without ID, list the pushes the agent runs or ran, newest first: id, state (storing,
running, following, done, cancelled, failed), target, receivers verified, failed and offline.
With ID, that push's state and its report so far (every member the target matched).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if limit < 0 {
				return usageErr(fmt.Errorf("--limit %d: must not be negative", limit))
			}
			client, done, err := dialAgent(c, agent)
			if err != nil {
				return err
			}
			defer done()
			req := &pb.ListPushesRequest{Limit: uint32(limit)}
			if len(args) == 1 {
				req.PushId = args[0]
			}
			resp, err := client.ListPushes(c.Context(), req)
			if err != nil {
				return rpcError(agent, err)
			}
			if asJSON {
				var out []pushInfoJSON
				for _, p := range resp.GetPushes() {
					out = append(out, pushInfoOf(p))
				}
				return encodeJSON(c.OutOrStdout(), out)
			}
			if len(args) == 1 {
				writePushInfo(c.OutOrStdout(), resp.GetPushes()[0])
				return nil
			}
			writePushList(c.OutOrStdout(), resp.GetPushes())
			return nil
		},
	}
	agentFlag(c, &agent)
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.Flags().IntVar(&limit, "limit", 0, "list at most this many pushes (0: the agent's default, 50)")
	return c
}

func newCancelCmd() *cobra.Command {
	var agent string
	c := &cobra.Command{
		Use:   "cancel ID",
		Short: "Stop a push: receivers keep what they verified, resumable",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			client, done, err := dialAgent(c, agent)
			if err != nil {
				return err
			}
			defer done()
			resp, err := client.CancelPush(c.Context(), &pb.CancelPushRequest{PushId: args[0]})
			if err != nil {
				return rpcError(agent, err)
			}
			fmt.Fprintf(c.OutOrStdout(), "push %s: %s\n", args[0], resp.GetState())
			return nil
		},
	}
	agentFlag(c, &agent)
	return c
}

// pushInfoJSON is the --json form of a push in status.
type pushInfoJSON struct {
	ID          string         `json:"id"`
	State       string         `json:"state"`
	Target      string         `json:"target"`
	Digest      string         `json:"digest,omitempty"`
	Size        uint64         `json:"size"`
	Started     time.Time      `json:"started"`
	Ended       *time.Time     `json:"ended,omitempty"`
	FollowUntil *time.Time     `json:"follow_until,omitempty"`
	Error       string         `json:"error,omitempty"`
	Receivers   []receiverJSON `json:"receivers"`
}

func pushInfoOf(p *pb.PushInfo) pushInfoJSON {
	out := pushInfoJSON{ID: p.GetPushId(), State: p.GetState(), Target: p.GetTarget(), Digest: p.GetDigest(), Size: p.GetSize(),
		Started: p.GetStarted().AsTime(), Error: p.GetError(), Receivers: reportJSON(p.GetReport()).Receivers}
	if p.GetEnded() != nil {
		t := p.GetEnded().AsTime()
		out.Ended = &t
	}
	if p.GetFollowUntil() != nil {
		t := p.GetFollowUntil().AsTime()
		out.FollowUntil = &t
	}
	return out
}

func writePushList(w io.Writer, ps []*pb.PushInfo) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tTARGET\tVERIFIED\tFAILED\tOFFLINE\tSTARTED\tDIGEST")
	for _, p := range ps {
		v, f, o := countResults(p.GetReport())
		d := p.GetDigest()
		if len(d) > 19 {
			d = d[:19] + "…"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", p.GetPushId(), p.GetState(), p.GetTarget(), v, f, o,
			p.GetStarted().AsTime().Local().Format(time.DateTime), d)
	}
	tw.Flush()
}

func writePushInfo(w io.Writer, p *pb.PushInfo) {
	fmt.Fprintf(w, "push %s: %s\n  target  %s\n  object  %s (%d bytes)\n  started %s\n", p.GetPushId(), p.GetState(), p.GetTarget(),
		p.GetDigest(), p.GetSize(), p.GetStarted().AsTime().Local().Format(time.DateTime))
	if p.GetEnded() != nil {
		fmt.Fprintf(w, "  ended   %s\n", p.GetEnded().AsTime().Local().Format(time.DateTime))
	}
	if p.GetFollowUntil() != nil {
		fmt.Fprintf(w, "  follows members that come back until %s\n", p.GetFollowUntil().AsTime().Local().Format(time.DateTime))
	}
	if p.GetError() != "" {
		fmt.Fprintf(w, "  error   %s\n", p.GetError())
	}
	writeReport(w, p.GetReport(), p.GetSize())
}
