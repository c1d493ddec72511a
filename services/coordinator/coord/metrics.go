package coord

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the coordinator's Prometheus metrics.
type Metrics struct {
	budget, used, leases, sessions *prometheus.GaugeVec
	memWaiters, leader             prometheus.Gauge
	grants, releases, denials      prometheus.Counter
	preemptions, forced, deadlocks prometheus.Counter
	lockGrants, lockTimeouts       prometheus.Counter
	resizes                        prometheus.Counter
	lockWait, memWait              prometheus.Histogram
	batchSize                      prometheus.Histogram
}

// newMetrics registers the coordinator's metrics. lockCounts is read at
// scrape time: counting locks on every change would cost O(locks) per call.
func newMetrics(reg prometheus.Registerer, lockCounts func() (held, waiting int)) *Metrics {
	g := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tradsys_coordinator_" + name, Help: help}, nil)
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "tradsys_coordinator_" + name, Help: help})
	}
	waitBuckets := prometheus.ExponentialBuckets(0.0001, 4, 12)
	m := &Metrics{
		budget:       g("memory_budget_bytes", "The global memory budget."),
		used:         g("memory_used_bytes", "Bytes granted (including grants being committed)."),
		leases:       g("memory_leases", "Memory leases held."),
		sessions:     g("sessions", "Open sessions."),
		memWaiters:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "tradsys_coordinator_memory_waiters", Help: "Memory requests waiting."}),
		leader:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "tradsys_coordinator_is_leader", Help: "1 on the leader replica."}),
		grants:       c("memory_grants_total", "Memory leases granted."),
		releases:     c("memory_releases_total", "Memory leases released (voluntarily, forced or with their session)."),
		denials:      c("memory_denials_total", "Memory requests not granted in time."),
		preemptions:  c("preemptions_total", "Revocation notices sent to preemptible leases."),
		forced:       c("forced_releases_total", "Leases force-released after their grace period."),
		deadlocks:    c("deadlocks_total", "Lock requests refused because they would deadlock."),
		lockGrants:   c("lock_grants_total", "Locks granted."),
		lockTimeouts: c("lock_timeouts_total", "Lock requests that timed out."),
		resizes:      c("memory_resizes_total", "Memory leases resized (grown or shrunk)."),
		lockWait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tradsys_coordinator_lock_wait_seconds",
			Help: "Time from AcquireLock to grant.", Buckets: waitBuckets}),
		memWait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tradsys_coordinator_memory_wait_seconds",
			Help: "Time from AcquireMemory to grant.", Buckets: waitBuckets}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tradsys_coordinator_txn_batch_size",
			Help: "Decisions committed per etcd transaction.", Buckets: prometheus.ExponentialBuckets(1, 2, 9)}),
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tradsys_coordinator_locks_held", Help: "Locks held."},
			func() float64 { held, _ := lockCounts(); return float64(held) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tradsys_coordinator_lock_waiters", Help: "Lock requests waiting."},
			func() float64 { _, waiting := lockCounts(); return float64(waiting) }),
	)
	reg.MustRegister(m.budget, m.used, m.leases, m.sessions, m.memWaiters, m.leader,
		m.grants, m.releases, m.denials, m.preemptions, m.forced, m.deadlocks, m.lockGrants, m.lockTimeouts, m.resizes,
		m.lockWait, m.memWait, m.batchSize)
	return m
}
