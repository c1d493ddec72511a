package cli

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/proctest"
	"github.com/tradsys/mesh/pkg/service"
	"github.com/tradsys/mesh/pkg/service/servicetest"
	connectorsv1 "github.com/tradsys/mesh/proto/tradsys/connectors/v1"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	connectorsmanager "github.com/tradsys/mesh/services/connectors/manager"
	connectorsserver "github.com/tradsys/mesh/services/connectors/server"
	"github.com/tradsys/mesh/services/orders/orderstest"
	strategyserver "github.com/tradsys/mesh/services/strategy/server"
)

// The strategy commands against a real strategy service, trading through
// a real order path on a simulator's prices: start, list, metrics, stop,
// and clear usage errors.
func TestStrategyCommands(t *testing.T) {
	m := orderstest.Start(t, orderstest.Config{})
	if _, err := m.OrderService.CreateInstrument(context.Background(), &ordersv1.CreateInstrumentRequest{Instrument: &ordersv1.Instrument{
		Symbol: "BTC-USD", TickSize: "0.01", LotSize: "0.001"}}); err != nil {
		t.Fatal(err)
	}
	conn := servicetest.Start(t, "connectors", m.CoordAddr, 0, func(_ context.Context, s *service.Service) error {
		connectorsserver.Register(s.Server.GRPC(), connectorsmanager.New(connectorsmanager.Options{Runtime: s.Runtime, Logger: s.Log,
			MemoryBytes: 8 << 20, Priority: 25, InitTimeout: 10 * time.Second, IdleTimeout: -1, RingSize: 1024}))
		return nil
	})
	if _, err := connectorsv1.NewConnectorServiceClient(servicetest.Dial(t, conn.Addr())).Connect(context.Background(),
		&connectorsv1.ConnectRequest{Name: "sim", Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_SIMULATOR,
			Config: &connectorsv1.ConnectRequest_Simulator{Simulator: &connectorsv1.SimulatorConfig{Symbols: []string{"BTC-USD"}, Rate: 50}}}); err != nil {
		t.Fatal(err)
	}
	strat := servicetest.Start(t, "strategy", m.CoordAddr, 0, func(ctx context.Context, s *service.Service) error {
		o := strategyserver.Defaults()
		o.DataDir, o.Connectors, o.Orders = t.TempDir(), conn.Addr(), m.Orders.Addr
		_, err := strategyserver.Setup(ctx, s, o)
		return err
	})
	run := func(args ...string) string {
		t.Helper()
		return mustRun(t, m.CoordAddr, append([]string{"--strategy", strat.Addr()}, args...)...)
	}
	out := run("strategy", "start", "market-making", "mm", "--account", "mm", "--symbol", "BTC-USD", "--connector", "sim",
		"--quantity", "1", "--requote-interval", "300ms")
	if row := tableRow(t, out, "mm"); row[1] != "market_making" || row[5] != "true" || row[6] != "active" || row[7] != "100" {
		t.Fatalf("started row %v in\n%s", row, out)
	}
	proctest.Eventually(t, 20*time.Second, "the market maker's orders in its metrics", func() bool {
		row := tableRow(t, run("strategy", "metrics", "mm"), "mm")
		n, _ := strconv.Atoi(row[1])
		return n >= 2
	})
	out = run("strategy", "stop", "mm")
	if row := tableRow(t, out, "mm"); row[5] != "false" || row[6] != "dormant" {
		t.Fatalf("stopped row %v", row)
	}
	if row := tableRow(t, run("strategy", "list"), "mm"); row[5] != "false" {
		t.Fatalf("listed row %v", row)
	}
	for _, args := range [][]string{
		{"strategy"}, {"strategy", "dance"}, {"strategy", "start", "scalping", "x", "--account", "a", "--symbol", "S", "--connector", "c"},
		{"strategy", "start", "twap", "x"}, {"strategy", "stop"},
	} {
		if _, _, code := tradsys(t, m.CoordAddr, append([]string{"--strategy", strat.Addr()}, args...)...); code != ExitUsage {
			t.Errorf("tradsys %v: exit %d, want %d", args, code, ExitUsage)
		}
	}
	if _, stderr, code := tradsys(t, m.CoordAddr, "--strategy", strat.Addr(), "strategy", "metrics", "nope"); code == 0 || stderr == "" {
		t.Errorf("metrics of an unknown strategy: exit %d, %q", code, stderr)
	}
}
