package node_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every agent started by a
// test is closed, and Close waits for everything it started. memberlist's Shutdown does not
// wait for a probe in flight (it ends by its own timeout, within a probe interval), so that
// one goroutine is not counted.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"))
}
