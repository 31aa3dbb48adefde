package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/treecast/treecast/node/identity"
)

func init() { commands = append(commands, newCertsCmd) }

func newCertsCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "certs init|issue|gossip-key --dir DIR",
		Short: "Make a cluster's CA, its agents' and operators' certificates, and its gossip key",
		Long: `Make what a secured cluster needs, as files in DIR:

  treecast certs init --dir DIR          the cluster CA: DIR/ca.pem, DIR/ca.key
  treecast certs issue --dir DIR --name NAME --role node|operator|monitor [--host 10.0.0.5,node5.dc1]
                                         a certificate: DIR/NAME.pem, DIR/NAME.key
  treecast certs gossip-key --dir DIR    the gossip encryption key: DIR/gossip.key

An agent's certificate names the agent (its --name) and has role node; an operator's has
role operator; a Prometheus scraper's or a dashboard's has role monitor (it reads the
agents' HTTP address, /metrics, /events and the live page, and may call no RPC). Keys are
ECDSA P-256, written with mode 0600; nothing is ever overwritten.
Copy ca.pem, gossip.key and each agent's own NAME.pem and NAME.key to its host; keep ca.key
off the agents.`,
	}
	var dir string
	c.PersistentFlags().StringVar(&dir, "dir", "", "directory of the cluster's certificates (required)")
	_ = c.MarkPersistentFlagRequired("dir")

	initCmd := &cobra.Command{
		Use:   "init --dir DIR",
		Short: "Make the cluster CA (DIR/ca.pem, DIR/ca.key)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := identity.InitCA(dir); err != nil {
				return err
			}
			cert, key := identity.CAFiles(dir)
			fmt.Fprintf(c.OutOrStdout(), "CA: %s, key %s\n", cert, key)
			return nil
		},
	}
	var name, role string
	var hosts []string
	issueCmd := &cobra.Command{
		Use:   "issue --dir DIR --name NAME --role node|operator|monitor [--host H,...]",
		Short: "Issue a certificate of the cluster CA (DIR/NAME.pem, DIR/NAME.key)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			r, err := identity.ParseRole(role)
			if err != nil {
				return usageErr(err)
			}
			if err := identity.Issue(dir, name, r, hosts); err != nil {
				return err
			}
			cert, key := identity.Files(dir, name)
			fmt.Fprintf(c.OutOrStdout(), "%s (%s): %s, key %s\n", name, r, cert, key)
			return nil
		},
	}
	issueCmd.Flags().StringVar(&name, "name", "", "the identity: an agent's --name, or an operator's name (required)")
	issueCmd.Flags().StringVar(&role, "role", "", "node (an agent), operator (a user of the cluster) or monitor (reads metrics and events) (required)")
	issueCmd.Flags().StringSliceVar(&hosts, "host", nil, "extra names the holder serves on: IP addresses or DNS names")
	_ = issueCmd.MarkFlagRequired("name")
	_ = issueCmd.MarkFlagRequired("role")

	keyCmd := &cobra.Command{
		Use:   "gossip-key --dir DIR",
		Short: "Make the cluster's gossip encryption key (DIR/gossip.key)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			path, err := identity.NewGossipKey(dir)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "gossip key: %s\n", path)
			return nil
		},
	}
	c.AddCommand(initCmd, issueCmd, keyCmd)
	return c
}
