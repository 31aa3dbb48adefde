package node

import "time"

// drainGrace bounds how long a graceful Close lets the transfers this agent receives or
// relays run to their end before it stops them.
const drainGrace = 10 * time.Second

// drain waits, for at most grace, until no transfer receives or relays on this agent (its
// own pushes as a source are not waited for: they resume at the next start). The agent
// keeps serving meanwhile, and stays in gossip, so its parents and children go on.
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
	for {
		select {
		case <-deadline.C:
			a.log.Warn("stopping: transfers still running after the grace; they are cut (receivers resume later)", "transfers", busy())
			return
		case <-a.ctx.Done():
			return
		case <-tick.C:
			if busy() == 0 {
				a.log.Info("stopping: running transfers finished")
				return
			}
		}
	}
}
