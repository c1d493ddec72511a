// Package orderstest runs the order path for tests of any module: a real
// coordinator (embedded etcd), matching, risk and orders, each a real
// service served in-process on loopback TCP, wired orders -> risk -> matching
// as in the mesh.
package orderstest

import (
	"context"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/service"
	"github.com/tradsys/mesh/pkg/service/servicetest"
	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	riskv1 "github.com/tradsys/mesh/proto/tradsys/risk/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	matchingserver "github.com/tradsys/mesh/services/matching/server"
	"github.com/tradsys/mesh/services/orders/server"
	riskserver "github.com/tradsys/mesh/services/risk/server"
	"google.golang.org/grpc"
)

// Running is one service served in-process (servicetest.Start) and a
// client connection to it.
type Running struct {
	Addr string
	Conn *grpc.ClientConn
	// Stop stops the service (also done at cleanup).
	Stop func()
}

func serve(t testing.TB, name, coordAddr string, setup func(ctx context.Context, s *service.Service) error) *Running {
	t.Helper()
	r := servicetest.Start(t, name, coordAddr, 0, setup)
	return &Running{Addr: r.Addr(), Conn: servicetest.Dial(t, r.Addr()), Stop: r.Stop}
}

// Config tweaks the mesh; zero values take test-friendly defaults.
type Config struct {
	// Budget is the coordinator's memory budget (default 1 GiB).
	Budget int64
	// Risk and Orders adjust the services' options.
	Risk     func(*riskserver.Options)
	Orders   func(*server.Options)
	Matching func(*matchingserver.Options)
}

// Mesh is coordinator + matching + risk + orders.
type Mesh struct {
	CoordAddr              string
	Matching, Risk, Orders *Running
	OrderService           ordersv1.OrderServiceClient
	RiskService            riskv1.RiskServiceClient
	MatchingService        matchingv1.MatchingServiceClient
	// OrdersOptions start orders again (StartOrders) on the same store.
	OrdersOptions server.Options
}

// Start runs the mesh until the test ends.
func Start(t testing.TB, c Config) *Mesh {
	t.Helper()
	coord, _ := coordtest.Start(t, coordtest.Config{Budget: c.Budget})
	m := &Mesh{CoordAddr: coord.Addr()}
	m.Matching = serve(t, "matching", m.CoordAddr, func(ctx context.Context, s *service.Service) error {
		o := matchingserver.Defaults()
		o.DataDir, o.TradeRing = t.TempDir(), 4096
		if c.Matching != nil {
			c.Matching(&o)
		}
		_, err := matchingserver.Setup(ctx, s, o)
		return err
	})
	m.Risk = serve(t, "risk", m.CoordAddr, func(ctx context.Context, s *service.Service) error {
		o := riskserver.Defaults()
		o.DataDir, o.Matching = t.TempDir(), m.Matching.Addr
		if c.Risk != nil {
			c.Risk(&o)
		}
		_, err := riskserver.Setup(ctx, s, o)
		return err
	})
	m.OrdersOptions = server.Defaults()
	m.OrdersOptions.DataDir, m.OrdersOptions.Risk, m.OrdersOptions.Matching = t.TempDir(), m.Risk.Addr, m.Matching.Addr
	m.OrdersOptions.CallTimeout = 3 * time.Second
	if c.Orders != nil {
		c.Orders(&m.OrdersOptions)
	}
	m.StartOrders(t)
	m.RiskService = riskv1.NewRiskServiceClient(m.Risk.Conn)
	m.MatchingService = matchingv1.NewMatchingServiceClient(m.Matching.Conn)
	return m
}

// StartOrders (re)starts the orders service with OrdersOptions.
func (m *Mesh) StartOrders(t testing.TB) {
	t.Helper()
	m.Orders = serve(t, "orders", m.CoordAddr, func(ctx context.Context, s *service.Service) error {
		_, err := server.Setup(ctx, s, m.OrdersOptions)
		return err
	})
	m.OrderService = ordersv1.NewOrderServiceClient(m.Orders.Conn)
}

// Instrument creates an instrument.
func (m *Mesh) Instrument(t testing.TB, symbol, tick, lot string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := m.OrderService.CreateInstrument(ctx, &ordersv1.CreateInstrumentRequest{Instrument: &ordersv1.Instrument{
		Symbol: symbol, TickSize: tick, LotSize: lot}}); err != nil {
		t.Fatal(err)
	}
}
