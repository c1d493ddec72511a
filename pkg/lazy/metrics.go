package lazy

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	activationSeconds *prometheus.HistogramVec
	state, queue      *prometheus.GaugeVec
	activations       *prometheus.CounterVec
	deactivations     *prometheus.CounterVec
	leased, used      *prometheus.GaugeVec
	resizes, refusals *prometheus.CounterVec
	goLimit           prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		activationSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tradsys_lazy_activation_seconds", Help: "Time from the first call to ACTIVE: dependencies, memory lease and Init.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"component"}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tradsys_lazy_state", Help: "Component state: 1 DORMANT, 2 ACTIVATING, 3 ACTIVE, 4 DRAINING, 5 FAILED.",
		}, []string{"component"}),
		queue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tradsys_lazy_queue_length", Help: "Calls waiting for the component to become active.",
		}, []string{"component"}),
		activations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tradsys_lazy_activations_total", Help: "Activations by outcome.",
		}, []string{"component", "outcome"}),
		deactivations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tradsys_lazy_deactivations_total", Help: "Deactivations by reason (idle, operator, preempted, session-lost, shutdown).",
		}, []string{"component", "reason"}),
	}
	m.leased = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tradsys_lazy_leased_bytes", Help: "Bytes of the component's memory lease (0 while dormant).",
	}, []string{"component"})
	m.used = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tradsys_lazy_used_bytes", Help: "What the component reports it uses (Spec.Usage), read while active.",
	}, []string{"component"})
	m.resizes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tradsys_lazy_lease_resizes_total", Help: "Memory lease resizes by direction (grow, shrink).",
	}, []string{"component", "direction"})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tradsys_lazy_lease_growth_refusals_total", Help: "Growths of the memory lease the coordinator refused.",
	}, []string{"component"})
	m.goLimit = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tradsys_lazy_go_memory_limit_bytes", Help: "The Go soft memory limit the runtime set: base footprint plus leases held.",
	})
	reg.MustRegister(m.activationSeconds, m.state, m.queue, m.activations, m.deactivations, m.leased, m.used, m.resizes, m.refusals, m.goLimit)
	return m
}
