// Package service is the one call a TradSys service's main makes: flags and
// TRADSYS_* variables, the zap logger, the gRPC server (standard interceptor
// chain, health, reflection, metrics), the coordinator client and its
// session, the lazy runtime with its gate and LifecycleService, and graceful
// shutdown that drains components and gives their leases back.
package service

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tradsys/mesh/pkg/clientpool"
	"github.com/tradsys/mesh/pkg/config"
	"github.com/tradsys/mesh/pkg/coordclient"
	"github.com/tradsys/mesh/pkg/grpcserver"
	"github.com/tradsys/mesh/pkg/lazy"
	"github.com/tradsys/mesh/pkg/lazy/lazygrpc"
	"github.com/tradsys/mesh/pkg/logging"
	lifecyclev1 "github.com/tradsys/mesh/proto/tradsys/lifecycle/v1"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// Config names a service and its default addresses.
type Config struct {
	Name        string // "matching"
	Listen      string // default gRPC address, "127.0.0.1:7103"
	AdminListen string // default admin address, "127.0.0.1:9103"
	// MainComponent is what Lifecycle.Activate with no name activates;
	// defaults to Name.
	MainComponent string
}

// Service is a running service's shared parts.
type Service struct {
	Config  Config
	Flags   grpcserver.Flags
	Log     *zap.Logger
	Server  *grpcserver.Server
	Coord   *coordclient.Client
	Runtime *lazy.Runtime
	Gate    *lazygrpc.Gate
	// ClientCreds are this process's credentials for calling others (the
	// client side of --tls-*); Pool and Coord already use them.
	ClientCreds credentials.TransportCredentials
	// Pool is the process's shared client connections: use it for every
	// call to another service ("tradsys:///matching" or "host:port").
	Pool *clientpool.Pool

	advertise  string
	sessionTTL time.Duration
}

// Options are the parsed settings New needs; Main fills them from flags.
type Options struct {
	Flags grpcserver.Flags
	// Coordinator is the coordinator's address (--coordinator), several
	// comma-separated for several replicas.
	Coordinator string
	Advertise   string
	SessionTTL  time.Duration
	Logger      *zap.Logger
	Listener    net.Listener
	// GoMemoryLimit holds the process to its leases (lazy.Options); Main
	// sets it, a test running services in its own process does not.
	GoMemoryLimit bool
	BaseFootprint int64
}

// New assembles a service without serving it: the caller registers its
// gRPC services and components on it, then calls Run.
func New(cfg Config, o Options) (*Service, error) {
	if cfg.MainComponent == "" {
		cfg.MainComponent = cfg.Name
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 10 * time.Second
	}
	s := &Service{Config: cfg, Flags: o.Flags, Log: o.Logger, Gate: lazygrpc.NewGate(lazygrpc.Errors(cfg.Name + ".tradsys")), sessionTTL: o.SessionTTL}
	srv, err := grpcserver.New(grpcserver.Options{
		Name: cfg.Name, Flags: &s.Flags, Logger: o.Logger, Listener: o.Listener,
		// The gate is innermost: only valid requests trigger an activation.
		Unary:  []grpc.UnaryServerInterceptor{s.Gate.Unary},
		Stream: []grpc.StreamServerInterceptor{s.Gate.Stream},
	})
	if err != nil {
		return nil, err
	}
	s.Server = srv
	s.advertise = o.Advertise
	if s.advertise == "" {
		s.advertise = srv.Addr()
	}
	creds, err := s.Flags.TLS.ClientCredentials()
	if err != nil {
		return nil, err
	}
	s.ClientCreds = creds
	if o.Coordinator == "" {
		o.Coordinator = config.DefaultCoordinator
	}
	s.Coord, err = coordclient.Dial(coordclient.Options{
		Addresses: strings.Split(o.Coordinator, ","), Owner: cfg.Name + "@" + s.advertise, TTL: o.SessionTTL,
		Creds: creds, Logger: o.Logger.Named("coordclient"),
		OnSessionLost: func(string) { s.Runtime.SessionLost() },
		OnPreempt:     func(lease string, deadline time.Time) { s.Runtime.Preempted(lease, deadline) },
	})
	if err != nil {
		return nil, err
	}
	s.Pool = clientpool.New(clientpool.Options{Creds: creds, Metrics: srv.Registry(),
		Registry: &clientpool.RegistryResolver{API: s.Coord.API()}})
	s.Runtime = lazy.New(lazy.Options{
		Coordinator: lazygrpc.Coordinator(s.Coord), Logger: o.Logger.Named("lazy"), Registry: srv.Registry(),
		Endpoint: s.advertise, OnState: lazygrpc.HealthReporter(srv.Health()),
		GoMemoryLimit: o.GoMemoryLimit, BaseFootprint: o.BaseFootprint,
	})
	lifecyclev1.RegisterLifecycleServiceServer(srv.GRPC(), lazygrpc.NewLifecycle(s.Runtime, cfg.MainComponent, lazygrpc.Errors(cfg.Name+".tradsys")))
	return s, nil
}

