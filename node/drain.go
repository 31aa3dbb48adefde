package node

import "time"

// drainGrace bounds how long a graceful Close lets the transfers this agent receives or
// relays run to their end before it stops them.
const drainGrace = 10 * time.Second

// drainIdle is how long a graceful Close waits on transfers that move no byte (in or out)
// before it stops them: an orphan waiting for a parent that died, a stalled child. Cut, they
// resume at the next start as they would after the grace.
const drainIdle = 2 * time.Second

// drain waits, for at most grace, until no transfer receives or relays on this agent (its
// own pushes as a source are not waited for: they resume at the next start), and no longer
// than drainIdle once those transfers move no byte in or out. The agent keeps serving
// meanwhile, and stays in gossip, so its parents and children go on. Cost: a gather of the
// agent's metrics every 50 ms while it waits.
func (a *Agent) drain(grace time.Duration) {
	busy := func() int {
		n := 0
		for _, t := range a.engine.Transfers() {
			if t.Role != "source" {
				n++
			}
		}
		return n
	}
	n := busy()
	if n == 0 {
		return
	}
	a.log.Info("stopping: letting running transfers finish", "transfers", n, "grace", grace)
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	moved := func() float64 { return a.Metric("treecast_bytes_in_total") + a.Metric("treecast_bytes_out_total") }
	last, lastAt := moved(), time.Now()
	for {
		select {
		case <-deadline.C:
			a.log.Warn("stopping: transfers still running after the grace; they are cut (receivers resume later)", "transfers", busy())
			return
		case <-a.ctx.Done():
			return
		case now := <-tick.C:
			if busy() == 0 {
				a.log.Info("stopping: running transfers finished")
				return
			}
			if m := moved(); m != last {
				last, lastAt = m, now
			} else if now.Sub(lastAt) >= drainIdle {
				a.log.Warn("stopping: running transfers moved no byte for a while; they are cut (receivers resume later)", "transfers", busy(), "idle", drainIdle)
				return
			}
		}
	}
}
