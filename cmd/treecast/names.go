package main

import (
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/treecast/treecast/node"
	pb "github.com/treecast/treecast/proto/treecast/v1"
)

func init() { commands = append(commands, newTagsCmd, newRmCmd, newChannelsCmd) }

func newTagsCmd() *cobra.Command {
	var agent string
	c := &cobra.Command{
		Use:   "tags",
		Short: "List the tags (NAME:VERSION, from push --tag) an agent knows, and whether it holds each object",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			client, done, err := dialAgent(c, agent)
			if err != nil {
				return err
			}
			defer done()
			resp, err := client.Tags(c.Context(), &pb.TagsRequest{})
			if err != nil {
				return fmt.Errorf("agent %s: %w", agent, err)
			}
			w := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TAG\tDIGEST\tHELD\tRECORDED")
			for _, t := range resp.GetTags() {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.GetTag(), t.GetDigest(), yesNo(t.GetHeld()), ago(t.GetCreated().AsTime()))
			}
			return w.Flush()
		},
	}
	agentFlag(c, &agent)
	return c
}

func newRmCmd() *cobra.Command {
	var agent, to string
	var force bool
	c := &cobra.Command{
		Use:   "rm DIGEST|NAME:VERSION [--to TARGET]",
		Short: "Remove an object (and the tags naming it) from the agent's store, or from every agent a target selects",
		Long: `Remove the object named by a digest or a tag from the agent's store (complete or staged), with
the tags that name it. With --to (names a,b; selector rack=r1; channel:NAME; all), every alive
agent the target selects removes it, the agent asked included when it matches.

A channel's latest version is refused unless --force (a subscriber then fetches it again).
Exit status: 0 when every agent asked answered and at least one removed it; 1 otherwise.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if _, _, err := node.ParseRef(args[0]); err != nil {
				return usageErr(fmt.Errorf("%q: want a digest sha256:<64 hex digits> or a tag NAME:VERSION: %w", args[0], err))
			}
			req := &pb.RemoveRequest{Ref: args[0], Force: force}
			if to != "" {
				t, err := parseTarget(to)
				if err != nil {
					return usageErr(err)
				}
				req.Target = t
				// The agent relays the remove to the others, which want the operator's
				// signed consent (a node's own certificate is not enough).
				src, err := tlsSource(c)
				if err != nil {
					return err
				}
				if src != nil {
					if req.Grant, err = node.SignRemove(src, req.Ref, force, time.Now()); err != nil {
						return fmt.Errorf("rm: %w", err)
					}
				}
			}
			client, done, err := dialAgent(c, agent)
			if err != nil {
				return err
			}
			defer done()
			resp, err := client.Remove(c.Context(), req)
			if err != nil {
				return refusedAsUsage(fmt.Errorf("rm: agent %s: %w", agent, err))
			}
			w := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NODE\tDIGEST\tRESULT")
			removed, failed := 0, 0
			for _, r := range resp.GetResults() {
				res := "not held"
				switch {
				case r.GetError() != "":
					res = "failed: " + r.GetError()
					failed++
				case r.GetRemoved():
					res = "removed"
					removed++
				}
				fmt.Fprintf(w, "%s\t%s\t%s\n", r.GetNode(), orDash(r.GetDigest()), res)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			switch {
			case failed > 0:
				return &exitError{code: 1, err: fmt.Errorf("rm: %d of %d agents failed", failed, len(resp.GetResults()))}
			case removed == 0:
				return &exitError{code: 1, err: fmt.Errorf("rm: no agent held %s", args[0])}
			}
			return nil
		},
	}
	agentFlag(c, &agent)
	c.Flags().StringVar(&to, "to", "", "remove on every agent this target selects (default: the agent asked only)")
	c.Flags().BoolVar(&force, "force", false, "remove a channel's latest version too")
	return c
}

func newChannelsCmd() *cobra.Command {
	var agent string
	c := &cobra.Command{
		Use:   "channels",
		Short: "List the channels an agent knows (latest version, held version); 'channels rm NAME' deletes one",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			st, err := agentStatus(c, agent)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "CHANNEL\tSUBSCRIBED\tVERSION\tDIGEST\tHELD")
			for _, ch := range st.GetChannels() {
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", ch.GetName(), yesNo(ch.GetSubscribed()), ch.GetVersion(), orDash(ch.GetDigest()), orDash(ch.GetHeldDigest()))
			}
			return w.Flush()
		},
	}
	agentFlag(c, &agent)
	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Delete a channel on every agent (a signed deletion, spread by gossip like a publish)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if args[0] == "" {
				return usageErr(errors.New("empty channel name"))
			}
			client, done, err := dialAgent(c, agent)
			if err != nil {
				return err
			}
			defer done()
			resp, err := client.DeleteChannel(c.Context(), &pb.DeleteChannelRequest{Name: args[0]})
			if err != nil {
				return refusedAsUsage(fmt.Errorf("channels rm %s: agent %s: %w", args[0], agent, err))
			}
			fmt.Fprintf(c.OutOrStdout(), "channel %s deleted (version %d)\n", args[0], resp.GetVersion())
			return nil
		},
	}
	agentFlag(rm, &agent)
	c.AddCommand(rm)
	return c
}
