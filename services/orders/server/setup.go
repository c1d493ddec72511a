// Package server is the orders service's gRPC layer:
// tradsys.orders.v1.OrderService on top of the oms domain, the lazy
// component "orders" (the order store, trade followers and reconciler), the
// clients of risk and matching, and the error table.
package server

import (
	"context"
	"errors"
	"flag"
	"sync/atomic"
	"time"

	"github.com/tradsys/mesh/pkg/lazy"
	"github.com/tradsys/mesh/pkg/service"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	"github.com/tradsys/mesh/services/orders/oms"
	"go.uber.org/zap"
)

// MainComponent is the orders component.
const MainComponent = "orders"

// Options are the service's own settings; RegisterFlags makes each a flag.
type Options struct {
	DataDir     string
	NoFsync     bool // benchmarks only
	KeepUpdates int
	// Risk and Matching are the targets of the services orders calls
	// ("host:port" or "tradsys:///<component>").
	Risk, Matching string
	// StreamSubmits sends submits to matching on one shared SubmitOrders
	// stream instead of a unary call each.
	StreamSubmits bool
	// StreamRisk sends risk checks on one shared ValidateOrders stream
	// instead of a unary call each.
	StreamRisk bool
	// StreamIdle is how long a shared stream may go unused before it is
	// closed (0: a minute); the next call opens a new one.
	StreamIdle time.Duration
	// CallTimeout bounds each call to risk and matching when the caller's
	// deadline is later (or unset).
	CallTimeout time.Duration
	// Store is the main component "orders" (the order store).
	Store lazy.Settings
}

// Defaults are the seed's values.
func Defaults() Options {
	return Options{
		DataDir: ".tradsys/orders", KeepUpdates: 100_000,
		Risk: "tradsys:///risk", Matching: "tradsys:///matching", CallTimeout: 10 * time.Second,
		StreamSubmits: true, StreamRisk: true,
		Store: lazy.Settings{MemoryBytes: 100 << 20, Priority: 20, InitTimeout: 20 * time.Second, IdleTimeout: 5 * time.Minute},
	}
}

// RegisterFlags makes every option a flag (and TRADSYS_* variable) with
// the current value as its default.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "directory of the order store (bbolt)")
	fs.BoolVar(&o.NoFsync, "no-fsync", o.NoFsync, "do not fsync the order store (benchmarks only: acknowledged orders may be lost)")
	fs.IntVar(&o.KeepUpdates, "keep-updates", o.KeepUpdates, "order updates kept for StreamOrderUpdates resumption")
	fs.StringVar(&o.Risk, "risk", o.Risk, "risk service (host:port or tradsys:///risk)")
	fs.StringVar(&o.Matching, "matching", o.Matching, "matching service (host:port or tradsys:///matching)")
	fs.BoolVar(&o.StreamSubmits, "stream-submits", o.StreamSubmits, "send submits to matching on one shared SubmitOrders stream (false: a unary SubmitOrder each)")
	fs.BoolVar(&o.StreamRisk, "stream-risk", o.StreamRisk, "send risk checks on one shared ValidateOrders stream (false: a unary ValidateOrder each)")
	fs.DurationVar(&o.CallTimeout, "call-timeout", o.CallTimeout, "longest wait for one call to risk or matching")
	service.ComponentFlags(fs, "", "the order store", &o.Store)
}

// Setup builds the orders service on s.
func Setup(ctx context.Context, s *service.Service, o Options) (*Server, error) {
	d := Defaults()
	if o.DataDir == "" {
		o.DataDir = d.DataDir
	}
	if o.Store.MemoryBytes <= 0 {
		o.Store.MemoryBytes = d.Store.MemoryBytes
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = d.CallTimeout
	}
	if o.Risk == "" || o.Matching == "" {
		return nil, errors.New("orders: --risk and --matching must be set")
	}
	riskConn, err := s.Pool.Conn(o.Risk)
	if err != nil {
		return nil, err
	}
	matchConn, err := s.Pool.Conn(o.Matching)
	if err != nil {
		return nil, err
	}
	srv := &Server{done: ctx.Done(), log: s.Log}
	metrics := oms.NewMetrics(s.Server.Registry())
	if o.StreamIdle <= 0 {
		o.StreamIdle = defaultStreamIdle
	}
	risk := newRiskClient(riskConn, o.CallTimeout, o.StreamRisk, o.StreamIdle)
	match := newMatchingClient(matchConn, o.CallTimeout, o.StreamSubmits, o.StreamIdle)
	go func() {
		<-ctx.Done()
		if risk.stream != nil {
			risk.stream.Close()
		}
		if match.stream != nil {
			match.stream.Close()
		}
	}()
	srv.main, err = s.Runtime.Add(lazy.Spec{
		Name: MainComponent, MemoryBytes: o.Store.MemoryBytes, Priority: o.Store.Priority, Pinned: true,
		InitTimeout: o.Store.InitTimeout, IdleTimeout: o.Store.IdleTimeout, DrainTimeout: 10 * time.Second,
		Init: func(context.Context) error {
			m, err := oms.Open(oms.Config{Dir: o.DataDir, NoSync: o.NoFsync, KeepUpdates: o.KeepUpdates,
				Risk: risk, Matching: match, Logger: s.Log.Named("oms"), Metrics: metrics})
			if err != nil {
				return err
			}
			srv.oms.Store(m)
			return nil
		},
		Shutdown: func(context.Context) error {
			if m := srv.oms.Swap(nil); m != nil {
				return m.Close()
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	ordersv1.RegisterOrderServiceServer(s.Server.GRPC(), srv)
	for _, m := range ordersv1.OrderService_ServiceDesc.Methods {
		s.Gate.Require("/"+ordersv1.OrderService_ServiceDesc.ServiceName+"/"+m.MethodName, srv.main)
	}
	for _, m := range ordersv1.OrderService_ServiceDesc.Streams {
		method := "/" + ordersv1.OrderService_ServiceDesc.ServiceName + "/" + m.StreamName
		if method == ordersv1.OrderService_SubmitOrders_FullMethodName {
			continue // enters the component per order, not for the stream's life (see there)
		}
		s.Gate.Require(method, srv.main)
	}
	return srv, nil
}

// Server implements tradsys.orders.v1.OrderService.
type Server struct {
	ordersv1.UnimplementedOrderServiceServer
	oms  atomic.Pointer[oms.OMS]
	main *lazy.Component
	done <-chan struct{}
	log  *zap.Logger
}

// OMS is the domain behind the server while the component is active
// (tests use it); nil when dormant.
func (s *Server) OMS() *oms.OMS { return s.oms.Load() }

func (s *Server) domain() (*oms.OMS, error) {
	if m := s.oms.Load(); m != nil {
		return m, nil
	}
	return nil, oms.ErrClosed
}
