// Package server is the risk service's gRPC layer:
// tradsys.risk.v1.RiskService on top of the checks domain, the lazy
// components (the limit store "risk" and one leased plugin per validator,
// "risk/validator/<name>"), the follower of matching's trades (the price
// band's last trade) and the error table.
package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tradsys/mesh/pkg/lazy"
	"github.com/tradsys/mesh/pkg/service"
	riskv1 "github.com/tradsys/mesh/proto/tradsys/risk/v1"
	"github.com/tradsys/mesh/services/risk/checks"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// Component names.
const (
	MainComponent   = "risk"
	ValidatorPrefix = "risk/validator/"
)

// Options are the service's own settings (main.go fills them from flags).
type Options struct {
	DataDir string
	// Matching is where the price band follows trades ("host:port" or
	// "tradsys:///matching"); empty: no price band data.
	Matching string
	// Defaults are the limits where no account entry sets one.
	Defaults checks.Limits
	// The limit store component.
	MemoryBytes int64
	Priority    int32
	InitTimeout time.Duration
	IdleTimeout time.Duration
	// Validator plugins.
	ValidatorMemoryBytes int64
	ValidatorPriority    int32
	ValidatorIdleTimeout time.Duration
}

// Defaults are the seed's values (a risk validator: 30 MB, priority 35,
// init 20 s).
func Defaults() Options {
	return Options{
		DataDir: ".tradsys/risk", Matching: "tradsys:///matching",
		Defaults:    checks.Limits{PriceBand: 10_000_000 /* 0.1 */, OrdersPerSecond: 1000, OrderBurst: 2000},
		MemoryBytes: 10 << 20, Priority: 35, InitTimeout: 20 * time.Second, IdleTimeout: 5 * time.Minute,
		ValidatorMemoryBytes: 30 << 20, ValidatorPriority: 35, ValidatorIdleTimeout: 5 * time.Minute,
	}
}

// Server implements tradsys.risk.v1.RiskService.
type Server struct {
	riskv1.UnimplementedRiskServiceServer
	limits     atomic.Pointer[checks.LimitStore]
	checker    *checks.Checker
	main       *lazy.Component
	validators map[string]*lazy.Component
	stats      map[string]*validatorStats
	follow     *follower
	log        *zap.Logger
	checks     *prometheus.CounterVec // by validator and result
}

type validatorStats struct{ checks, failures atomic.Uint64 }

// Setup builds the risk service on s.
func Setup(ctx context.Context, s *service.Service, o Options) (*Server, error) {
	d := Defaults()
	if o.DataDir == "" {
		o.DataDir = d.DataDir
	}
	if o.MemoryBytes <= 0 {
		o.MemoryBytes = d.MemoryBytes
	}
	if o.ValidatorMemoryBytes <= 0 {
		o.ValidatorMemoryBytes = d.ValidatorMemoryBytes
	}
	trades := checks.NewLastTrades()
	srv := &Server{checker: checks.NewChecker(trades), validators: map[string]*lazy.Component{},
		stats: map[string]*validatorStats{}, log: s.Log,
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tradsys_risk_checks_total",
			Help: "Validator checks by validator and result (passed, failed, unavailable: the validator could not be loaded)."},
			[]string{"validator", "result"})}
	s.Server.Registry().MustRegister(srv.checks)
	var conn *grpc.ClientConn
	if o.Matching != "" {
		var err error
		if conn, err = s.Pool.Conn(o.Matching); err != nil {
			return nil, err
		}
	}
	srv.follow = &follower{conn: conn, trades: trades, log: s.Log.Named("trades"), symbols: map[string]context.CancelFunc{}}
	var err error
	srv.main, err = s.Runtime.Add(lazy.Spec{
		Name: MainComponent, MemoryBytes: o.MemoryBytes, Priority: o.Priority, Pinned: true,
		InitTimeout: o.InitTimeout, IdleTimeout: o.IdleTimeout, DrainTimeout: 10 * time.Second,
		Init: func(context.Context) error {
			l, err := checks.OpenLimits(o.DataDir, o.Defaults)
			if err != nil {
				return err
			}
			srv.limits.Store(l)
			return nil
		},
		Shutdown: func(context.Context) error {
			if l := srv.limits.Swap(nil); l != nil {
				return l.Close()
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	for _, name := range checks.Names {
		spec := lazy.Spec{
			Name: ValidatorPrefix + name, MemoryBytes: o.ValidatorMemoryBytes, Priority: o.ValidatorPriority,
			InitTimeout: o.InitTimeout, IdleTimeout: o.ValidatorIdleTimeout, DrainTimeout: 10 * time.Second,
			Init: func(context.Context) error {
				s.Log.Info("risk validator loaded", zap.String("validator", name))
				return nil
			},
			Shutdown: func(context.Context) error {
				switch name {
				case checks.PriceBand:
					srv.follow.stopAll()
				case checks.OrderRate:
					srv.checker.ForgetRates()
				}
				s.Log.Info("risk validator unloaded", zap.String("validator", name))
				return nil
			},
		}
		c, err := s.Runtime.Add(spec)
		if err != nil {
			return nil, err
		}
		srv.validators[name] = c
		srv.stats[name] = &validatorStats{}
	}
	go func() { <-ctx.Done(); srv.follow.stopAll() }()
	riskv1.RegisterRiskServiceServer(s.Server.GRPC(), srv)
	// The limit store is needed by validation and the limit calls; the
	// validators are entered per check (see ValidateOrder).
	for _, m := range []string{riskv1.RiskService_ValidateOrder_FullMethodName, riskv1.RiskService_GetLimits_FullMethodName,
		riskv1.RiskService_SetLimits_FullMethodName} {
		s.Gate.Require(m, srv.main)
	}
	return srv, nil
}

// follower keeps the last trade price of the symbols the price band has
// been asked about, from matching's trade stream.
type follower struct {
	conn    *grpc.ClientConn
	trades  *checks.LastTrades
	log     *zap.Logger
	mu      sync.Mutex
	symbols map[string]context.CancelFunc
}
