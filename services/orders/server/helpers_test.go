package server_test

import (
	"context"
	"net"
	"strings"
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
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// running is one service served in-process on loopback TCP.
type running struct {
	addr string
	conn *grpc.ClientConn
	stop func()
}

// serve starts a service against the coordinator at coordAddr; setup
// registers its gRPC services and components.
func serve(t testing.TB, name, main, coordAddr string, setup func(ctx context.Context, s *service.Service) error) *running {
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
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	conn, err := grpc.NewClient(svc.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	r := &running{addr: svc.Addr(), conn: conn}
	stopped := false
	r.stop = func() {
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
	t.Cleanup(r.stop)
	return r
}

// mesh is coordinator + matching + risk + orders, in-process, over TCP.
type mesh struct {
	coordAddr      string
	matching, risk *running
	orders         *running
	oc             ordersv1.OrderServiceClient
	rc             riskv1.RiskServiceClient
	mc             matchingv1.MatchingServiceClient
	ordersDir      string
	ordersOpts     server.Options
}

type meshConfig struct {
	budget   int64
	riskOpts func(*riskserver.Options)
}

func startMesh(t testing.TB, c meshConfig) *mesh {
	t.Helper()
	coord, _ := coordtest.Start(t, coordtest.Config{Budget: c.budget})
	m := &mesh{coordAddr: coord.Addr()}
	m.matching = serve(t, "matching", matchingserver.MainComponent, m.coordAddr, func(ctx context.Context, s *service.Service) error {
		o := matchingserver.Defaults()
		o.DataDir, o.TradeRing = t.TempDir(), 4096
		_, err := matchingserver.Setup(ctx, s, o)
		return err
	})
	m.risk = serve(t, "risk", riskserver.MainComponent, m.coordAddr, func(ctx context.Context, s *service.Service) error {
		o := riskserver.Defaults()
		o.DataDir, o.Matching = t.TempDir(), m.matching.addr
		if c.riskOpts != nil {
			c.riskOpts(&o)
		}
		_, err := riskserver.Setup(ctx, s, o)
		return err
	})
	m.ordersDir = t.TempDir()
	m.ordersOpts = server.Defaults()
	m.ordersOpts.DataDir, m.ordersOpts.Risk, m.ordersOpts.Matching = m.ordersDir, m.risk.addr, m.matching.addr
	m.ordersOpts.CallTimeout = 3 * time.Second
	m.startOrders(t)
	m.rc = riskv1.NewRiskServiceClient(m.risk.conn)
	m.mc = matchingv1.NewMatchingServiceClient(m.matching.conn)
	return m
}

func (m *mesh) startOrders(t testing.TB) {
	m.orders = serve(t, "orders", server.MainComponent, m.coordAddr, func(ctx context.Context, s *service.Service) error {
		_, err := server.Setup(ctx, s, m.ordersOpts)
		return err
	})
	m.oc = ordersv1.NewOrderServiceClient(m.orders.conn)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (m *mesh) instrument(t testing.TB, sym, tick, lot string) {
	t.Helper()
	if _, err := m.oc.CreateInstrument(ctxT(t), &ordersv1.CreateInstrumentRequest{Instrument: &ordersv1.Instrument{
		Symbol: sym, TickSize: tick, LotSize: lot}}); err != nil {
		t.Fatal(err)
	}
}

func (m *mesh) submit(t testing.TB, acct, coid, sym string, side ordersv1.Side, price, qty string) *ordersv1.Order {
	t.Helper()
	resp, err := m.oc.SubmitOrder(ctxT(t), &ordersv1.SubmitOrderRequest{Account: acct, ClientOrderId: coid, Symbol: sym,
		Side: side, Type: ordersv1.OrderType_ORDER_TYPE_LIMIT, Price: price, Quantity: qty})
	if err != nil {
		t.Fatalf("submit %s/%s: %v", acct, coid, err)
	}
	return resp.GetOrder()
}

// wantCode fails unless err has code and its message mentions every word.
func wantCode(t testing.TB, err error, code codes.Code, words ...string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("got %v (%v), want %v", st.Code(), err, code)
	}
	for _, w := range words {
		if !strings.Contains(st.Message(), w) {
			t.Fatalf("message %q does not mention %q", st.Message(), w)
		}
	}
}

const (
	buy  = ordersv1.Side_SIDE_BUY
	sell = ordersv1.Side_SIDE_SELL
)
