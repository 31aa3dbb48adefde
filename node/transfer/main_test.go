package transfer

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every engine a test
// starts is stopped, and its owner waits for everything it started.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
