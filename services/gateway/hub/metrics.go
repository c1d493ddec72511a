package hub

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	slowCount atomic.Int64 // for Stats

	conns    prometheus.Gauge
	topics   prometheus.Gauge
	frames   prometheus.Counter
	slow     prometheus.Counter
	refused  prometheus.Counter
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		conns: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tradsys_gateway_connections",
			Help: "Open WebSocket connections."}),
		topics: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tradsys_gateway_topics",
			Help: "Topics with subscribers (each runs one feed)."}),
		frames: prometheus.NewCounter(prometheus.CounterOpts{Name: "tradsys_gateway_frames_sent_total",
			Help: "Frames written to clients."}),
		slow: prometheus.NewCounter(prometheus.CounterOpts{Name: "tradsys_gateway_slow_consumers_total",
			Help: "Connections closed because they did not read fast enough."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "tradsys_gateway_refused_upgrades_total",
			Help: "Upgrades refused for a missing or unknown API key."}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tradsys_gateway_requests_total",
			Help: "Client requests by type."}, []string{"type"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tradsys_gateway_error_frames_total",
			Help: "Error frames sent, by code."}, []string{"code"}),
	}
	if reg != nil {
		reg.MustRegister(m.conns, m.topics, m.frames, m.slow, m.refused, m.requests, m.errors)
	}
	return m
}

// Stats are the hub's counters.
type Stats struct {
	Connections   int
	SlowConsumers int64 // connections closed for not reading (since start)
}

// Stats reads the counters.
func (h *Hub) Stats() Stats {
	return Stats{Connections: h.Connections(), SlowConsumers: h.m.slowCount.Load()}
}

func (m *metrics) slowConsumer() {
	m.slow.Inc()
	m.slowCount.Add(1)
}
