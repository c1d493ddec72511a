// Package server is the orders service's gRPC layer:
// tradsys.orders.v1.OrderService on top of the oms domain, the lazy
// component "orders" (the order store, trade followers and reconciler), the
// clients of risk and matching, and the error table.
package server

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/tradsys/mesh/pkg/lazy"
	"github.com/tradsys/mesh/pkg/service"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	"github.com/tradsys/mesh/services/orders/oms"
)

// MainComponent is the orders component.
const MainComponent = "orders"

// Options are the service's own settings (main.go fills them from flags).
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
	// CallTimeout bounds each call to risk and matching when the caller's
	// deadline is later (or unset).
	CallTimeout time.Duration
	MemoryBytes int64
	Priority    int32
	InitTimeout time.Duration
	IdleTimeout time.Duration
}

// Defaults are the seed's values.
func Defaults() Options {
	return Options{
		DataDir: ".tradsys/orders", KeepUpdates: 100_000,
		Risk: "tradsys:///risk", Matching: "tradsys:///matching", CallTimeout: 10 * time.Second,
		MemoryBytes: 100 << 20, Priority: 20, InitTimeout: 20 * time.Second, IdleTimeout: 5 * time.Minute,
	}
}

// Setup builds the orders service on s.
func Setup(ctx context.Context, s *service.Service, o Options) (*Server, error) {
	d := Defaults()
	if o.DataDir == "" {
		o.DataDir = d.DataDir
	}
	if o.MemoryBytes <= 0 {
		o.MemoryBytes = d.MemoryBytes
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
	srv := &Server{done: ctx.Done()}
	metrics := oms.NewMetrics(s.Server.Registry())
	risk := &riskClient{conn: riskConn, timeout: o.CallTimeout}
	match := &matchingClient{conn: matchConn, timeout: o.CallTimeout}
	if o.StreamSubmits {
		match.stream = &submitStream{conn: matchConn}
		go func() { <-ctx.Done(); match.stream.close() }()
	}
	srv.main, err = s.Runtime.Add(lazy.Spec{
		Name: MainComponent, MemoryBytes: o.MemoryBytes, Priority: o.Priority, Pinned: true,
		InitTimeout: o.InitTimeout, IdleTimeout: o.IdleTimeout, DrainTimeout: 10 * time.Second,
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
		s.Gate.Require("/"+ordersv1.OrderService_ServiceDesc.ServiceName+"/"+m.StreamName, srv.main)
	}
	return srv, nil
}

// Server implements tradsys.orders.v1.OrderService.
type Server struct {
	ordersv1.UnimplementedOrderServiceServer
	oms  atomic.Pointer[oms.OMS]
	main *lazy.Component
	done <-chan struct{}
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
