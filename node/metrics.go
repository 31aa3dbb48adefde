package node

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/treecast/treecast/node/transfer"
)

// metrics are the agent's Prometheus instruments, registered on a registry of its own so
// that several agents may run in one process (tests, demo): the engine's, the channel
// table's (registered by it), and the Go runtime's and process's.
type metrics struct {
	reg    *prometheus.Registry
	engine *transfer.Metrics
}

func newMetrics() *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &metrics{reg: reg, engine: transfer.NewMetrics(reg)}
}

// Metric returns the current value of the agent's counter or gauge named name (summed over
// labels), or 0 when there is none. It is meant for tests and the demo. Cost: one gather of
// the agent's registry.
func (a *Agent) Metric(name string) float64 {
	mfs, err := a.m.reg.Gather()
	if err != nil {
		return 0
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}
