package transfer

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them (every engine a test
// starts is stopped, and its owner waits for everything it started) or any pooled buffer
// is still referenced once they are over (a reference never dropped: the pool never gets
// the buffer back, and a mapped one is never unmapped).
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		} else if n := PoolInUse(); n != 0 {
			fmt.Fprintf(os.Stderr, "pool: %d bytes of buffers still referenced after the tests\n", n)
			code = 1
		}
	}
	os.Exit(code)
}
