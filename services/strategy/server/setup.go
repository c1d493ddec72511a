// Package server is the strategy service's gRPC layer:
// tradsys.strategy.v1.StrategyService over the strategies domain, the lazy
// components (the host "strategy" and one leased plugin per strategy,
// "strategy/<type>/<name>"), and the error table.
package server

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/tradsys/mesh/pkg/config"
	"github.com/tradsys/mesh/pkg/lazy"
	"github.com/tradsys/mesh/pkg/service"
	connectorsv1 "github.com/tradsys/mesh/proto/tradsys/connectors/v1"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	strategyv1 "github.com/tradsys/mesh/proto/tradsys/strategy/v1"
	"github.com/tradsys/mesh/services/strategy/strategies"
	"go.uber.org/zap"
)

// MainComponent is the strategy host: it resumes the saved strategies.
const MainComponent = "strategy"

// Options are the service's own settings (main.go fills them from flags).
type Options struct {
	DataDir string
	// Targets of the services strategies use ("host:port" or
	// "tradsys:///<component>").
	Connectors, Orders string
	// Host is the component "strategy" (it never idles: it hosts the
	// running strategies).
	Host lazy.Settings
	// Strategy is each strategy plugin's priority and init timeout (they
	// never idle); their memory is by type, TypeMemory.
	Strategy   lazy.Settings
	TypeMemory map[strategies.Type]int64
}

// Defaults are the seed's values.
func Defaults() Options {
	tm := map[strategies.Type]int64{}
	for _, t := range []strategies.Type{strategies.MarketMaking, strategies.TrendFollowing, strategies.TWAP, strategies.StatisticalArbitrage} {
		tm[t] = strategies.MemoryBytes(t)
	}
	return Options{
		DataDir: ".tradsys/strategy", Connectors: "tradsys:///connectors", Orders: "tradsys:///orders",
		Host:       lazy.Settings{MemoryBytes: 16 << 20, Priority: 30, InitTimeout: 30 * time.Second, IdleTimeout: -1},
		Strategy:   lazy.Settings{Priority: 30, InitTimeout: 30 * time.Second, IdleTimeout: -1},
		TypeMemory: tm,
	}
}

// RegisterFlags adds the strategy service's own flags, defaulting to o's
// values.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "directory of the saved strategy configs")
	fs.StringVar(&o.Connectors, "connectors", o.Connectors, "connectors service (host:port or tradsys:///connectors)")
	fs.StringVar(&o.Orders, "orders", o.Orders, "orders service (host:port or tradsys:///orders)")
	service.ComponentFlags(fs, "", "the strategy host", &o.Host)
	fs.Func("strategy-priority", fmt.Sprintf("priority of the strategies' memory leases, lower is more important (default %d)", o.Strategy.Priority),
		func(v string) error {
			n, err := strconv.ParseInt(v, 10, 32)
			o.Strategy.Priority = int32(n)
			return err
		})
	fs.DurationVar(&o.Strategy.InitTimeout, "strategy-init-timeout", o.Strategy.InitTimeout, "how long starting one strategy may take")
	for t := range o.TypeMemory {
		fs.Var(typeMemory{o.TypeMemory, t}, string(t)+"-memory", "memory estimate (lease) of a "+string(t)+" strategy")
	}
}

// typeMemory is one strategy type's memory as a flag.
type typeMemory struct {
	m map[strategies.Type]int64
	t strategies.Type
}

func (f typeMemory) String() string {
	if f.m == nil {
		return ""
	}
	b := config.ByteSize(f.m[f.t])
	return b.String()
}

func (f typeMemory) Set(s string) error {
	var b config.ByteSize
	if err := b.Set(s); err != nil {
		return err
	}
	f.m[f.t] = int64(b)
	return nil
}

// MinStrategyLease is the least a running strategy's lease shrinks to.
const MinStrategyLease = 1 << 20

// Server implements tradsys.strategy.v1.StrategyService.
type Server struct {
	strategyv1.UnimplementedStrategyServiceServer
	m    *strategies.Manager
	rt   *lazy.Runtime
	o    Options
	log  *zap.Logger
	main *lazy.Component

	mu    sync.Mutex
	comps map[string]*lazy.Component // by component name
}

