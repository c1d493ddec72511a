package lazy

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	activationSeconds *prometheus.HistogramVec
	state, queue      *prometheus.GaugeVec
	activations       *prometheus.CounterVec
	deactivations     *prometheus.CounterVec
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
	reg.MustRegister(m.activationSeconds, m.state, m.queue, m.activations, m.deactivations)
	return m
}
