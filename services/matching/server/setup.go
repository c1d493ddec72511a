// Package server is the matching service's gRPC layer:
// tradsys.matching.v1.MatchingService on top of the matching domain, the
// lazy components (the engine "matching" and one leased plugin per
// algorithm, "matching/algorithm/<name>"), and the error table.
package server

import (
	"context"
	"time"

	"github.com/tradsys/mesh/pkg/lazy"
	"github.com/tradsys/mesh/pkg/service"
	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	"github.com/tradsys/mesh/services/matching/matching"
	"go.uber.org/zap"
)

// Component names.
const (
	MainComponent   = "matching"
	AlgorithmPrefix = "matching/algorithm/"
)

// Options are the service's own settings (main.go fills them from flags).
type Options struct {
	DataDir     string
	NoFsync     bool
	CommitDelay time.Duration // --fsync-interval
	TradeRing   int
	// Main component: memory estimate (raised to 1.5x the books' memory at
	// the last unload when that is larger), priority, timeouts.
	MemoryBytes int64
	Priority    int32
	InitTimeout time.Duration
	IdleTimeout time.Duration
	// Algorithm plugins.
	AlgorithmMemoryBytes int64
	AlgorithmPriority    int32
	AlgorithmIdleTimeout time.Duration
	DefaultAlgorithm     string
	// LockWait bounds waiting for the lock "matching/algorithms".
	LockWait time.Duration
	// DoneOrders and DoneOrderTTL bound the finished orders GetOrder still
	// answers for (see matching.Config).
	DoneOrders   int
	DoneOrderTTL time.Duration
}

// Defaults are the seed's values.
func Defaults() Options {
	return Options{
		DataDir: ".tradsys/matching", TradeRing: 16384,
		MemoryBytes: 100 << 20, Priority: 20, InitTimeout: 30 * time.Second, IdleTimeout: 5 * time.Minute,
		AlgorithmMemoryBytes: 50 << 20, AlgorithmPriority: 30, AlgorithmIdleTimeout: 5 * time.Minute,
		DefaultAlgorithm: "fifo", LockWait: 5 * time.Second,
	}
}

// Setup builds the matching service on s: the domain, the components, the
// gate rules and the gRPC service. ctx is the service's lifetime (streams
// end when it does).
func Setup(ctx context.Context, s *service.Service, o Options) (*Server, error) {
	d := Defaults()
	if o.TradeRing <= 0 {
		o.TradeRing = d.TradeRing
	}
	if o.MemoryBytes <= 0 {
		o.MemoryBytes = d.MemoryBytes
	}
	if o.AlgorithmMemoryBytes <= 0 {
		o.AlgorithmMemoryBytes = d.AlgorithmMemoryBytes
	}
	if o.LockWait <= 0 {
		o.LockWait = d.LockWait
	}
	if o.DataDir == "" {
		o.DataDir = d.DataDir
	}
	m, err := matching.New(matching.Config{Dir: o.DataDir, NoSync: o.NoFsync, CommitDelay: o.CommitDelay,
		TradeRing: o.TradeRing, DefaultAlgorithm: o.DefaultAlgorithm, DoneOrders: o.DoneOrders, DoneOrderTTL: o.DoneOrderTTL,
		Logger: s.Log.Named("matching")})
	if err != nil {
		return nil, err
	}
	// The estimate follows the books' size at the last unload.
	mem := max(o.MemoryBytes, m.LastMemoryBytes()*3/2)
	srv := &Server{m: m, locker: s.Coord, lockWait: o.LockWait, done: ctx.Done(), log: s.Log, algos: map[string]*lazy.Component{}}
	srv.main, err = s.Runtime.Add(lazy.Spec{
		Name: MainComponent, MemoryBytes: mem, Priority: o.Priority, Pinned: true,
		InitTimeout: o.InitTimeout, IdleTimeout: o.IdleTimeout, DrainTimeout: 10 * time.Second,
		Init: func(ctx context.Context) error {
			_, err := m.Open(ctx)
			return err
		},
		Shutdown: m.Close,
		// The lease follows the books; when it may not grow, new resting
		// orders are refused (submit) and nothing accepted is lost.
		Usage: m.MemoryBytes,
	})
	if err != nil {
		return nil, err
	}
	for _, name := range matching.Algorithms() {
		c, err := s.Runtime.Add(lazy.Spec{
			Name: AlgorithmPrefix + name, MemoryBytes: o.AlgorithmMemoryBytes, Priority: o.AlgorithmPriority,
			InitTimeout: o.InitTimeout, IdleTimeout: o.AlgorithmIdleTimeout, DrainTimeout: 10 * time.Second,
			Init: func(context.Context) error {
				s.Log.Info("matching algorithm loaded", zap.String("algorithm", name))
				return nil
			},
			Shutdown: func(context.Context) error {
				s.Log.Info("matching algorithm unloaded", zap.String("algorithm", name))
				return nil
			},
		})
		if err != nil {
			return nil, err
		}
		srv.algos[name] = c
	}
	matchingv1.RegisterMatchingServiceServer(s.Server.GRPC(), srv)
	for _, method := range []string{matchingv1.MatchingService_SubmitOrder_FullMethodName, matchingv1.MatchingService_CancelOrder_FullMethodName,
		matchingv1.MatchingService_ReplaceOrder_FullMethodName, matchingv1.MatchingService_GetOrder_FullMethodName,
		matchingv1.MatchingService_GetOrderBook_FullMethodName, matchingv1.MatchingService_StreamTrades_FullMethodName,
		matchingv1.MatchingService_SubmitOrders_FullMethodName, matchingv1.MatchingService_SetSymbolAlgorithm_FullMethodName,
		matchingv1.MatchingService_ListSymbols_FullMethodName} {
		s.Gate.Require(method, srv.main)
	}
	return srv, nil
}
