package node_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/treecast/treecast/node/transfer"
	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every agent started by a
// test is closed, and Close waits for everything it started. memberlist's Shutdown does not
// wait for a probe in flight (it ends by its own timeout, within a probe interval), so that
// one goroutine is not counted. It also fails them if a buffer of the data path's pool is
// still referenced once every agent is closed: a reference never dropped (the pool never
// gets the buffer back; a mapped one is never unmapped).
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode")); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		} else if n := transfer.PoolInUse(); n != 0 {
			fmt.Fprintf(os.Stderr, "pool: %d bytes of buffers still referenced after the tests\n", n)
			code = 1
		}
	}
	os.Exit(code)
}
