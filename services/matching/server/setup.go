// Package server is the matching service's gRPC layer:
// tradsys.matching.v1.MatchingService on top of the matching domain, the
// lazy components (the engine "matching" and one leased plugin per
// algorithm, "matching/algorithm/<name>"), and the error table.
package server

import (
	"context"
	"flag"
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

// Options are the service's own settings; RegisterFlags makes each a flag.
type Options struct {
	DataDir     string
	NoFsync     bool
	CommitDelay time.Duration // --fsync-interval
	TradeRing   int
	// Engine is the main component "matching"; its memory estimate is
	// raised to 1.5x the books' memory at the last unload when that is
	// larger.
	Engine lazy.Settings
	// Algorithm is each algorithm plugin "matching/algorithm/<name>".
	Algorithm        lazy.Settings
	DefaultAlgorithm string
	// LockWait bounds waiting for the lock "matching/algorithms".
	LockWait time.Duration
	// DoneOrders and DoneOrderTTL bound the finished orders GetOrder still
	// answers for (see matching.Config).
	DoneOrders   int
	DoneOrderTTL time.Duration
}

// Defaults are the defaults of every flag (see README for where they
// differ from the seed's table).
func Defaults() Options {
	return Options{
		DataDir: ".tradsys/matching", TradeRing: 16384,
		Engine: lazy.Settings{MemoryBytes: 100 << 20, Priority: 20, InitTimeout: 30 * time.Second, IdleTimeout: 5 * time.Minute},
		// An algorithm plugin holds no memory of its own (the books are the
		// engine's, leased and followed by its lease): its lease is the
		// plugin's lifecycle handle (activation, preemption, the algorithms
		// lock), so it is the smallest unit, not the seed's 50 MB estimate.
		Algorithm:        lazy.Settings{MemoryBytes: 1 << 20, Priority: 30, InitTimeout: 30 * time.Second, IdleTimeout: 5 * time.Minute},
		DefaultAlgorithm: "fifo", LockWait: 5 * time.Second, DoneOrders: 100000, DoneOrderTTL: time.Hour,
	}
}

// RegisterFlags makes every option a flag (and TRADSYS_* variable) with
// the current value as its default.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "directory of the journal, snapshots and trade rings")
	fs.DurationVar(&o.CommitDelay, "fsync-interval", o.CommitDelay, "how long a committer waits before forcing an fsync, so more orders share it (0: at once; group commit always applies)")
	fs.BoolVar(&o.NoFsync, "no-fsync", o.NoFsync, "do not fsync the journal (benchmarks only: acknowledged orders may be lost)")
	fs.IntVar(&o.TradeRing, "trade-ring", o.TradeRing, "trades kept per symbol for StreamTrades resumption")
	service.ComponentFlags(fs, "", "the engine (raised to 1.5x the books at the last unload)", &o.Engine)
	service.ComponentFlags(fs, "algorithm-", "each algorithm plugin", &o.Algorithm)
	fs.StringVar(&o.DefaultAlgorithm, "default-algorithm", o.DefaultAlgorithm, "algorithm of new books: fifo or pro-rata")
	fs.DurationVar(&o.LockWait, "lock-wait", o.LockWait, "how long algorithm changes wait for the lock matching/algorithms")
	fs.IntVar(&o.DoneOrders, "done-orders", o.DoneOrders, "finished (filled or cancelled) orders GetOrder still answers for (negative: none)")
	fs.DurationVar(&o.DoneOrderTTL, "done-order-ttl", o.DoneOrderTTL, "how long GetOrder answers for a finished order (negative: no time bound)")
}

// Setup builds the matching service on s: the domain, the components, the
// gate rules and the gRPC service. ctx is the service's lifetime (streams
// end when it does). Zero options take their defaults.
func Setup(ctx context.Context, s *service.Service, o Options) (*Server, error) {
	d := Defaults()
	if o.TradeRing <= 0 {
		o.TradeRing = d.TradeRing
	}
	if o.Engine.MemoryBytes <= 0 {
		o.Engine.MemoryBytes = d.Engine.MemoryBytes
	}
	if o.Algorithm.MemoryBytes <= 0 {
		o.Algorithm.MemoryBytes = d.Algorithm.MemoryBytes
	}
	if o.Algorithm.InitTimeout <= 0 {
		o.Algorithm.InitTimeout = o.Engine.InitTimeout
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
	mem := max(o.Engine.MemoryBytes, m.LastMemoryBytes()*3/2)
	srv := &Server{m: m, locker: s.Coord, lockWait: o.LockWait, done: ctx.Done(), log: s.Log, algos: map[string]*lazy.Component{}}
	engine := o.Engine.Spec(MainComponent)
	engine.MemoryBytes, engine.Pinned, engine.DrainTimeout = mem, true, 10*time.Second
	engine.Init = func(ctx context.Context) error {
		_, err := m.Open(ctx)
		return err
	}
	engine.Shutdown = func(ctx context.Context) error {
		srv.awaitFollowers(ctx) // passive followers read the last trades first
		srv.closeMu.Lock()
		defer srv.closeMu.Unlock()
		return m.Close(ctx)
	}
	// The lease follows the books; when it may not grow, new resting orders
	// are refused (submit) and nothing accepted is lost.
	engine.Usage = m.MemoryBytes
	srv.main, err = s.Runtime.Add(engine)
	if err != nil {
		return nil, err
	}
	for _, name := range matching.Algorithms() {
		algo := o.Algorithm.Spec(AlgorithmPrefix + name)
		algo.DrainTimeout = 10 * time.Second
		algo.Init = func(context.Context) error {
			s.Log.Info("matching algorithm loaded", zap.String("algorithm", name))
			return nil
		}
		algo.Shutdown = func(context.Context) error {
			s.Log.Info("matching algorithm unloaded", zap.String("algorithm", name))
			return nil
		}
		c, err := s.Runtime.Add(algo)
		if err != nil {
			return nil, err
		}
		srv.algos[name] = c
	}
	matchingv1.RegisterMatchingServiceServer(s.Server.GRPC(), srv)
	for _, method := range []string{
		matchingv1.MatchingService_SubmitOrder_FullMethodName, matchingv1.MatchingService_CancelOrder_FullMethodName,
		matchingv1.MatchingService_ReplaceOrder_FullMethodName, matchingv1.MatchingService_GetOrder_FullMethodName,
		matchingv1.MatchingService_GetOrderBook_FullMethodName, // StreamTrades enters the engine itself (passive streams do not wake it)
		matchingv1.MatchingService_SubmitOrders_FullMethodName, matchingv1.MatchingService_SetSymbolAlgorithm_FullMethodName,
		matchingv1.MatchingService_ListSymbols_FullMethodName,
	} {
		s.Gate.Require(method, srv.main)
	}
	return srv, nil
}
