package main_test

import (
	"context"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/proctest"
	connectorsv1 "github.com/tradsys/mesh/proto/tradsys/connectors/v1"
	historicalv1 "github.com/tradsys/mesh/proto/tradsys/historical/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
)

// TestEndToEndReplayToCandles runs real processes: a coordinator, the
// connectors service replaying the real CSV week as fast as it can, and
// the historical service following it (--connectors-from); the query then
// returns the candles the trades built.
func TestEndToEndReplayToCandles(t *testing.T) {
	r, coord := coordtest.Start(t, coordtest.Config{})
	conn := proctest.Start(t, connectorsBin, r.Addr())
	hist := proctest.Start(t, historicalBin, r.Addr(), "--data-dir", t.TempDir(), "--connectors-from", conn.Addr)
	ctx := context.Background()

	cc := connectorsv1.NewConnectorServiceClient(conn.Conn)
	resp, err := cc.Connect(ctx, &connectorsv1.ConnectRequest{Name: "week", Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_REPLAY,
		Config: &connectorsv1.ConnectRequest_Replay{Replay: &connectorsv1.ReplayConfig{Bundled: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetConnector().GetComponent() != "connectors/exchange/week" {
		t.Fatalf("connect %v", resp)
	}
	found := false
	for _, l := range leases(t, coord) {
		found = found || (l.GetComponent() == "connectors/exchange/week" && l.GetBytes() == 75<<20)
	}
	if !found {
		t.Fatalf("no 75MiB lease for the connector: %v", leases(t, coord))
	}

	mins := csvMinutes(t)
	withVolume := 0
	for _, m := range mins {
		if m.v > 0 {
			withVolume++
		}
	}
	hc := client(hist)
	proctest.Eventually(t, 90*time.Second, "every replayed trade ingested", func() bool {
		st, err := hc.GetIngestStatus(ctx, &historicalv1.GetIngestStatusRequest{})
		return err == nil && st.GetAccepted()+st.GetInvalid() == uint64(len(mins))
	})
	st, _ := hc.GetIngestStatus(ctx, &historicalv1.GetIngestStatusRequest{})
	if st.GetAccepted() != uint64(withVolume) {
		t.Fatalf("ingest status %v; %d minutes with volume", st, withVolume)
	}
	// Replay turns each kline into one trade at its close time (price =
	// close, qty = volume): the 1m candles of a day carry the CSV's closes
	// and volumes.
	var want []bar
	for _, m := range mins {
		if !m.open.Before(day) && m.open.Before(day.Add(24*time.Hour)) && m.v > 0 {
			want = append(want, m)
		}
	}
	var got []*historicalv1.Candle
	proctest.Eventually(t, 10*time.Second, "the day's 1m candles", func() bool {
		got, _ = allPages(t, hc, &historicalv1.GetHistoricalDataRequest{Symbol: "BTCUSDT", Interval: historicalv1.Interval_INTERVAL_1M,
			Start: ts(day), End: ts(day.Add(24 * time.Hour))})
		return len(got) == len(want)
	})
	for i, c := range got {
		w := want[i]
		if !c.GetOpenTime().AsTime().Equal(w.open) || fx(t, c.GetClose()) != w.c || fx(t, c.GetOpen()) != w.c ||
			fx(t, c.GetVolume()) != w.v || c.GetTrades() != 1 {
			t.Fatalf("candle %d: %v, want close %d volume %d at %v", i, c, w.c, w.v, w.open)
		}
	}
	dayResp, err := hc.GetHistoricalData(ctx, &historicalv1.GetHistoricalDataRequest{Symbol: "BTCUSDT", Interval: historicalv1.Interval_INTERVAL_1D,
		Start: ts(day), End: ts(day.Add(24 * time.Hour))})
	if err != nil || len(dayResp.GetCandles()) != 1 {
		t.Fatalf("1d: %v %v", dayResp, err)
	}
	var vol int64
	for _, w := range want {
		vol += w.v
	}
	if d := dayResp.GetCandles()[0]; fx(t, d.GetVolume()) != vol || d.GetTrades() != int64(len(want)) ||
		fx(t, d.GetOpen()) != want[0].c || fx(t, d.GetClose()) != want[len(want)-1].c {
		t.Fatalf("1d candle %v; want volume %d, %d trades", d, vol, len(want))
	}
	srcs := st.GetSources()
	if len(srcs) < 2 || srcs[len(srcs)-1].GetTrades() != uint64(len(mins)) {
		t.Fatalf("sources %v", srcs)
	}
}

// A follow asked for through the API survives a restart of historical: it
// is kept beside the candle store and followed again at start.
func TestFollowSurvivesARestart(t *testing.T) {
	r, _ := coordtest.Start(t, coordtest.Config{})
	conn := proctest.Start(t, connectorsBin, r.Addr(), "--data-dir", t.TempDir())
	dir := t.TempDir()
	hist := proctest.Start(t, historicalBin, r.Addr(), "--data-dir", dir)
	ctx := context.Background()
	if _, err := connectorsv1.NewConnectorServiceClient(conn.Conn).Connect(ctx, &connectorsv1.ConnectRequest{Name: "sim",
		Kind:   connectorsv1.ConnectorKind_CONNECTOR_KIND_SIMULATOR,
		Config: &connectorsv1.ConnectRequest_Simulator{Simulator: &connectorsv1.SimulatorConfig{Symbols: []string{"BTCUSDT"}, Rate: 200, TradeRatio: 1}}}); err != nil {
		t.Fatal(err)
	}
	hc := historicalv1.NewHistoricalDataServiceClient(hist.Conn)
	resp, err := hc.FollowConnector(ctx, &historicalv1.FollowConnectorRequest{Address: conn.Addr, Connector: "sim"})
	if err != nil {
		t.Fatal(err)
	}
	src := resp.GetSource().GetName()
	proctest.Eventually(t, 20*time.Second, "trades from the followed connector", func() bool {
		n, _ := sourceTrades(t, hc, src)
		return n > 0
	})
	hist.Stop(t)

	hist = proctest.Start(t, historicalBin, r.Addr(), "--data-dir", dir) // no flags: the follow comes from the data dir
	hc = historicalv1.NewHistoricalDataServiceClient(hist.Conn)
	proctest.Eventually(t, 20*time.Second, "the kept follow receiving trades after the restart", func() bool {
		n, _ := sourceTrades(t, hc, src)
		return n > 0
	})
}
