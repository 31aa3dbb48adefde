package main

import (
	"errors"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Exit statuses (README, "Exit status"): 0 success (every receiver verified), 1 failure
// (some receiver failed, or the command could not do its work), 2 usage error (bad flags,
// arguments or values, whether the CLI or the agent found it), 3 partial (a push whose
// matched members were offline), 130 interrupted (a push goes on at its agent).

// markUsageErrors makes every flag and argument error of root's commands a usage error
// (exit status 2).
func markUsageErrors(root *cobra.Command) {
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(err) })
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if args := c.Args; args != nil {
			c.Args = func(cmd *cobra.Command, a []string) error {
				if err := args(cmd, a); err != nil {
					return usageErr(err)
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// exitStatus is the process exit status for err: an exitError's code; 2 for an unknown
// command or an InvalidArgument status from an agent; 1 otherwise.
func exitStatus(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag") {
		return 2
	}
	if st, ok := status.FromError(err); ok && st.Code() == codes.InvalidArgument {
		return 2
	}
	return 1
}
