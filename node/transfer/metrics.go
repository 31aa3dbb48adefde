package transfer

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the engine's Prometheus instruments. BytesIn and BytesOut are shared with the
// agent's other senders and receivers (Fetch answers, catch-ups).
type Metrics struct {
	BytesIn         prometheus.Counter
	BytesOut        prometheus.Counter
	chunksIn        prometheus.Counter
	chunksOut       prometheus.Counter
	chunksCut       prometheus.Counter // chunks passed on frame by frame as they arrived
	chunksBad       prometheus.Counter
	chunksDup       prometheus.Counter
	transfers       *prometheus.CounterVec // by role (source, receiver) and result
	active          prometheus.Gauge
	errors          *prometheus.CounterVec // by kind
	duration        *prometheus.HistogramVec
	refetchChunks   prometheus.Counter
	repairs         prometheus.Counter // orphaned subtrees re-attached
	reportsRejected prometheus.Counter // results a child sent for receivers outside its subtree
	chunksDecoded   prometheus.Counter // data chunks rebuilt from Reed-Solomon parity
	queued          prometheus.Gauge   // bytes waiting in forwarder queues
	queuedMax       prometheus.Gauge   // high-water mark of queued
	queuedNow       atomic.Int64
	queuedPeak      atomic.Int64
}

// addQueued tracks the bytes waiting in forwarder queues and their high-water mark.
func (m *Metrics) addQueued(n int) {
	v := m.queuedNow.Add(int64(n))
	m.queued.Set(float64(v))
	for {
		p := m.queuedPeak.Load()
		if v <= p || m.queuedPeak.CompareAndSwap(p, v) {
			break
		}
	}
	m.queuedMax.Set(float64(m.queuedPeak.Load()))
}

// NewMetrics makes the engine's instruments and registers them on reg (one registry per
// agent, so several agents may run in one process).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		BytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "treecast_bytes_in_total", Help: "Chunk bytes received on Push streams and Fetch answers.",
		}),
		BytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "treecast_bytes_out_total", Help: "Chunk bytes sent on Push streams and Fetch answers.",
		}),
		chunksIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "treecast_chunks_in_total", Help: "Chunks received and verified.",
		}),
		chunksOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "treecast_chunks_out_total", Help: "Chunks sent to children.",
		}),
		chunksCut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "treecast_chunks_cut_through_total", Help: "Chunks passed on to a child frame by frame as they arrived (cut-through), before they were whole.",
		}),
		chunksBad: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "treecast_chunks_rejected_total", Help: "Chunks rejected because their hash did not match the manifest.",
		}),
		chunksDup: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "treecast_chunks_duplicate_total", Help: "Chunks received although already held.",
		}),
		refetchChunks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "treecast_chunks_refetched_total", Help: "Chunks fetched again after a rejection.",
		}),
		chunksDecoded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "treecast_chunks_decoded_total", Help: "Data chunks rebuilt from Reed-Solomon parity instead of received.",
		}),
		reportsRejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "treecast_reports_rejected_total", Help: "Progress or results a child sent for receivers outside its own subtree of the plan (ignored).",
		}),
		repairs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "treecast_repairs_total", Help: "Subtrees re-attached to this agent after their parent failed.",
		}),
		transfers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "treecast_transfers_total", Help: "Transfers ended, by role and result.",
		}, []string{"role", "result"}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "treecast_queued_bytes", Help: "Chunk bytes waiting in the queues to children.",
		}),
		queuedMax: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "treecast_queued_bytes_max", Help: "High-water mark of treecast_queued_bytes since start.",
		}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "treecast_transfers_active", Help: "Transfers in progress on this agent.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "treecast_errors_total", Help: "Errors, by kind.",
		}, []string{"kind"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "treecast_transfer_seconds",
			Help:    "Transfer durations, by role.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 12),
		}, []string{"role"}),
	}
	reg.MustRegister(m.BytesIn, m.BytesOut, m.chunksIn, m.chunksOut, m.chunksCut, m.chunksBad, m.chunksDup, m.refetchChunks, m.repairs, m.reportsRejected, m.chunksDecoded,
		m.transfers, m.active, m.queued, m.queuedMax, m.errors, m.duration)
	return m
}
