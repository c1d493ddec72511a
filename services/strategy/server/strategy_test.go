package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/fixed"
	"github.com/tradsys/mesh/pkg/proctest"
	"github.com/tradsys/mesh/pkg/service"
	"github.com/tradsys/mesh/pkg/service/servicetest"
	connectorsv1 "github.com/tradsys/mesh/proto/tradsys/connectors/v1"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	riskv1 "github.com/tradsys/mesh/proto/tradsys/risk/v1"
	strategyv1 "github.com/tradsys/mesh/proto/tradsys/strategy/v1"
	connectorsmanager "github.com/tradsys/mesh/services/connectors/manager"
	connectorsserver "github.com/tradsys/mesh/services/connectors/server"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	matchingserver "github.com/tradsys/mesh/services/matching/server"
	ordersserver "github.com/tradsys/mesh/services/orders/server"
	riskserver "github.com/tradsys/mesh/services/risk/server"
	"github.com/tradsys/mesh/services/strategy/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

var bg = context.Background()

const symbol = "BTC-USD"

// running is one in-process service; stop ends it (and waits).
type running struct {
	addr string
	stop func()
}

func startService(t testing.TB, name, coordAddr string, setup func(ctx context.Context, s *service.Service) error) *running {
	t.Helper()
	r := servicetest.Start(t, name, coordAddr, 0, setup)
	return &running{addr: r.Addr(), stop: r.Stop}
}

func dial(t testing.TB, addr string) *grpc.ClientConn { return servicetest.Dial(t, addr) }

// mesh is coordinator, matching, risk, orders, connectors (a simulator)
// and strategy, each in-process over TCP.
type mesh struct {
	coordAddr, ordersAddr, connectorsAddr string
	coord                                 coordinatorv1.CoordinatorServiceClient
	orders                                ordersv1.OrderServiceClient
	risk                                  riskv1.RiskServiceClient
	strategy                              strategyv1.StrategyServiceClient
	strategySvc                           *running
	strategyDir                           string
}

