package main

import (
	"bytes"
	"context"
	"testing"
)

// run executes the treecast command line args in-process and returns what it printed.
func run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRoot()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

// exitCode returns the process exit code main would use for err.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	return exitStatus(err)
}
