package main

import (
	"strings"
	"testing"
)

// TestBenchTestbedUsage checks that bad command lines of bench testbed fail with a usage
// error (exit code 2) naming the bad flag, before anything is built.
func TestBenchTestbedUsage(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "testbed"}, "--out DIR is required"},
		{[]string{"bench", "testbed", "--out", dir, "--rate", "fast"}, "--rate"},
		{[]string{"bench", "testbed", "--out", dir, "--size", "0"}, "--size"},
		{[]string{"bench", "testbed", "--out", dir, "--peer", "ftp"}, `unknown peer "ftp"`},
		{[]string{"bench", "testbed", "--out", dir, "--racks", "1", "--hosts", "1"}, "at least 2 hosts"},
		{[]string{"bench", "testbed", "--out", dir, "--runs", "0"}, "0 runs"},
	} {
		_, _, err := run(t, c.args...)
		if exitCode(err) != 2 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: exit %d, %v; want exit 2 and %q", c.args, exitCode(err), err, c.want)
		}
	}
}

func TestBenchRemoveBadName(t *testing.T) {
	if _, _, err := run(t, "bench", "remove", "a/b"); err == nil || !strings.Contains(err.Error(), "bad testbed name") {
		t.Fatalf("bench remove a/b: %v", err)
	}
}

func TestArgsAfter(t *testing.T) {
	got := strings.Join(quoteArgs(argsAfter([]string{"treecast", "bench", "testbed", "--peer", "treecast:--strategy chain"}, "testbed")), " ")
	if want := "--peer 'treecast:--strategy chain'"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
