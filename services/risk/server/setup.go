// Package server is the risk service's gRPC layer:
// tradsys.risk.v1.RiskService on top of the checks domain, the lazy
// components (the limit store "risk" and one leased plugin per validator,
// "risk/validator/<name>"), the follower of matching's trades (the price
// band's last trade) and the error table.
package server

import (
	"context"
	"flag"
	"fmt"
	"strconv"
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

// Options are the service's own settings; RegisterFlags makes each a flag.
type Options struct {
	DataDir string
	// Matching is where the price band follows trades ("host:port" or
	// "tradsys:///matching"); empty: no price band data.
	Matching string
	// Defaults are the limits where no account entry sets one.
	Defaults checks.Limits
	// Store is the main component "risk" (the limit store).
	Store lazy.Settings
	// Validator is each validator plugin "risk/validator/<name>".
	Validator lazy.Settings
}

// Defaults are the seed's values (a risk validator: priority 35, init
// 20 s), but a validator leases 1 MiB, not the seed's 30 MB: what it holds
// is the order rate's bucket per account or the price band's last price
// and trade stream per symbol (Usage follows them), or nothing (the limits
// are the store's, the position is the order's).
func Defaults() Options {
	return Options{
		DataDir: ".tradsys/risk", Matching: "tradsys:///matching",
		Defaults:  checks.Limits{PriceBand: 10_000_000 /* 0.1 */, OrdersPerSecond: 1000, OrderBurst: 2000},
		Store:     lazy.Settings{MemoryBytes: 10 << 20, Priority: 35, InitTimeout: 20 * time.Second, IdleTimeout: 5 * time.Minute},
		Validator: lazy.Settings{MemoryBytes: 1 << 20, Priority: 35, InitTimeout: 20 * time.Second, IdleTimeout: 5 * time.Minute},
	}
}

// RegisterFlags makes every option a flag (and TRADSYS_* variable) with
// the current value as its default.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	l := &o.Defaults
	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "directory of the limit store (bbolt)")
	fs.StringVar(&o.Matching, "matching", o.Matching, "matching service whose trades feed the price band (host:port or tradsys:///matching; empty: none)")
	fs.TextVar(&l.MaxOrderQuantity, "max-order-quantity", l.MaxOrderQuantity, "default largest quantity of one order (0: none)")
	fs.TextVar(&l.MaxNotional, "max-notional", l.MaxNotional, "default largest price x quantity of one order (0: none)")
	fs.TextVar(&l.MaxPosition, "max-position", l.MaxPosition, "default largest absolute position per account and symbol (0: none)")
	fs.TextVar(&l.PriceBand, "price-band", l.PriceBand, "default price band around the last trade, a fraction (0.1 is 10%; 0: none)")
	fs.Float64Var(&l.OrdersPerSecond, "orders-per-second", l.OrdersPerSecond, "default order rate per account (0: none)")
	fs.Func("order-burst", fmt.Sprintf("default order-rate burst per account (default %d)", l.OrderBurst), func(s string) error {
		n, err := strconv.ParseInt(s, 10, 32)
		l.OrderBurst = int32(n)
		return err
	})
	service.ComponentFlags(fs, "", "the limit store", &o.Store)
	service.ComponentFlags(fs, "validator-", "each validator plugin", &o.Validator)
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
	done       <-chan struct{}        // the service is stopping
}

type validatorStats struct{ checks, failures atomic.Uint64 }

// Setup builds the risk service on s.
func Setup(ctx context.Context, s *service.Service, o Options) (*Server, error) {
	d := Defaults()
	if o.DataDir == "" {
		o.DataDir = d.DataDir
	}
	if o.Store.MemoryBytes <= 0 {
		o.Store.MemoryBytes = d.Store.MemoryBytes
	}
	if o.Validator.MemoryBytes <= 0 {
		o.Validator.MemoryBytes = d.Validator.MemoryBytes
	}
	trades := checks.NewLastTrades()
	srv := &Server{checker: checks.NewChecker(trades), validators: map[string]*lazy.Component{},
		stats: map[string]*validatorStats{}, log: s.Log, done: ctx.Done(),
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
	srv.follow = &follower{conn: conn, trades: trades, log: s.Log.Named("trades"), symbols: map[string]*followed{}}
	var err error
	srv.main, err = s.Runtime.Add(lazy.Spec{
		Name: MainComponent, MemoryBytes: o.Store.MemoryBytes, Priority: o.Store.Priority, Pinned: true,
		InitTimeout: o.Store.InitTimeout, IdleTimeout: o.Store.IdleTimeout, DrainTimeout: 10 * time.Second,
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
			Name: ValidatorPrefix + name, MemoryBytes: o.Validator.MemoryBytes, Priority: o.Validator.Priority,
			InitTimeout: o.Validator.InitTimeout, IdleTimeout: o.Validator.IdleTimeout, DrainTimeout: 10 * time.Second,
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
		switch name {
		case checks.OrderRate:
			spec.Usage = srv.checker.RateBytes
			spec.OnMemory = func(r *lazy.Refusal) {
				if r != nil { // its lease may not grow: drop what a new bucket would be
					n := srv.checker.ForgetFullBuckets()
					s.Log.Info("order rate's lease may not grow: forgot full buckets", zap.Int("buckets", n))
				}
			}
		case checks.PriceBand:
			spec.Usage = func() int64 { return trades.Bytes() + srv.follow.bytes() }
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
	// validators are entered per check (see ValidateOrder). ValidateOrders
	// enters the store per order, not for the stream's life (see there).
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
	symbols map[string]*followed
}

// followed is one symbol's trade stream: cancel stops it; ready is closed
// once the band has the symbol's last trade price, or knows there is none
// to have (no trade yet, or matching did not answer).
type followed struct {
	cancel context.CancelFunc
	ready  chan struct{}
}