func startMesh(t testing.TB) *mesh {
	t.Helper()
	r, cc := coordtest.Start(t, coordtest.Config{})
	m := &mesh{coordAddr: r.Addr(), coord: cc, strategyDir: t.TempDir()}
	ms := startService(t, "matching", m.coordAddr, func(ctx context.Context, s *service.Service) error {
		o := matchingserver.Defaults()
		o.DataDir, o.NoFsync = t.TempDir(), true
		_, err := matchingserver.Setup(ctx, s, o)
		return err
	})
	rs := startService(t, "risk", m.coordAddr, func(ctx context.Context, s *service.Service) error {
		o := riskserver.Defaults()
		o.DataDir, o.Matching = t.TempDir(), ms.addr
		_, err := riskserver.Setup(ctx, s, o)
		return err
	})
	os := startService(t, "orders", m.coordAddr, func(ctx context.Context, s *service.Service) error {
		o := ordersserver.Defaults()
		o.DataDir, o.NoFsync, o.Risk, o.Matching = t.TempDir(), true, rs.addr, ms.addr
		_, err := ordersserver.Setup(ctx, s, o)
		return err
	})
	m.ordersAddr = os.addr
	cs := startService(t, "connectors", m.coordAddr, func(ctx context.Context, s *service.Service) error {
		mgr := connectorsmanager.New(connectorsmanager.Options{Runtime: s.Runtime, Logger: s.Log, MemoryBytes: 8 << 20, Priority: 25,
			InitTimeout: 10 * time.Second, IdleTimeout: -1, RingSize: 4096})
		connectorsserver.Register(s.Server.GRPC(), mgr)
		return nil
	})
	m.connectorsAddr = cs.addr
	m.orders = ordersv1.NewOrderServiceClient(dial(t, os.addr))
	m.risk = riskv1.NewRiskServiceClient(dial(t, rs.addr))
	if _, err := m.orders.CreateInstrument(bg, &ordersv1.CreateInstrumentRequest{Instrument: &ordersv1.Instrument{
		Symbol: symbol, TickSize: "0.01", LotSize: "0.001"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := connectorsv1.NewConnectorServiceClient(dial(t, cs.addr)).Connect(bg, &connectorsv1.ConnectRequest{Name: "sim",
		Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_SIMULATOR, Config: &connectorsv1.ConnectRequest_Simulator{
			Simulator: &connectorsv1.SimulatorConfig{Symbols: []string{symbol}, Seed: 7, Rate: 50, StartPrice: "100"}}}); err != nil {
		t.Fatal(err)
	}
	m.startStrategy(t)
	return m
}

// startStrategy (re)starts the strategy service on its data directory.
func (m *mesh) startStrategy(t testing.TB) {
	t.Helper()
	m.strategySvc = startService(t, "strategy", m.coordAddr, func(ctx context.Context, s *service.Service) error {
		o := server.Defaults()
		o.DataDir, o.Connectors, o.Orders = m.strategyDir, m.connectorsAddr, m.ordersAddr
		_, err := server.Setup(ctx, s, o)
		return err
	})
	m.strategy = strategyv1.NewStrategyServiceClient(dial(t, m.strategySvc.addr))
}

func marketMaker(name, account string) *strategyv1.StrategyConfig {
	return &strategyv1.StrategyConfig{Name: name, Type: strategyv1.StrategyType_STRATEGY_TYPE_MARKET_MAKING, Account: account,
		Symbol: symbol, Connector: "sim", Params: &strategyv1.StrategyConfig_MarketMaking{MarketMaking: &strategyv1.MarketMaking{
			Spread: "0.002", Quantity: "1", MaxInventory: "3", RequoteThreshold: "0.0005", RequoteInterval: durationpb.New(300 * time.Millisecond)}}}
}

func (m *mesh) metrics(t testing.TB, name string) *strategyv1.StrategyMetrics {
	t.Helper()
	resp, err := m.strategy.GetStrategyMetrics(bg, &strategyv1.GetStrategyMetricsRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetMetrics()
}

func dec(t testing.TB, s string) fixed.Decimal {
	t.Helper()
	if s == "" {
		return 0
	}
	d, err := fixed.Parse(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return d
}

// ordersOf lists every order of account in orders' records.
func (m *mesh) ordersOf(t testing.TB, account string) []*ordersv1.Order {
	t.Helper()
	var out []*ordersv1.Order
	token := ""
	for {
		resp, err := m.orders.ListOrders(bg, &ordersv1.ListOrdersRequest{Account: account, PageSize: 1000, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, resp.GetOrders()...)
		if token = resp.GetNextPageToken(); token == "" {
			return out
		}
	}
}

func TestMarketMakerTradesThroughOrdersAndItsMetricsAddUp(t *testing.T) {
	m := startMesh(t)
	resp, err := m.strategy.StartStrategy(bg, &strategyv1.StartStrategyRequest{Config: marketMaker("mm1", "mm")})
	if err != nil {
		t.Fatal(err)
	}
	st := resp.GetStrategy()
	if st.GetComponent() != "strategy/market-making/mm1" || st.GetState() != coordinatorv1.ComponentState_COMPONENT_STATE_ACTIVE ||
		st.GetMemoryBytes() != 100<<20 || !st.GetRunning() {
		t.Fatalf("started: %v", st)
	}
	// Its lease is in the coordinator at priority 30: granted at the seed's
	// 100 MB, it follows what the strategy reports it holds (a few hundred
	// KiB) down to the least lease.
	var lease *coordinatorv1.MemoryLease
	proctest.Eventually(t, 20*time.Second, "the strategy's lease to follow its usage", func() bool {
		leases, err := m.coord.ListLeases(bg, &coordinatorv1.ListLeasesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range leases.GetLeases() {
			if l.GetComponent() == "strategy/market-making/mm1" {
				lease = l
			}
		}
		return lease != nil && lease.UsedBytes != nil && lease.GetBytes() == server.MinStrategyLease
	})
	if lease.GetPriority() != 30 || lease.GetUsedBytes() <= 0 || lease.GetUsedBytes() > lease.GetBytes() {
		t.Fatalf("strategy lease %v", lease)
	}
	// It quotes from the simulator's prices.
	proctest.Eventually(t, 20*time.Second, "the market maker quoting", func() bool {
		mt := m.metrics(t, "mm1")
		return mt.GetOrdersSent() >= 4 && mt.GetMarketEvents() > 0
	})
	// A taker hits its quotes through orders, both ways.
	for i, side := range []ordersv1.Side{ordersv1.Side_SIDE_BUY, ordersv1.Side_SIDE_SELL, ordersv1.Side_SIDE_BUY} {
		last := dec(t, m.metrics(t, "mm1").GetLastPrice())
		move := fixed.Must("0.02")
		if side == ordersv1.Side_SIDE_SELL {
			move = -move
		}
		d, _ := last.Mul(move)
		price := (last + d) / fixed.Must("0.01") * fixed.Must("0.01")
		resp, err := m.orders.SubmitOrder(bg, &ordersv1.SubmitOrderRequest{Account: "taker", ClientOrderId: "t" + string(rune('0'+i)),
			Symbol: symbol, Side: side, Type: ordersv1.OrderType_ORDER_TYPE_IOC, Price: price.Text(), Quantity: "0.5"})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetOrder().GetFilledQuantity() != "0.5" {
			t.Fatalf("taker %v at %s: %v", side, price.Text(), resp.GetOrder())
		}
	}
	proctest.Eventually(t, 20*time.Second, "three fills in the metrics", func() bool { return m.metrics(t, "mm1").GetFills() >= 3 })
	if _, err := m.strategy.StopStrategy(bg, &strategyv1.StopStrategyRequest{Name: "mm1"}); err != nil {
		t.Fatal(err)
	}
	mt := m.metrics(t, "mm1")

	// The metrics add up against orders' records of the account.
	records := m.ordersOf(t, "mm")
	var rejected, open int
	var bought, sold, cash fixed.Decimal
	var fills uint64
	for _, o := range records {
		switch o.GetStatus() {
		case ordersv1.OrderStatus_ORDER_STATUS_REJECTED:
			rejected++
		case ordersv1.OrderStatus_ORDER_STATUS_ACCEPTED, ordersv1.OrderStatus_ORDER_STATUS_PARTIALLY_FILLED:
			open++
		}
		full, err := m.orders.GetOrder(bg, &ordersv1.GetOrderRequest{OrderId: o.GetOrderId()})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range full.GetOrder().GetHistory() {
			f := ev.GetFill()
			if f == nil {
				continue
			}
			fills++
			n, _ := dec(t, f.GetPrice()).Mul(dec(t, f.GetQuantity()))
			if o.GetSide() == ordersv1.Side_SIDE_BUY {
				bought += dec(t, f.GetQuantity())
				cash -= n
			} else {
				sold += dec(t, f.GetQuantity())
				cash += n
			}
		}
	}
	if uint64(len(records)) != mt.GetOrdersSent() || uint64(rejected) != mt.GetOrdersRejected() {
		t.Fatalf("orders has %d orders (%d rejected); the strategy counts %d sent (%d rejected)", len(records), rejected,
			mt.GetOrdersSent(), mt.GetOrdersRejected())
	}
	if open != 0 {
		t.Fatalf("%d orders of the stopped market maker still open", open)
	}
	if fills != mt.GetFills() || bought != dec(t, mt.GetBoughtQuantity()) || sold != dec(t, mt.GetSoldQuantity()) ||
		cash != dec(t, mt.GetCash()) || bought-sold != dec(t, mt.GetPosition()) {
		t.Fatalf("orders' fills: %d, bought %s, sold %s, cash %s; strategy metrics: %v", fills, bought.Text(), sold.Text(), cash.Text(), mt)
	}
	pos, err := m.orders.GetPositions(bg, &ordersv1.GetPositionsRequest{Account: "mm", Symbol: symbol})
	if err != nil || len(pos.GetPositions()) != 1 || dec(t, pos.GetPositions()[0].GetNetQuantity()) != dec(t, mt.GetPosition()) {
		t.Fatalf("orders' position %v %v; strategy position %s", pos, err, mt.GetPosition())
	}
	t.Logf("market maker: %d orders, %d fills, position %s, cash %s, pnl %s at %s", mt.GetOrdersSent(), mt.GetFills(),
		mt.GetPosition(), mt.GetCash(), mt.GetPnl(), mt.GetLastPrice())
}

func TestRiskAppliesToStrategyOrders(t *testing.T) {
	m := startMesh(t)
	if _, err := m.risk.SetLimits(bg, &riskv1.SetLimitsRequest{Limits: &riskv1.Limits{Account: "small", MaxOrderQuantity: "0.5"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.strategy.StartStrategy(bg, &strategyv1.StartStrategyRequest{Config: marketMaker("mm2", "small")}); err != nil {
		t.Fatal(err)
	}
	proctest.Eventually(t, 20*time.Second, "refused quotes", func() bool { return m.metrics(t, "mm2").GetOrdersRejected() >= 2 })
	mt := m.metrics(t, "mm2")
	for _, o := range m.ordersOf(t, "small") {
		if o.GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_REJECTED || len(o.GetRejectReasons()) == 0 {
			t.Fatalf("an order of 1 passed risk's limit of 0.5: %v", o)
		}
	}
	if mt.GetOrdersRejected() != mt.GetOrdersSent() {
		t.Fatalf("metrics %v: every order should be refused", mt)
	}
}

func TestConfigsSurviveARestart(t *testing.T) {
	m := startMesh(t)
	if _, err := m.strategy.StartStrategy(bg, &strategyv1.StartStrategyRequest{Config: marketMaker("keep", "mm")}); err != nil {
		t.Fatal(err)
	}
	twap := &strategyv1.StrategyConfig{Name: "slices", Type: strategyv1.StrategyType_STRATEGY_TYPE_TWAP, Account: "tw", Symbol: symbol,
		Connector: "sim", Params: &strategyv1.StrategyConfig_Twap{Twap: &strategyv1.Twap{Side: strategyv1.Side_SIDE_BUY,
			TotalQuantity: "2", Duration: durationpb.New(time.Second), Slices: 4}}}
	if _, err := m.strategy.StartStrategy(bg, &strategyv1.StartStrategyRequest{Config: twap}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.strategy.StopStrategy(bg, &strategyv1.StopStrategyRequest{Name: "slices"}); err != nil {
		t.Fatal(err)
	}
	m.strategySvc.stop()
	m.startStrategy(t)
	// Listing activates the host, which resumes what was running.
	proctest.Eventually(t, 20*time.Second, "the market maker running again", func() bool {
		resp, err := m.strategy.ListStrategies(bg, &strategyv1.ListStrategiesRequest{})
		if err != nil || len(resp.GetStrategies()) != 2 {
			return false
		}
		keep, slices := resp.GetStrategies()[0], resp.GetStrategies()[1]
		return keep.GetConfig().GetName() == "keep" && keep.GetRunning() &&
			keep.GetState() == coordinatorv1.ComponentState_COMPONENT_STATE_ACTIVE &&
			keep.GetConfig().GetMarketMaking().GetSpread() == "0.002" &&
			slices.GetConfig().GetName() == "slices" && !slices.GetRunning() &&
			slices.GetState() == coordinatorv1.ComponentState_COMPONENT_STATE_DORMANT &&
			slices.GetConfig().GetTwap().GetSlices() == 4
	})
}

func TestBadConfigsNameTheField(t *testing.T) {
	m := startMesh(t)
	bad := marketMaker("x", "mm")
	bad.GetMarketMaking().Spread = "2"
	_, err := m.strategy.StartStrategy(bg, &strategyv1.StartStrategyRequest{Config: bad})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "config.market_making.spread") {
		t.Fatalf("spread 2: %v", err)
	}
	unknown := marketMaker("y", "mm")
	unknown.Symbol = "NOPE-USD"
	_, err = m.strategy.StartStrategy(bg, &strategyv1.StartStrategyRequest{Config: unknown})
	if status.Code(err) != codes.NotFound && status.Code(err) != codes.Unavailable {
		t.Fatalf("unknown instrument: %v", err)
	}
	t.Logf("unknown instrument: %v", err)
	if _, err := m.strategy.StopStrategy(bg, &strategyv1.StopStrategyRequest{Name: "never"}); status.Code(err) != codes.NotFound {
		t.Fatalf("stop of an unknown strategy: %v", err)
	}
	if _, err := m.strategy.StartStrategy(bg, &strategyv1.StartStrategyRequest{Config: marketMaker("z", "mm")}); err != nil {
		t.Fatal(err)
	}
	other := marketMaker("z", "mm")
	other.GetMarketMaking().Quantity = "2"
	if _, err := m.strategy.StartStrategy(bg, &strategyv1.StartStrategyRequest{Config: other}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("another config under a running name: %v", err)
	}
}

func TestTWAPBuysItsTotalFromTheMarketMaker(t *testing.T) {
	m := startMesh(t)
	if _, err := m.strategy.StartStrategy(bg, &strategyv1.StartStrategyRequest{Config: marketMaker("mm", "mm")}); err != nil {
		t.Fatal(err)
	}
	proctest.Eventually(t, 20*time.Second, "quotes", func() bool { return m.metrics(t, "mm").GetOrdersSent() >= 2 })
	twap := &strategyv1.StrategyConfig{Name: "buyer", Type: strategyv1.StrategyType_STRATEGY_TYPE_TWAP, Account: "tw", Symbol: symbol,
		Connector: "sim", Params: &strategyv1.StrategyConfig_Twap{Twap: &strategyv1.Twap{Side: strategyv1.Side_SIDE_BUY,
			TotalQuantity: "2", Duration: durationpb.New(2 * time.Second), Slices: 4}}}
	if _, err := m.strategy.StartStrategy(bg, &strategyv1.StartStrategyRequest{Config: twap}); err != nil {
		t.Fatal(err)
	}
	proctest.Eventually(t, 20*time.Second, "the TWAP done", func() bool { return m.metrics(t, "buyer").GetPosition() == "2" })
	// The TWAP counts its fills from its orders' answers; the market maker,
	// whose orders rest, learns of its fills from orders' update stream,
	// which may lag by a moment: wait for it before comparing the two.
	proctest.Eventually(t, 10*time.Second, "the market maker's fills", func() bool { return m.metrics(t, "mm").GetSoldQuantity() == "2" })
	tw, mm := m.metrics(t, "buyer"), m.metrics(t, "mm")
	if tw.GetOrdersSent() < 4 || tw.GetBoughtQuantity() != "2" || tw.GetSoldQuantity() != "0" {
		t.Fatalf("twap %v", tw)
	}
	// Every lot it bought, the market maker sold (nobody else trades).
	if mm.GetSoldQuantity() != "2" || mm.GetCash() != strings.TrimPrefix(tw.GetCash(), "-") {
		t.Fatalf("market maker %v against twap %v", mm, tw)
	}
	pos, err := m.orders.GetPositions(bg, &ordersv1.GetPositionsRequest{Account: "tw", Symbol: symbol})
	if err != nil || len(pos.GetPositions()) != 1 || pos.GetPositions()[0].GetNetQuantity() != "2" {
		t.Fatalf("orders' position of the TWAP account: %v %v", pos, err)
	}
}

// A strategy whose market data cannot be had (a connector that does not
// exist) runs on, retrying, and says why in last_error; once the
// connector exists and its data flows, the error goes.
func TestFailingMarketDataShowsInLastError(t *testing.T) {
	m := startMesh(t)
	cfg := marketMaker("blind", "mm")
	cfg.Connector = "later"
	if _, err := m.strategy.StartStrategy(bg, &strategyv1.StartStrategyRequest{Config: cfg}); err != nil {
		t.Fatal(err)
	}
	lastError := func() string {
		resp, err := m.strategy.ListStrategies(bg, &strategyv1.ListStrategiesRequest{})
		if err != nil || len(resp.GetStrategies()) != 1 {
			t.Fatalf("list: %v %v", resp, err)
		}
		return resp.GetStrategies()[0].GetLastError()
	}
	proctest.Eventually(t, 20*time.Second, "last_error naming the missing connector", func() bool {
		e := lastError()
		return strings.Contains(e, "market data stream failed") && strings.Contains(e, "later")
	})
	if _, err := connectorsv1.NewConnectorServiceClient(dial(t, m.connectorsAddr)).Connect(bg, &connectorsv1.ConnectRequest{Name: "later",
		Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_SIMULATOR, Config: &connectorsv1.ConnectRequest_Simulator{
			Simulator: &connectorsv1.SimulatorConfig{Symbols: []string{symbol}, Seed: 7, Rate: 50, StartPrice: "100"}}}); err != nil {
		t.Fatal(err)
	}
	proctest.Eventually(t, 20*time.Second, "last_error cleared once market data flows", func() bool { return lastError() == "" })
}
