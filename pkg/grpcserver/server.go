// Package grpcserver is the one way a TradSys process serves gRPC: the
// standard interceptor chain, grpc.health.v1 and reflection registered the
// standard way, Prometheus metrics and /healthz on an admin HTTP port, mTLS
// when certificates are configured (on the admin port too), and graceful
// shutdown.
package grpcserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

// Options configure a Server.
type Options struct {
	Name   string // service name, also the health service name
	Flags  *Flags
	Logger *zap.Logger
	// Registry receives the server's metrics; a new one when nil.
	Registry *prometheus.Registry
	// Listener overrides Flags.Listen (tests pass a bufconn or :0 listener).
	Listener net.Listener
	// Unary and Stream are the service's own interceptors, run innermost.
	Unary  []grpc.UnaryServerInterceptor
	Stream []grpc.StreamServerInterceptor
}

// Server is a gRPC server with its health service and admin endpoint.
type Server struct {
	name     string
	flags    *Flags
	log      *zap.Logger
	grpc     *grpc.Server
	health   *health.Server
	registry *prometheus.Registry
	lis      net.Listener
	admin    *http.Server
	adminLis net.Listener
	adminTLS bool
}

// New builds the server and binds its listeners; nothing is served until
// Serve. Health starts NOT_SERVING: call SetServing once ready.
func New(o Options) (*Server, error) {
	if o.Flags == nil {
		o.Flags = &Flags{Listen: "127.0.0.1:0", ShutdownTimeout: 10 * time.Second}
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
		o.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	creds, err := o.Flags.TLS.ServerCredentials()
	if err != nil {
		return nil, err
	}
	// The UTF-8 codec and the chain go together (see utf8.go).
	opts := append(chain(o.Logger, newRPCMetrics(o.Registry), o.Unary, o.Stream), grpc.Creds(creds), grpc.ForceServerCodecV2(newUTF8Codec()))
	s := &Server{
		name: o.Name, flags: o.Flags, log: o.Logger, registry: o.Registry,
		grpc: grpc.NewServer(opts...), health: health.NewServer(),
	}
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	s.health.SetServingStatus(o.Name, healthpb.HealthCheckResponse_NOT_SERVING)

	s.lis = o.Listener
	if s.lis == nil {
		if s.lis, err = net.Listen("tcp", o.Flags.Listen); err != nil {
			return nil, fmt.Errorf("--listen %s: %w", o.Flags.Listen, err)
		}
	}
	if o.Flags.AdminListen != "" {
		if s.adminLis, err = net.Listen("tcp", o.Flags.AdminListen); err != nil {
			s.lis.Close()
			return nil, fmt.Errorf("--admin-listen %s: %w", o.Flags.AdminListen, err)
		}
		// With TLS on, the admin port is HTTPS with the mesh's certificates
		// and, like the gRPC port, requires a client certificate from the
		// mesh's CA (as etcd serves --listen-metrics-urls with its client
		// TLS settings): metrics name components, owners (certificate
		// identities) and sessions' counts, and an unauthenticated reader on
		// the network should learn none of it. Scrapers present a
		// certificate (Prometheus: tls_config cert_file/key_file/ca_file).
		if tlsCfg, err := o.Flags.TLS.ServerConfig(); err != nil {
			s.adminLis.Close()
			s.lis.Close()
			return nil, err
		} else if tlsCfg != nil {
			s.adminTLS = true
			s.adminLis = tls.NewListener(s.adminLis, tlsCfg)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{Registry: o.Registry}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
			resp, _ := s.health.Check(r.Context(), &healthpb.HealthCheckRequest{})
			if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				http.Error(w, resp.GetStatus().String(), http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "SERVING")
		})
		s.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	}
	return s, nil
}

// GRPC is the server to register services on.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Health is the standard health service, for per-component statuses.
func (s *Server) Health() *health.Server { return s.health }

// Registry is where the service registers its own metrics.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// Addr is the bound gRPC address.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// AdminAddr is the bound admin HTTP address, or "".
func (s *Server) AdminAddr() string {
	if s.adminLis == nil {
		return ""
	}
	return s.adminLis.Addr().String()
}

// AdminURL is the admin endpoint's base URL (https:// when TLS is on), or "".
func (s *Server) AdminURL() string {
	if s.adminLis == nil {
		return ""
	}
	if s.adminTLS {
		return "https://" + s.AdminAddr()
	}
	return "http://" + s.AdminAddr()
}

// SetServing flips the overall and the service's health status.
func (s *Server) SetServing(serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", st)
	s.health.SetServingStatus(s.name, st)
}

// Serve serves until ctx is done, then shuts down gracefully: health goes
// NOT_SERVING, in-flight calls get Flags.ShutdownTimeout to finish.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 2)
	go func() { errc <- s.grpc.Serve(s.lis) }()
	if s.admin != nil {
		go func() {
			if err := s.admin.Serve(s.adminLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	s.log.Info("serving", zap.String("grpc", s.Addr()), zap.String("admin", s.AdminURL()))
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.Shutdown()
	return err
}

// Shutdown stops serving gracefully, bounded by the shutdown timeout.
func (s *Server) Shutdown() {
	s.health.Shutdown()
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	timeout := s.flags.ShutdownTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	select {
	case <-done:
	case <-time.After(timeout):
		s.log.Warn("graceful stop timed out; cutting remaining calls", zap.Duration("timeout", timeout))
		s.grpc.Stop()
	}
	if s.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = s.admin.Shutdown(ctx)
	}
}