// Setup builds the strategy service on s.
func Setup(ctx context.Context, s *service.Service, o Options) (*Server, error) {
	d := Defaults()
	if o.DataDir == "" {
		o.DataDir = d.DataDir
	}
	if o.TypeMemory == nil {
		o.TypeMemory = d.TypeMemory
	}
	cc, err := s.Pool.Conn(o.Connectors)
	if err != nil {
		return nil, err
	}
	oc, err := s.Pool.Conn(o.Orders)
	if err != nil {
		return nil, err
	}
	m, err := strategies.Open(o.DataDir, &marketData{c: connectorsv1.NewConnectorServiceClient(cc)},
		&orders{c: ordersv1.NewOrderServiceClient(oc)}, s.Log.Named("strategies"))
	if err != nil {
		return nil, err
	}
	srv := &Server{m: m, rt: s.Runtime, o: o, log: s.Log, comps: map[string]*lazy.Component{}}
	// Every saved strategy is a declared component from the start, so the
	// registry lists them (dormant until they run).
	for _, st := range m.List() {
		if _, err := srv.component(st.Config); err != nil {
			return nil, err
		}
	}
	host := o.Host.Spec(MainComponent)
	host.Pinned = true
	if host.IdleTimeout == 0 {
		host.IdleTimeout = -1 // it hosts running strategies
	}
	host.Init = func(context.Context) error {
		go srv.resume(ctx)
		return nil
	}
	host.Shutdown = func(ctx context.Context) error {
		for _, st := range m.List() {
			if c := srv.componentOf(st.Config); c != nil {
				_ = c.Deactivate(ctx, "host unloading")
			}
		}
		return nil
	}
	srv.main, err = s.Runtime.Add(host)
	if err != nil {
		return nil, err
	}
	strategyv1.RegisterStrategyServiceServer(s.Server.GRPC(), srv)
	for _, method := range []string{strategyv1.StrategyService_StartStrategy_FullMethodName, strategyv1.StrategyService_StopStrategy_FullMethodName,
		strategyv1.StrategyService_ListStrategies_FullMethodName, strategyv1.StrategyService_GetStrategyMetrics_FullMethodName} {
		s.Gate.Require(method, srv.main)
	}
	// Strategies that were running before a restart run again: the host
	// activates at start when there are any.
	for _, st := range m.List() {
		if st.Running {
			go func() {
				if err := srv.main.Activate(ctx); err != nil {
					s.Log.Warn("resuming strategies", zap.Error(err))
				}
			}()
			break
		}
	}
	return srv, nil
}

// resume starts every strategy the user left running.
func (s *Server) resume(ctx context.Context) {
	for _, st := range s.m.List() {
		if !st.Running {
			continue
		}
		c, err := s.component(st.Config)
		if err == nil {
			err = c.Activate(ctx)
		}
		if err != nil {
			s.log.Warn("strategy did not resume", zap.String("strategy", st.Config.Name), zap.Error(err))
			continue
		}
		s.log.Info("strategy resumed", zap.String("strategy", st.Config.Name))
	}
}

func (s *Server) componentOf(cfg strategies.Config) *lazy.Component {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.comps[strategies.Component(cfg.Type, cfg.Name)]
}

// component is the strategy's lazy component, declared on first use.
func (s *Server) component(cfg strategies.Config) (*lazy.Component, error) {
	name := strategies.Component(cfg.Type, cfg.Name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.comps[name]; c != nil {
		return c, nil
	}
	mem := s.o.TypeMemory[cfg.Type]
	if mem <= 0 {
		mem = strategies.MemoryBytes(cfg.Type)
	}
	strategy := cfg.Name
	spec := s.o.Strategy.Spec(name)
	spec.MemoryBytes, spec.DrainTimeout = mem, 5*time.Second
	if spec.IdleTimeout == 0 {
		spec.IdleTimeout = -1 // a strategy trades without calls: never idle by default
	}
	spec.Init = func(context.Context) error { return s.m.Run(strategy) }
	spec.Shutdown = func(ctx context.Context) error { return s.m.Halt(ctx, strategy) }
	// The seed's estimate is what it is granted first; then the lease
	// follows what the strategy really holds (a few hundred KiB: its open
	// orders, its samples, its streams), down to MinStrategyLease.
	spec.Usage, spec.MinBytes = func() int64 { return s.m.Usage(strategy) }, MinStrategyLease
	c, err := s.rt.Add(spec)
	if err != nil {
		return nil, fmt.Errorf("strategy component %s: %w", name, err)
	}
	s.comps[name] = c
	return c, nil
}
