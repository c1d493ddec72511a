package oms

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the order path's Prometheus metrics. They outlive an OMS
// (the component loads and unloads), so the server makes them once.
type Metrics struct {
	orders      *prometheus.CounterVec // by result
	fills       prometheus.Counter
	commits     prometheus.Histogram
	syncs       prometheus.Counter
	batchOps    prometheus.Histogram
	checkpoints prometheus.Histogram
	reconciled  *prometheus.CounterVec
	unresolved  prometheus.Gauge
}

// NewMetrics registers the metrics on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		orders: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tradsys_orders_submitted_total",
			Help: "Submits by result: accepted (reached the book), rejected (risk, matching or unreachable), duplicate (a retry)."}, []string{"result"}),
		fills: prometheus.NewCounter(prometheus.CounterOpts{Name: "tradsys_orders_fills_applied_total",
			Help: "Fills applied to orders (each matching trade side once)."}),
		commits: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tradsys_orders_store_commit_seconds",
			Help: "Time of one group commit of the order store (its log record's write and fsync).", Buckets: prometheus.ExponentialBuckets(50e-6, 2, 14)}),
		syncs: prometheus.NewCounter(prometheus.CounterOpts{Name: "tradsys_orders_store_syncs_total",
			Help: "fsyncs of the order store's log: one per group of commits; a batch nobody waits for rides on the next."}),
		checkpoints: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tradsys_orders_store_checkpoint_seconds",
			Help: "Time of one checkpoint of the order store's log into bbolt (in the background).", Buckets: prometheus.ExponentialBuckets(1e-3, 2, 14)}),
		batchOps: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tradsys_orders_store_batch_operations",
			Help: "Operations sharing one group commit.", Buckets: prometheus.ExponentialBuckets(1, 2, 9)}),
		reconciled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tradsys_orders_reconciled_total",
			Help: "Orders whose matching outcome was unknown, settled by the reconciler, by final status."}, []string{"status"}),
		unresolved: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tradsys_orders_unresolved",
			Help: "Orders whose matching outcome is not settled yet."}),
	}
	if reg != nil {
		reg.MustRegister(m.orders, m.fills, m.commits, m.syncs, m.batchOps, m.checkpoints, m.reconciled, m.unresolved)
	}
	return m
}
