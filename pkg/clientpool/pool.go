// Package clientpool is the seed's LazyConnectionPool for gRPC: one shared,
// lazily dialled connection per target for the whole process (never one
// per call), health-aware load balancing, transports closed when idle and
// reopened on the next call, and service discovery through the
// coordinator's registry with targets like "tradsys:///matching".
package clientpool

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/health" // client-side health checking
	"google.golang.org/grpc/resolver"
)

// serviceConfig balances over every address the resolver gives and skips
// the ones whose grpc.health.v1 status is not SERVING.
const serviceConfig = `{"loadBalancingConfig":[{"round_robin":{}}],"healthCheckConfig":{"serviceName":""}}`

// Options configure a Pool.
type Options struct {
	Creds credentials.TransportCredentials
	// IdleTimeout closes a connection's transports after this long without
	// calls; the next call reconnects. Default 5 minutes.
	IdleTimeout time.Duration
	// Registry, when set, resolves "tradsys:///<component>" targets.
	Registry *RegistryResolver
	// Resolvers are extra resolver builders (static lists in tests, say).
	Resolvers []resolver.Builder
	Metrics   prometheus.Registerer
}

// Pool shares connections by target.
type Pool struct {
	opts  Options
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
	dials prometheus.Counter
}

// New returns an empty pool.
func New(o Options) *Pool {
	if o.Creds == nil {
		o.Creds = insecure.NewCredentials()
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 5 * time.Minute
	}
	p := &Pool{opts: o, conns: map[string]*grpc.ClientConn{},
		dials: prometheus.NewCounter(prometheus.CounterOpts{Name: "tradsys_clientpool_connections_created_total",
			Help: "Client connections created (one per target for the process's life)."})}
	if o.Metrics != nil {
		o.Metrics.MustRegister(p.dials)
	}
	return p
}

// Conn returns the shared connection for target ("host:port" or
// "tradsys:///<component>"). It does not dial: the first call does.
func (p *Pool) Conn(target string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.conns[target]; c != nil {
		return c, nil
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(p.opts.Creds),
		grpc.WithDefaultServiceConfig(serviceConfig),
		grpc.WithIdleTimeout(p.opts.IdleTimeout),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: 2 * time.Second,
		}),
	}
	builders := append([]resolver.Builder(nil), p.opts.Resolvers...)
	if p.opts.Registry != nil {
		builders = append(builders, p.opts.Registry)
	}
	if len(builders) > 0 {
		opts = append(opts, grpc.WithResolvers(builders...))
	}
	c, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", target, err)
	}
	p.dials.Inc()
	p.conns[target] = c
	return c, nil
}

// Len is the number of connections held.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Close closes every connection.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for t, c := range p.conns {
		c.Close()
		delete(p.conns, t)
	}
}
