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
	// pushWire counts the Push streams the agent opened to its children, by wire: "raw"
	// (rawpush.go) or "grpc".
	pushWire *prometheus.CounterVec
	// dialHints counts the children dialled at the address their push's header gave, gossip
	// not knowing them yet.
	dialHints prometheus.Counter
}

func newMetrics() *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &metrics{reg: reg, engine: transfer.NewMetrics(reg)}
	m.pushWire = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "treecast_push_streams_opened_total",
		Help: "Push streams opened to children, by wire (raw: the agents' own framing; grpc: gRPC messages)."}, []string{"wire"})
	m.dialHints = prometheus.NewCounter(prometheus.CounterOpts{Name: "treecast_push_dials_by_header_address_total",
		Help: "Children dialled at the address the push's header gave because this agent's gossip did not know them yet."})
	reg.MustRegister(m.pushWire, m.dialHints)
	return m
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
