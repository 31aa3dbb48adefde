package main

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	pb "github.com/treecast/treecast/proto/treecast/v1"
)

func init() { commands = append(commands, newLsCmd, newMembersCmd) }

func newLsCmd() *cobra.Command {
	var agent string
	var asJSON bool
	c := &cobra.Command{
		Use:   "ls",
		Short: "List the objects, transfers and channels of an agent (per channel: its latest version and which version each member holds)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			st, err := agentStatus(c, agent)
			if err != nil {
				return err
			}
			if asJSON {
				return encodeJSON(c.OutOrStdout(), st)
			}
			w := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "agent %s\n\nDIGEST\tSIZE\tCHUNKS\tSTATE\n", st.GetNode())
			for _, o := range st.GetObjects() {
				state := "complete"
				if !o.GetComplete() {
					state = "partial"
				}
				fmt.Fprintf(w, "%s\t%d\t%d/%d\t%s\n", o.GetDigest(), o.GetSize(), o.GetChunksHeld(), o.GetChunksTotal(), state)
			}
			if ts := st.GetTransfers(); len(ts) > 0 {
				fmt.Fprintf(w, "\nTRANSFER\tDIGEST\tCHUNKS\tPARENTS\tCHILDREN\n")
				for _, t := range ts {
					fmt.Fprintf(w, "%s\t%s\t%d/%d\t%s\t%s\n", t.GetTransferId(), t.GetDigest(), t.GetChunksHeld(), t.GetChunksTotal(),
						strings.Join(t.GetParents(), ","), strings.Join(t.GetChildren(), ","))
				}
			}
			if chs := st.GetChannels(); len(chs) > 0 {
				writeChannels(c.Context(), w, st, memberStatuses(c, st))
			}
			return w.Flush()
		},
	}
	agentFlag(c, &agent)
	c.Flags().BoolVar(&asJSON, "json", false, "print the agent's status as JSON")
	return c
}

func newMembersCmd() *cobra.Command {
	var agent string
	c := &cobra.Command{
		Use:   "members",
		Short: "List the agents the cluster's gossip knows, with labels, channels and health",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			st, err := agentStatus(c, agent)
			if err != nil {
				return err
			}
			ms := st.GetMembers()
			sort.Slice(ms, func(i, j int) bool { return ms[i].GetName() < ms[j].GetName() })
			w := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tSTATE\tGRPC\tGOSSIP\tLABELS\tCHANNELS")
			for _, m := range ms {
				var labels []string
				for k, v := range m.GetLabels() {
					labels = append(labels, k+"="+v)
				}
				sort.Strings(labels)
				state := strings.ToLower(strings.TrimPrefix(m.GetState().String(), "MEMBER_STATE_"))
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", m.GetName(), state, m.GetGrpcAddr(), m.GetGossipAddr(),
					orDash(strings.Join(labels, ",")), orDash(strings.Join(m.GetChannels(), ",")))
			}
			return w.Flush()
		},
	}
	agentFlag(c, &agent)
	return c
}

func agentStatus(c *cobra.Command, agent string) (*pb.StatusResponse, error) {
	client, done, err := dialAgent(c, agent)
	if err != nil {
		return nil, err
	}
	defer done()
	st, err := client.Status(c.Context(), &pb.StatusRequest{})
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", agent, err)
	}
	return st, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