// Addr is the bound gRPC address.
func (s *Service) Addr() string { return s.Server.Addr() }

// Run registers the components with the coordinator and serves until ctx
// ends; then it deactivates every component (draining calls, releasing
// leases), closes the session and stops the server.
func (s *Service) Run(ctx context.Context) error {
	s.Runtime.Register(ctx)
	s.Server.SetServing(true) // dormant is healthy: it answers and activates on demand
	errc := make(chan error, 1)
	sctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() { errc <- s.Server.Serve(sctx) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.Log.Info("shutting down: draining components")
	s.Server.SetServing(false)
	dctx, cancel := context.WithTimeout(context.Background(), s.Flags.ShutdownTimeout)
	s.Runtime.Shutdown(dctx)
	cancel()
	stop()
	if serr := <-errc; err == nil {
		err = serr
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer ccancel()
	_ = s.Coord.Close(cctx)
	s.Pool.Close()
	return err
}

// Main is a service's whole main: flags (the common ones plus what
// defineFlags adds), logger, New, setup (register gRPC services and
// components), Run until SIGINT/SIGTERM. It exits the process on error.
func Main(cfg Config, defineFlags func(fs *flag.FlagSet), setup func(ctx context.Context, s *Service) error) {
	fs := flag.NewFlagSet(cfg.Name, flag.ExitOnError)
	var o Options
	o.Flags.Register(fs, cfg.Listen, cfg.AdminListen)
	config.RegisterCoordinatorFlag(fs, &o.Coordinator)
	fs.StringVar(&o.Advertise, "advertise", "", "address others reach this service at (default: --listen)")
	fs.DurationVar(&o.SessionTTL, "session-ttl", 10*time.Second, "coordinator session TTL")
	fs.BoolVar(&o.GoMemoryLimit, "go-memory-limit", true, "set the Go soft memory limit to --base-memory plus the memory leases held")
	base := config.ByteSize(0)
	fs.Var(&base, "base-memory", "the process's memory with no component loaded (default: measured at start, at least 64MiB)")
	if defineFlags != nil {
		defineFlags(fs)
	}
	if err := config.ParseFlagsOnly(fs, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	log, err := logging.New(cfg.Name, o.Flags.LogLevel, o.Flags.LogFormat)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	o.Logger = log
	o.BaseFootprint = int64(base)
	if o.Advertise == "" {
		o.Advertise = o.Flags.Listen
	}
	s, err := New(cfg, o)
	if err != nil {
		log.Fatal("start", zap.Error(err))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := setup(ctx, s); err != nil {
		log.Fatal("setup", zap.Error(err))
	}
	log.Info("dormant and serving", zap.String("grpc", s.Addr()), zap.String("admin", s.Server.AdminURL()),
		zap.String("coordinator", o.Coordinator))
	if err := s.Run(ctx); err != nil {
		log.Fatal("serve", zap.Error(err))
	}
}
