// Package orderstest runs the order path for tests of any module: a real
// coordinator (embedded etcd), matching, risk and orders, each a real
// service served in-process on loopback TCP, wired orders -> risk -> matching
// as in the mesh.
package orderstest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/grpcserver"
	"github.com/tradsys/mesh/pkg/service"
	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	riskv1 "github.com/tradsys/mesh/proto/tradsys/risk/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	matchingserver "github.com/tradsys/mesh/services/matching/server"
	"github.com/tradsys/mesh/services/orders/server"
	riskserver "github.com/tradsys/mesh/services/risk/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Running is one service served in-process.
type Running struct {
	Addr string
	Conn *grpc.ClientConn
	// Stop stops the service (also done at cleanup).
	Stop func()
}

// Serve starts a service called name against the coordinator at coordAddr;
// setup registers its gRPC services and components.
func Serve(t testing.TB, name, main, coordAddr string, setup func(ctx context.Context, s *service.Service) error) *Running {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(service.Config{Name: name, MainComponent: main},
		service.Options{Coordinator: coordAddr, Flags: grpcserver.Flags{ShutdownTimeout: 5 * time.Second}, Listener: lis,
			SessionTTL: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := setup(ctx, svc); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	conn, err := grpc.NewClient(svc.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	r := &Running{Addr: svc.Addr(), Conn: conn}
	stopped := false
	r.Stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s run: %v", name, err)
		}
		conn.Close()
	}
	t.Cleanup(r.Stop)
	return r
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
	m.Matching = Serve(t, "matching", matchingserver.MainComponent, m.CoordAddr, func(ctx context.Context, s *service.Service) error {
		o := matchingserver.Defaults()
		o.DataDir, o.TradeRing = t.TempDir(), 4096
		if c.Matching != nil {
			c.Matching(&o)
		}
		_, err := matchingserver.Setup(ctx, s, o)
		return err
	})
	m.Risk = Serve(t, "risk", riskserver.MainComponent, m.CoordAddr, func(ctx context.Context, s *service.Service) error {
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
	m.Orders = Serve(t, "orders", server.MainComponent, m.CoordAddr, func(ctx context.Context, s *service.Service) error {
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
