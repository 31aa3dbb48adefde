package node_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every agent started by a
// test is closed, and Close waits for everything it started.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
