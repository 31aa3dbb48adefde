// Command treecast pushes one object from one node to many down multicast trees, and plans
// and simulates such pushes.
//
// Subcommands:
//
//	treecast tree    compute multicast trees on a topology
//	treecast plan    compute an overlay plan (the agents' forwarding forest)
//	treecast sim     simulate multicast schemes on fat-tree and WAN topologies
//	treecast agent   run a node agent
//	treecast push    push an object to a target group through the local agent
//	treecast get     write an object (by digest or tag) to a file, fetching it from the cluster
//	treecast tags    list an agent's tags
//	treecast rm      remove an object from one agent or from a target group
//	treecast channels list channels; channels rm deletes one
//	treecast demo    run a local cluster of agents, push an object, report
//	treecast bench   benchmark treecast against its peers on a network-namespace testbed
//
// Run "treecast help COMMAND" for the flags of each.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// commands holds the constructors of the subcommands; each subcommand's file adds its own in
// an init function, so adding a command touches no shared file.
var commands []func() *cobra.Command

// exitError carries a process exit code through cobra without printing twice.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "treecast",
		Short:         "Reliable group data delivery down multicast trees",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, c := range commands {
		root.AddCommand(c())
	}
	markUsageErrors(root)
	return root
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "treecast:", err)
		os.Exit(exitStatus(err))
	}
}
