package main_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/tradsys/mesh/pkg/grpcerr"
	"github.com/tradsys/mesh/pkg/proctest"
	connectorsv1 "github.com/tradsys/mesh/proto/tradsys/connectors/v1"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

var connectorsBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "connectorstest")
	if err != nil {
		panic(err)
	}
	if connectorsBin, err = proctest.Build(dir, "tradsys-connectors", "."); err != nil {
		panic("build connectors: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func leasesOf(t testing.TB, c coordinatorv1.CoordinatorServiceClient, component string) []*coordinatorv1.MemoryLease {
	t.Helper()
	resp, err := c.ListLeases(context.Background(), &coordinatorv1.ListLeasesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var out []*coordinatorv1.MemoryLease
	for _, l := range resp.GetLeases() {
		if l.GetComponent() == component {
			out = append(out, l)
		}
	}
	return out
}

func list(t testing.TB, c connectorsv1.ConnectorServiceClient, name string) *connectorsv1.Connector {
	t.Helper()
	resp, err := c.ListConnectors(context.Background(), &connectorsv1.ListConnectorsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range resp.GetConnectors() {
		if x.GetName() == name {
			return x
		}
	}
	return nil
}

func wantInvalid(t testing.TB, err error, field string) {
	t.Helper()
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), field) {
		t.Fatalf("want INVALID_ARGUMENT naming %q, got %v", field, err)
	}
}

func TestConnectBadInput(t *testing.T) {
	r, coord := coordtest.Start(t, coordtest.Config{})
	p := proctest.Start(t, connectorsBin, r.Addr())
	c := connectorsv1.NewConnectorServiceClient(p.Conn)
	ctx := context.Background()
	sim := func(s *connectorsv1.SimulatorConfig) *connectorsv1.ConnectRequest {
		return &connectorsv1.ConnectRequest{Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_SIMULATOR,
			Config: &connectorsv1.ConnectRequest_Simulator{Simulator: s}}
	}
	cases := []struct {
		field string
		req   *connectorsv1.ConnectRequest
	}{
		{"kind", &connectorsv1.ConnectRequest{}},
		{"kind", &connectorsv1.ConnectRequest{Kind: 9}},
		{"config", &connectorsv1.ConnectRequest{Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_REPLAY}},
		{"config", &connectorsv1.ConnectRequest{Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_BINANCE,
			Config: &connectorsv1.ConnectRequest_Replay{Replay: &connectorsv1.ReplayConfig{Bundled: true}}}},
		{"name", &connectorsv1.ConnectRequest{Name: "Bad Name", Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_SIMULATOR}},
		{"simulator.symbols", sim(&connectorsv1.SimulatorConfig{})},
		{"simulator.symbols[0]", sim(&connectorsv1.SimulatorConfig{Symbols: []string{"BTC/USDT"}})},
		{"simulator.rate", sim(&connectorsv1.SimulatorConfig{Symbols: []string{"X"}, Rate: -1})},
		{"simulator.unpaced", sim(&connectorsv1.SimulatorConfig{Symbols: []string{"X"}, Rate: 5, Unpaced: true})},
		{"simulator.start_price", sim(&connectorsv1.SimulatorConfig{Symbols: []string{"X"}, StartPrice: "1e3"})},
		{"binance.url", &connectorsv1.ConnectRequest{Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_BINANCE,
			Config: &connectorsv1.ConnectRequest_Binance{Binance: &connectorsv1.BinanceConfig{Url: "http://x", Symbols: []string{"BTCUSDT"}}}}},
		{"replay.paths", &connectorsv1.ConnectRequest{Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_REPLAY,
			Config: &connectorsv1.ConnectRequest_Replay{Replay: &connectorsv1.ReplayConfig{}}}},
		// Passes validation, refused by the connector: the file is missing.
		{"replay.paths", &connectorsv1.ConnectRequest{Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_REPLAY,
			Config: &connectorsv1.ConnectRequest_Replay{Replay: &connectorsv1.ReplayConfig{Paths: []string{"/nonexistent/*.csv"}}}}},
	}
	for _, tc := range cases {
		_, err := c.Connect(ctx, tc.req)
		wantInvalid(t, err, tc.field)
	}
	_, err := c.StreamMarketData(ctx, &connectorsv1.StreamMarketDataRequest{})
	if err == nil {
		s, _ := c.StreamMarketData(ctx, &connectorsv1.StreamMarketDataRequest{})
		_, err = s.Recv()
	}
	wantInvalid(t, err, "connector")
	s, _ := c.StreamMarketData(ctx, &connectorsv1.StreamMarketDataRequest{Connector: "nope"})
	if _, err := s.Recv(); status.Code(err) != codes.NotFound {
		t.Fatalf("stream of unknown connector: %v", err)
	}
	if _, err := c.Disconnect(ctx, &connectorsv1.DisconnectRequest{Name: "nope"}); status.Code(err) != codes.NotFound {
		t.Fatalf("disconnect unknown: %v", err)
	}
	resp, err := coord.ListLeases(ctx, &coordinatorv1.ListLeasesRequest{})
	if err != nil || len(resp.GetLeases()) != 0 {
		t.Fatalf("leases after bad input: %v %v", resp, err)
	}
}

func TestSimulatorLeaseStreamResumeDisconnect(t *testing.T) {
	r, coord := coordtest.Start(t, coordtest.Config{})
	p := proctest.Start(t, connectorsBin, r.Addr())
	c := connectorsv1.NewConnectorServiceClient(p.Conn)
	ctx := context.Background()
	resp, err := c.Connect(ctx, &connectorsv1.ConnectRequest{Name: "sim", Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_SIMULATOR,
		Config: &connectorsv1.ConnectRequest_Simulator{Simulator: &connectorsv1.SimulatorConfig{
			Symbols: []string{"btcusdt", "ETHUSDT"}, Seed: 7, Rate: 2000}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetConnector(); got.GetState() != connectorsv1.ConnectorState_CONNECTOR_STATE_RUNNING ||
		got.GetComponent() != "connectors/exchange/sim" || strings.Join(got.GetSymbols(), ",") != "BTCUSDT,ETHUSDT" {
		t.Fatalf("connect %v", got)
	}
	if l := leasesOf(t, coord, "connectors/exchange/sim"); len(l) != 1 || l[0].GetBytes() != 75<<20 || l[0].GetPriority() != 25 {
		t.Fatalf("lease %v", l)
	}
	if _, err := c.Connect(ctx, &connectorsv1.ConnectRequest{Name: "sim", Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_SIMULATOR,
		Config: &connectorsv1.ConnectRequest_Simulator{Simulator: &connectorsv1.SimulatorConfig{Symbols: []string{"X"}}}}); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("second connect: %v", err)
	}

	// From the oldest retained event: sequences 1, 2, 3... per symbol.
	sctx, cancel := context.WithCancel(ctx)
	s, err := c.StreamMarketData(sctx, &connectorsv1.StreamMarketDataRequest{Connector: "sim", Symbols: []string{"BTCUSDT"}, FromOldest: true})
	if err != nil {
		t.Fatal(err)
	}
	var trades, books int
	for want := uint64(1); want <= 200; want++ {
		m, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if m.GetSequence() != want || m.GetSymbol() != "BTCUSDT" {
			t.Fatalf("event %v, want sequence %d", m, want)
		}
		if m.GetTrade() != nil {
			trades++
		} else if m.GetBookUpdate() != nil {
			books++
		}
	}
	cancel()
	if trades == 0 || books == 0 {
		t.Fatalf("%d trades, %d book updates", trades, books)
	}
	// Resume at 150, trades only.
	s, err = c.StreamMarketData(ctx, &connectorsv1.StreamMarketDataRequest{Connector: "sim", Symbols: []string{"BTCUSDT"},
		FromSequences: map[string]uint64{"BTCUSDT": 150}, TradesOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Recv()
	if err != nil || m.GetSequence() < 150 || m.GetTrade() == nil {
		t.Fatalf("resumed: %v %v", m, err)
	}
	// A resume point in the future is OUT_OF_RANGE.
	bad, _ := c.StreamMarketData(ctx, &connectorsv1.StreamMarketDataRequest{Connector: "sim", Symbols: []string{"BTCUSDT"},
		FromSequences: map[string]uint64{"BTCUSDT": 1 << 40}})
	if _, err := bad.Recv(); status.Code(err) != codes.OutOfRange {
		t.Fatalf("future resume: %v", err)
	}
	info := list(t, c, "sim")
	if info.GetStats().GetEvents() < 200 || info.GetStats().GetActivations() != 1 {
		t.Fatalf("list %v", info)
	}

	// Disconnect ends the open stream, unloads, and gives the lease back.
	if _, err := c.Disconnect(ctx, &connectorsv1.DisconnectRequest{Name: "sim"}); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := s.Recv(); err != nil {
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("open stream after disconnect: %v", err)
			}
			break
		}
	}
	if l := leasesOf(t, coord, "connectors/exchange/sim"); len(l) != 0 {
		t.Fatalf("lease after disconnect %v", l)
	}
	if list(t, c, "sim") != nil {
		t.Fatal("still listed after disconnect")
	}
}

// A simulator with no rate runs at a market's pace, its event time with the
// clock; as fast as possible is asked for (unpaced), and then it is.
func TestSimulatorIsPacedUnlessAskedOtherwise(t *testing.T) {
	r, _ := coordtest.Start(t, coordtest.Config{})
	p := proctest.Start(t, connectorsBin, r.Addr())
	c := connectorsv1.NewConnectorServiceClient(p.Conn)
	ctx := context.Background()
	for _, name := range []string{"paced", "unpaced"} {
		if _, err := c.Connect(ctx, &connectorsv1.ConnectRequest{Name: name, Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_SIMULATOR,
			Config: &connectorsv1.ConnectRequest_Simulator{Simulator: &connectorsv1.SimulatorConfig{
				Symbols: []string{"BTCUSDT"}, Unpaced: name == "unpaced"}}}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	proctest.Eventually(t, 10*time.Second, "unpaced simulator past 20000 events", func() bool {
		return list(t, c, "unpaced").GetStats().GetEvents() > 20000
	})
	time.Sleep(time.Until(start.Add(1500 * time.Millisecond)))
	elapsed := time.Since(start).Seconds()
	// 10 per second: at most the elapsed seconds' worth (plus the first).
	if n := list(t, c, "paced").GetStats().GetEvents(); n == 0 || float64(n) > 10*elapsed+2 {
		t.Errorf("paced simulator published %d events in %.1fs, want about 10 per second", n, elapsed)
	}
	s, err := c.StreamMarketData(ctx, &connectorsv1.StreamMarketDataRequest{Connector: "paced", FromOldest: true})
	if err != nil {
		t.Fatal(err)
	}
	var last time.Time
	for range list(t, c, "paced").GetStats().GetEvents() {
		m, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if tr := m.GetTrade(); tr != nil {
			last = tr.GetTime().AsTime()
		} else {
			last = m.GetBookUpdate().GetTime().AsTime()
		}
	}
	if ahead := time.Until(last); ahead > time.Second {
		t.Errorf("paced simulator's event time runs %s ahead of the clock", ahead)
	}
}

func TestIdleConnectorUnloadsAndReloadsOnStream(t *testing.T) {
	r, coord := coordtest.Start(t, coordtest.Config{})
	p := proctest.Start(t, connectorsBin, r.Addr(), "--connector-idle-timeout", "500ms")
	c := connectorsv1.NewConnectorServiceClient(p.Conn)
	ctx := context.Background()
	if _, err := c.Connect(ctx, &connectorsv1.ConnectRequest{Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_REPLAY,
		Config: &connectorsv1.ConnectRequest_Replay{Replay: &connectorsv1.ReplayConfig{Bundled: true}}}); err != nil {
		t.Fatal(err)
	}
	proctest.Eventually(t, 10*time.Second, "idle unload", func() bool {
		return list(t, c, "replay").GetState() == connectorsv1.ConnectorState_CONNECTOR_STATE_IDLE &&
			len(leasesOf(t, coord, "connectors/exchange/replay")) == 0
	})
	// A reader loads it again from the same configuration: the whole
	// bundled week, from sequence 1, gapless.
	s, err := c.StreamMarketData(ctx, &connectorsv1.StreamMarketDataRequest{Connector: "replay", FromOldest: true})
	if err != nil {
		t.Fatal(err)
	}
	for want := uint64(1); want <= 7*1440; want++ {
		m, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if m.GetSequence() != want || m.GetTrade() == nil || m.GetSymbol() != "BTCUSDT" {
			t.Fatalf("event %v, want trade %d", m, want)
		}
	}
	info := list(t, c, "replay")
	if info.GetStats().GetActivations() != 2 || len(leasesOf(t, coord, "connectors/exchange/replay")) != 1 {
		t.Fatalf("after reload %v", info)
	}
	proctest.Eventually(t, 5*time.Second, "replay finished", func() bool {
		return list(t, c, "replay").GetState() == connectorsv1.ConnectorState_CONNECTOR_STATE_FINISHED
	})
}

// fakeBinance speaks Binance's combined-stream protocol: it waits for the
// SUBSCRIBE request, acknowledges it, then sends trades with malformed
// messages in between.
type fakeBinance struct {
	t          *testing.T
	subscribed atomic.Value
	sent       chan struct{}
}

func (f *fakeBinance) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := r.Context()
	_, msg, err := c.Read(ctx)
	if err != nil {
		return
	}
	f.subscribed.Store(string(msg))
	send := func(s string) bool { return c.Write(ctx, websocket.MessageText, []byte(s)) == nil }
	send(`{"result":null,"id":1}`)
	for i := 1; i <= 5; i++ {
		send(fmt.Sprintf(`{"stream":"btcusdt@trade","data":{"e":"trade","E":1763942400%03d,"s":"BTCUSDT","t":%d,"p":"86780.0%d000000","q":"0.00150000","T":1763942400%03d,"m":%v,"M":true}}`,
			i, 1000+i, i, i, i%2 == 0))
		switch i {
		case 2:
			send(`{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","p":"not-a-price"`) // truncated
		case 3:
			send(`{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":9,"p":"-1","q":"1","T":1,"m":true}}`)
		case 4:
			_ = c.Write(ctx, websocket.MessageBinary, []byte{0xff, 0x00})
		}
	}
	close(f.sent)
	<-ctx.Done()
	_, _, _ = c.Read(context.Background())
}

func TestBinanceConnectorThroughConnectRPC(t *testing.T) {
	f := &fakeBinance{t: t, sent: make(chan struct{})}
	srv := httptest.NewServer(f)
	defer srv.Close()
	r, _ := coordtest.Start(t, coordtest.Config{})
	p := proctest.Start(t, connectorsBin, r.Addr())
	c := connectorsv1.NewConnectorServiceClient(p.Conn)
	ctx := context.Background()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/stream"
	if _, err := c.Connect(ctx, &connectorsv1.ConnectRequest{Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_BINANCE,
		Config: &connectorsv1.ConnectRequest_Binance{Binance: &connectorsv1.BinanceConfig{Url: url, Symbols: []string{"BTCUSDT"}}}}); err != nil {
		t.Fatal(err)
	}
	s, err := c.StreamMarketData(ctx, &connectorsv1.StreamMarketDataRequest{Connector: "binance", FromOldest: true, Symbols: []string{"BTCUSDT"}})
	if err != nil {
		t.Fatal(err)
	}
	var prices []string
	for len(prices) < 5 {
		m, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		tr := m.GetTrade()
		if tr.GetVenue() != "binance" || tr.GetQuantity() == "" || m.GetSequence() != uint64(len(prices)+1) {
			t.Fatalf("event %v", m)
		}
		prices = append(prices, tr.GetPrice())
	}
	if got := strings.Join(prices, " "); !strings.HasPrefix(got, "86780.01") || !strings.Contains(got, "86780.05") {
		t.Fatalf("prices %s", got)
	}
	<-f.sent
	proctest.Eventually(t, 5*time.Second, "malformed counted", func() bool {
		st := list(t, c, "binance").GetStats()
		return st.GetMalformed() == 3 && st.GetEvents() == 5
	})
	info := list(t, c, "binance")
	if st := info.GetStats(); !st.GetConnected() || st.GetMessages() != 9 || st.GetLastError() == "" ||
		info.GetState() != connectorsv1.ConnectorState_CONNECTOR_STATE_RUNNING {
		t.Fatalf("stats %v", info)
	}
	if sub, _ := f.subscribed.Load().(string); !strings.Contains(sub, `"SUBSCRIBE"`) || !strings.Contains(sub, "btcusdt@trade") {
		t.Fatalf("subscription %q", sub)
	}
	if _, err := c.Disconnect(ctx, &connectorsv1.DisconnectRequest{Name: "binance"}); err != nil {
		t.Fatal(err)
	}

}

// A Binance connector that cannot reach its venue says so: its state is
// CONNECTING (not RUNNING) with the cause, the log says it, and a reader's
// stream ends with UNAVAILABLE and the cause instead of hanging.
func TestUnreachableBinanceSaysSo(t *testing.T) {
	r, _ := coordtest.Start(t, coordtest.Config{})
	p := proctest.Start(t, connectorsBin, r.Addr(), "--connector-unreachable-after", "1s")
	c := connectorsv1.NewConnectorServiceClient(p.Conn)
	ctx := context.Background()
	dead := proctest.ReservePort(t).Addr // nothing listens here, and nothing can
	if _, err := c.Connect(ctx, &connectorsv1.ConnectRequest{Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_BINANCE,
		Config: &connectorsv1.ConnectRequest_Binance{Binance: &connectorsv1.BinanceConfig{Url: "ws://" + dead + "/stream", Symbols: []string{"BTCUSDT"}}}}); err != nil {
		t.Fatal(err)
	}
	proctest.Eventually(t, 10*time.Second, "a failed dial recorded", func() bool {
		return list(t, c, "binance").GetStats().GetDialErrors() > 0
	})
	info := list(t, c, "binance")
	if info.GetState() != connectorsv1.ConnectorState_CONNECTOR_STATE_CONNECTING || !strings.Contains(info.GetStats().GetLastError(), dead) {
		t.Errorf("unreachable connector listed as %s, last error %q", info.GetState(), info.GetStats().GetLastError())
	}
	proctest.Eventually(t, 5*time.Second, "the log line", func() bool {
		return strings.Contains(p.Log(), "binance connector cannot reach its venue")
	})
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	s, err := c.StreamMarketData(sctx, &connectorsv1.StreamMarketDataRequest{Connector: "binance"})
	if err == nil {
		_, err = s.Recv()
	}
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "has not reached its venue") || !strings.Contains(err.Error(), dead) {
		t.Fatalf("stream of an unreachable connector: %v, want UNAVAILABLE with the cause", err)
	}
}

// Connector definitions survive a restart: kept beside the service's data,
// restored IDLE, loaded by their first reader; a disconnected one stays gone.
func TestDefinitionsSurviveARestart(t *testing.T) {
	r, _ := coordtest.Start(t, coordtest.Config{})
	dir := t.TempDir()
	p := proctest.Start(t, connectorsBin, r.Addr(), "--data-dir", dir)
	c := connectorsv1.NewConnectorServiceClient(p.Conn)
	ctx := context.Background()
	for _, req := range []*connectorsv1.ConnectRequest{
		{Name: "sim", Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_SIMULATOR,
			Config: &connectorsv1.ConnectRequest_Simulator{Simulator: &connectorsv1.SimulatorConfig{Symbols: []string{"BTCUSDT"}, Rate: 100}}},
		{Name: "gone", Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_SIMULATOR,
			Config: &connectorsv1.ConnectRequest_Simulator{Simulator: &connectorsv1.SimulatorConfig{Symbols: []string{"ETHUSDT"}}}},
	} {
		if _, err := c.Connect(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Disconnect(ctx, &connectorsv1.DisconnectRequest{Name: "gone"}); err != nil {
		t.Fatal(err)
	}
	p.Stop(t)

	p = proctest.Start(t, connectorsBin, r.Addr(), "--data-dir", dir)
	c = connectorsv1.NewConnectorServiceClient(p.Conn)
	resp, err := c.ListConnectors(ctx, &connectorsv1.ListConnectorsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetConnectors(); len(got) != 1 || got[0].GetName() != "sim" || got[0].GetState() != connectorsv1.ConnectorState_CONNECTOR_STATE_IDLE {
		t.Fatalf("after the restart: %v, want sim alone, IDLE", got)
	}
	s, err := c.StreamMarketData(ctx, &connectorsv1.StreamMarketDataRequest{Connector: "sim", FromOldest: true})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := s.Recv(); err != nil || m.GetSymbol() != "BTCUSDT" {
		t.Fatalf("restored connector's stream: %v %v", m, err)
	}
	if got := list(t, c, "sim"); got.GetState() != connectorsv1.ConnectorState_CONNECTOR_STATE_RUNNING {
		t.Errorf("restored connector after a read: %s", got.GetState())
	}
}

// Issue 13: a connector's lease follows what its stream holds (a ring per
// symbol and the events it retains); when the lease may not grow, a stream
// asking for a symbol the connector has no ring for is refused with
// RESOURCE_EXHAUSTED naming the lease, the usage and the budget, while the
// symbols it has keep flowing; once the budget has room, new symbols are
// taken again. A real process and coordinator.
func TestNewSymbolsRefusedWhileTheLeaseMayNotGrow(t *testing.T) {
	const mib = 1 << 20
	const budget = 64 * mib
	r, coord := coordtest.Start(t, coordtest.Config{Budget: budget})
	p := proctest.Start(t, connectorsBin, r.Addr(), "--connector-memory", "1MiB")
	c := connectorsv1.NewConnectorServiceClient(p.Conn)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := c.Connect(ctx, &connectorsv1.ConnectRequest{Name: "sim", Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_SIMULATOR,
		Config: &connectorsv1.ConnectRequest_Simulator{Simulator: &connectorsv1.SimulatorConfig{Symbols: []string{"BTCUSDT"}, Seed: 3, Rate: 2000}}}); err != nil {
		t.Fatal(err)
	}
	// A reader of the connector's symbol, all along.
	var received, lastSeq atomic.Uint64
	readErr := make(chan error, 1)
	s, err := c.StreamMarketData(ctx, &connectorsv1.StreamMarketDataRequest{Connector: "sim", Symbols: []string{"BTCUSDT"}})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			m, err := s.Recv()
			if err != nil {
				readErr <- err
				return
			}
			if m.GetSequence() <= lastSeq.Load() {
				readErr <- fmt.Errorf("sequence %d after %d", m.GetSequence(), lastSeq.Load())
				return
			}
			lastSeq.Store(m.GetSequence())
			received.Add(1)
		}
	}()
	lease := func() *coordinatorv1.MemoryLease {
		l := leasesOf(t, coord, "connectors/exchange/sim")
		if len(l) != 1 {
			t.Fatalf("connector leases %v", l)
		}
		return l[0]
	}
	first := lease()
	deadline := time.Now().Add(60 * time.Second)
	for lease().GetBytes() <= 1*mib {
		if time.Now().After(deadline) {
			t.Fatalf("the connector's lease did not grow with its ring: %v", lease())
		}
		time.Sleep(100 * time.Millisecond)
	}
	grown := lease()
	if grown.GetLeaseId() != first.GetLeaseId() || grown.UsedBytes == nil {
		t.Fatalf("grown lease %v, want %s kept, with its usage", grown, first.GetLeaseId())
	}
	t.Logf("the lease grew to %d bytes (used %d)", grown.GetBytes(), grown.GetUsedBytes())

	// newSymbol opens a stream of a symbol the connector has not seen: nil
	// once the connector lists it, or the stream's error.
	var streams []context.CancelFunc
	defer func() {
		for _, f := range streams {
			f()
		}
	}()
	newSymbol := func(sym string) error {
		t.Helper()
		sctx, scancel := context.WithCancel(ctx)
		streams = append(streams, scancel)
		ns, err := c.StreamMarketData(sctx, &connectorsv1.StreamMarketDataRequest{Connector: "sim", Symbols: []string{sym}})
		if err != nil {
			return err
		}
		errc := make(chan error, 1)
		go func() {
			_, err := ns.Recv()
			errc <- err
		}()
		for end := time.Now().Add(30 * time.Second); time.Now().Before(end); {
			select {
			case err := <-errc:
				return err
			case <-time.After(50 * time.Millisecond):
			}
			if slices.Contains(list(t, c, "sim").GetSymbols(), sym) {
				return nil
			}
		}
		t.Fatalf("a stream of %s neither started nor failed", sym)
		return nil
	}
	if err := newSymbol("NEW00"); err != nil {
		t.Fatalf("a new symbol with room in the budget: %v", err)
	}

	// Fill the budget: the lease may not grow, so a new symbol is refused.
	st, err := coord.GetStatus(ctx, &coordinatorv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	filler, err := coord.CreateSession(ctx, &coordinatorv1.CreateSessionRequest{Owner: "filler", Ttl: durationpb.New(10 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	prio := int32(0)
	if _, err := coord.AcquireMemory(ctx, &coordinatorv1.AcquireMemoryRequest{SessionId: filler.GetSessionId(), Component: "filler",
		Bytes: st.GetBudgetBytes() - st.GetUsedBytes(), Priority: &prio}); err != nil {
		t.Fatal(err)
	}
	// Each new symbol's ring is reserved in the lease before it is made,
	// so the lease's headroom holds a few at most.
	var refusal error
	taken := 0
	for refusal == nil {
		if taken > 8 {
			t.Fatalf("%d new symbols taken with the budget full: %v", taken, lease())
		}
		if refusal = newSymbol(fmt.Sprintf("NEW%02d", taken+1)); refusal == nil {
			taken++
		}
	}
	t.Logf("%d new symbols taken with the budget full", taken)
	held := lease()
	if status.Code(refusal) != codes.ResourceExhausted || grpcerr.ErrorInfo(refusal).GetReason() != "MEMORY_LEASE_FULL" {
		t.Fatalf("refusal %v, want RESOURCE_EXHAUSTED MEMORY_LEASE_FULL", refusal)
	}
	meta := grpcerr.ErrorInfo(refusal).GetMetadata()
	for _, want := range []string{"new symbol NEW", "component connectors/exchange/sim uses", held.GetLeaseId(), "budget " + strconv.Itoa(budget)} {
		if !strings.Contains(status.Convert(refusal).Message(), want) {
			t.Errorf("refusal lacks %q: %v", want, refusal)
		}
	}
	if meta["lease"] != held.GetLeaseId() || meta["budget_bytes"] != strconv.Itoa(budget) || meta["used_bytes"] == "" {
		t.Errorf("refusal's details %v", meta)
	}
	t.Logf("refused: %v", refusal)

	// The symbol it has keeps flowing.
	before := received.Load()
	for received.Load() < before+200 {
		select {
		case err := <-readErr:
			t.Fatalf("the existing stream ended: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the existing stream stopped at %d events", received.Load())
		}
	}

	// Room again: the lease grows and new symbols are taken.
	if _, err := coord.CloseSession(ctx, &coordinatorv1.CloseSessionRequest{SessionId: filler.GetSessionId()}); err != nil {
		t.Fatal(err)
	}
	for {
		err := newSymbol("AGAIN")
		if err == nil {
			break
		}
		if status.Code(err) != codes.ResourceExhausted || time.Now().After(deadline) {
			t.Fatalf("a new symbol after the budget has room: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if l := lease(); l.GetLeaseId() != first.GetLeaseId() || l.GetBytes() < held.GetBytes() {
		t.Fatalf("lease %v after the budget had room (held %v)", l, held)
	}
}

// venue is a Binance combined stream that sends the trades the test asks
// for (symbol names), after acknowledging the subscription.
type venue struct{ trades chan string }

func (v *venue) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := r.Context()
	if _, _, err := c.Read(ctx); err != nil {
		return
	}
	_ = c.Write(ctx, websocket.MessageText, []byte(`{"result":null,"id":1}`))
	go func() { _, _, _ = c.Read(ctx) }()
	for id := 1; ; id++ {
		select {
		case <-ctx.Done():
			return
		case sym := <-v.trades:
			msg := fmt.Sprintf(`{"stream":"%s@trade","data":{"e":"trade","E":1763942400000,"s":"%s","t":%d,"p":"100.0","q":"1.0","T":1763942400000,"m":true,"M":true}}`,
				strings.ToLower(sym), sym, id)
			if c.Write(ctx, websocket.MessageText, []byte(msg)) != nil {
				return
			}
		}
	}
}

// A venue's new symbols while the connector's lease may not grow: their
// events are dropped and counted (refused_symbol_events), the symbols it
// has keep flowing. A real process and coordinator.
func TestVenueSymbolsDroppedWhileTheLeaseMayNotGrow(t *testing.T) {
	const mib = 1 << 20
	v := &venue{trades: make(chan string, 1024)}
	srv := httptest.NewServer(v)
	defer srv.Close()
	r, coord := coordtest.Start(t, coordtest.Config{Budget: 64 * mib})
	p := proctest.Start(t, connectorsBin, r.Addr(), "--connector-memory", "1MiB")
	c := connectorsv1.NewConnectorServiceClient(p.Conn)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/stream"
	if _, err := c.Connect(ctx, &connectorsv1.ConnectRequest{Name: "venue", Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_BINANCE,
		Config: &connectorsv1.ConnectRequest_Binance{Binance: &connectorsv1.BinanceConfig{Url: url, Symbols: []string{"BTCUSDT"}}}}); err != nil {
		t.Fatal(err)
	}
	s, err := c.StreamMarketData(ctx, &connectorsv1.StreamMarketDataRequest{Connector: "venue", Symbols: []string{"BTCUSDT"}, FromOldest: true})
	if err != nil {
		t.Fatal(err)
	}
	v.trades <- "BTCUSDT"
	if m, err := s.Recv(); err != nil || m.GetSequence() != 1 {
		t.Fatalf("first trade: %v %v", m, err)
	}
	// Fill the budget, then the venue sends symbols the connector has no
	// ring for: it makes them (it is not told yet) and outgrows its lease,
	// whose growth is refused.
	st, err := coord.GetStatus(ctx, &coordinatorv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	filler, err := coord.CreateSession(ctx, &coordinatorv1.CreateSessionRequest{Owner: "filler", Ttl: durationpb.New(10 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	prio := int32(0)
	if _, err := coord.AcquireMemory(ctx, &coordinatorv1.AcquireMemoryRequest{SessionId: filler.GetSessionId(), Component: "filler",
		Bytes: st.GetBudgetBytes() - st.GetUsedBytes(), Priority: &prio}); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		v.trades <- fmt.Sprintf("NEW%dUSDT", i)
	}
	proctest.Eventually(t, 30*time.Second, "the new symbols' rings", func() bool { return len(list(t, c, "venue").GetSymbols()) == 7 })
	proctest.Eventually(t, 30*time.Second, "the refused growth", func() bool {
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		defer scancel()
		ns, err := c.StreamMarketData(sctx, &connectorsv1.StreamMarketDataRequest{Connector: "venue", Symbols: []string{"ASKED"}})
		if err == nil {
			_, err = ns.Recv()
		}
		return status.Code(err) == codes.ResourceExhausted
	})
	// Now the venue's next new symbol is dropped and counted; BTCUSDT flows.
	v.trades <- "LATEUSDT"
	v.trades <- "BTCUSDT"
	if m, err := s.Recv(); err != nil || m.GetSequence() != 2 || m.GetSymbol() != "BTCUSDT" {
		t.Fatalf("the connector's symbol after the refusal: %v %v", m, err)
	}
	proctest.Eventually(t, 10*time.Second, "the dropped event counted", func() bool {
		return list(t, c, "venue").GetStats().GetRefusedSymbolEvents() == 1
	})
	if syms := list(t, c, "venue").GetSymbols(); slices.Contains(syms, "LATEUSDT") || slices.Contains(syms, "ASKED") {
		t.Fatalf("symbols %v: a symbol was taken while the lease could not grow", syms)
	}
}
