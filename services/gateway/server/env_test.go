package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/tradsys/mesh/pkg/service"
	"github.com/tradsys/mesh/pkg/service/servicetest"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	riskv1 "github.com/tradsys/mesh/proto/tradsys/risk/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"github.com/tradsys/mesh/services/gateway/server"
	"github.com/tradsys/mesh/services/historical/candles"
	historicalserver "github.com/tradsys/mesh/services/historical/server"
	matchingserver "github.com/tradsys/mesh/services/matching/server"
	ordersserver "github.com/tradsys/mesh/services/orders/server"
	riskserver "github.com/tradsys/mesh/services/risk/server"
	"google.golang.org/grpc"
)

var bg = context.Background()

// sessionTTL of the in-process services' coordinator sessions; benchmarks
// raise it so a loaded machine's missed keep-alive does not unload them
// mid-measurement (a lost session unloads everything it leased).
var sessionTTL = 5 * time.Second

// Test keys: two accounts, and a key with a tiny rate limit.
const (
	keyA       = "aaaaaaaaaaaaaaaaaaaaaaaa"
	keyB       = "bbbbbbbbbbbbbbbbbbbbbbbb"
	keySlowRPS = "cccccccccccccccccccccccc"
	keyBench   = "dddddddddddddddddddddddd"
	acctA      = 1
	acctB      = 2
	symbol     = "BTC-USD"
)

// mesh is a real coordinator (embedded etcd) with matching, historical
// (following matching's trades) and the gateway, each served in-process
// on loopback TCP.
type mesh struct {
	coordAddr string
	coord     coordinatorv1.CoordinatorServiceClient
	matching  matchingv1.MatchingServiceClient
	orders    ordersv1.OrderServiceClient
	risk      riskv1.RiskServiceClient
	gw        *server.Server
	gwAddr    string // gRPC
	httpAddr  string
}

// startService runs one service in-process until the test ends.
func startService(t testing.TB, name, coordAddr string, setup func(ctx context.Context, s *service.Service) error) *service.Service {
	t.Helper()
	return servicetest.Start(t, name, coordAddr, sessionTTL, setup).Service
}

func dialGRPC(t testing.TB, addr string) *grpc.ClientConn { return servicetest.Dial(t, addr) }

func startMesh(t testing.TB, tune func(*server.Options)) *mesh {
	t.Helper()
	r, cc := coordtest.Start(t, coordtest.Config{})
	m := &mesh{coordAddr: r.Addr(), coord: cc}
	ms := startService(t, "matching", m.coordAddr, func(ctx context.Context, s *service.Service) error {
		o := matchingserver.Defaults()
		o.DataDir, o.NoFsync = t.TempDir(), true
		_, err := matchingserver.Setup(ctx, s, o)
		return err
	})
	m.matching = matchingv1.NewMatchingServiceClient(dialGRPC(t, ms.Addr()))
	hs := startService(t, "historical", m.coordAddr, func(ctx context.Context, s *service.Service) error {
		o := historicalserver.Defaults()
		o.DataDir, o.MaxCacheBytes = t.TempDir(), 16<<20
		o.TradesFrom, o.TradesSymbols, o.LotSize = ms.Addr(), []string{symbol}, candles.Fixed(candles.Scale)
		_, err := historicalserver.Setup(ctx, s, o)
		return err
	})
	rs := startService(t, "risk", m.coordAddr, func(ctx context.Context, s *service.Service) error {
		o := riskserver.Defaults()
		o.DataDir, o.Matching = t.TempDir(), ms.Addr()
		_, err := riskserver.Setup(ctx, s, o)
		return err
	})
	osvc := startService(t, "orders", m.coordAddr, func(ctx context.Context, s *service.Service) error {
		o := ordersserver.Defaults()
		o.DataDir, o.NoFsync, o.Risk, o.Matching = t.TempDir(), true, rs.Addr(), ms.Addr()
		_, err := ordersserver.Setup(ctx, s, o)
		return err
	})
	m.orders = ordersv1.NewOrderServiceClient(dialGRPC(t, osvc.Addr()))
	m.risk = riskv1.NewRiskServiceClient(dialGRPC(t, rs.Addr()))
	if _, err := m.orders.CreateInstrument(bg, &ordersv1.CreateInstrumentRequest{Instrument: &ordersv1.Instrument{
		Symbol: symbol, TickSize: "0.01", LotSize: "1"}}); err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(t.TempDir(), "api-keys")
	if err := os.WriteFile(keys, []byte("# test keys\n"+keyA+" 1 name=alice\n"+keyB+" 2 name=bob\n"+keySlowRPS+" 3 name=carol rate=1 burst=2\n"+keyBench+" 4 name=bench rate=1000000 burst=1000000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gs := startService(t, "gateway", m.coordAddr, func(ctx context.Context, s *service.Service) error {
		o := server.Defaults()
		o.HTTPListen, o.APIKeys, o.CreateAPIKey = "127.0.0.1:0", keys, false
		o.Matching, o.Historical, o.Orders = ms.Addr(), hs.Addr(), osvc.Addr()
		o.Hub.BookInterval, o.Hub.CandleInterval = 50*time.Millisecond, 100*time.Millisecond
		if tune != nil {
			tune(&o)
		}
		var err error
		m.gw, err = server.Setup(ctx, s, o)
		return err
	})
	m.gwAddr, m.httpAddr = gs.Addr(), m.gw.HTTPAddr()
	return m
}

// frame is a server frame as a client sees it.
type frame struct {
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Channel string          `json:"channel"`
	Symbol  string          `json:"symbol"`
	Code    string          `json:"code"`
	Field   string          `json:"field"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
	TS      int64           `json:"ts"`
}

// client is a real WebSocket client of the gateway.
type client struct {
	t  testing.TB
	ws *websocket.Conn
	// seen keeps every frame read, so a test can look for one that
	// arrived while it waited for another.
	seen []frame
}

func (m *mesh) dial(t testing.TB, key string) (*client, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	opts := &websocket.DialOptions{}
	if key != "" {
		opts.HTTPHeader = http.Header{"Authorization": {"Bearer " + key}}
	}
	ws, resp, err := websocket.Dial(ctx, "ws://"+m.httpAddr+"/ws", opts)
	if err != nil {
		return nil, resp, err
	}
	ws.SetReadLimit(1 << 24)
	c := &client{t: t, ws: ws}
	t.Cleanup(func() { ws.CloseNow() })
	if f := c.next(5 * time.Second); f.Type != "welcome" {
		t.Fatalf("first frame %+v, want welcome", f)
	}
	return c, resp, nil
}

func (m *mesh) mustDial(t testing.TB, key string) *client {
	t.Helper()
	c, _, err := m.dial(t, key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *client) send(msg any) {
	c.t.Helper()
	b, ok := msg.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(msg); err != nil {
			c.t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(bg, 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) read(timeout time.Duration) (frame, error) {
	ctx, cancel := context.WithTimeout(bg, timeout)
	defer cancel()
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		return frame{}, err
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		return frame{}, err
	}
	c.seen = append(c.seen, f)
	return f, nil
}

func (c *client) next(timeout time.Duration) frame {
	c.t.Helper()
	f, err := c.read(timeout)
	if err != nil {
		c.t.Fatal(err)
	}
	return f
}

// seenOrUntil looks through the frames already read, then reads on.
func (c *client) seenOrUntil(timeout time.Duration, what string, match func(frame) bool) frame {
	c.t.Helper()
	for _, f := range c.seen {
		if match(f) {
			return f
		}
	}
	return c.until(timeout, what, match)
}

// until reads frames until match accepts one (skipping the others).
func (c *client) until(timeout time.Duration, what string, match func(frame) bool) frame {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			c.t.Fatalf("no %s within %s", what, timeout)
		}
		f, err := c.read(left)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				c.t.Fatalf("no %s within %s", what, timeout)
			}
			c.t.Fatalf("waiting for %s (at %s): %v", what, time.Now().Format("15:04:05.000"), err)
		}
		if match(f) {
			return f
		}
	}
}

func decode[T any](t testing.TB, raw json.RawMessage) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return v
}

// directIDs are matching order ids the tests use directly, far from the
// ids orders assigns.
const directIDs = 1 << 40

// cross puts n trades of qty 1 into matching for sym: n resting sells of
// 1 lot at price, then one IOC buy that takes them all.
func (m *mesh) cross(t testing.TB, sym string, firstID uint64, n int, price int64) {
	t.Helper()
	for i := range n {
		if _, err := m.matching.SubmitOrder(bg, &matchingv1.SubmitOrderRequest{Symbol: sym, OrderId: directIDs + firstID + uint64(i), Account: 100,
			Side: matchingv1.Side_SIDE_SELL, Type: matchingv1.OrderType_ORDER_TYPE_LIMIT, Price: price, Quantity: 1}); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := m.matching.SubmitOrder(bg, &matchingv1.SubmitOrderRequest{Symbol: sym, OrderId: directIDs + firstID + uint64(n), Account: 101,
		Side: matchingv1.Side_SIDE_BUY, Type: matchingv1.OrderType_ORDER_TYPE_IOC, Price: price, Quantity: int64(n)})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(resp.GetExecution().GetTrades()); got != n {
		t.Fatalf("cross produced %d trades, want %d", got, n)
	}
}

// dialQuery connects with the key in the api_key query parameter, as the
// page does.
func (m *mesh) dialQuery(t testing.TB, key string) (*client, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, "ws://"+m.httpAddr+"/ws?api_key="+key, nil)
	if err != nil {
		return nil, resp, err
	}
	c := &client{t: t, ws: ws}
	t.Cleanup(func() { ws.CloseNow() })
	if f := c.next(5 * time.Second); f.Type != "welcome" {
		t.Fatalf("first frame %+v, want welcome", f)
	}
	return c, resp, nil
}

// dialSmallWindow connects with a 4 KiB socket receive buffer, so a client
// that stops reading fills the server's buffers quickly.
func (m *mesh) dialSmallWindow(t testing.TB, key string) *client {
	t.Helper()
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+m.httpAddr+"/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"X-API-Key": {key}},
		HTTPClient: &http.Client{Transport: &http.Transport{DialContext: d.DialContext}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(1 << 24)
	c := &client{t: t, ws: ws}
	t.Cleanup(func() { ws.CloseNow() })
	if f := c.next(5 * time.Second); f.Type != "welcome" {
		t.Fatalf("first frame %+v, want welcome", f)
	}
	return c
}

// restingBid rests a buy order on matching.
func restingBid(t testing.TB, m *mesh, id uint64, price, qty int64) {
	t.Helper()
	if _, err := m.matching.SubmitOrder(bg, &matchingv1.SubmitOrderRequest{Symbol: symbol, OrderId: directIDs + id, Account: 100,
		Side: matchingv1.Side_SIDE_BUY, Type: matchingv1.OrderType_ORDER_TYPE_LIMIT, Price: price, Quantity: qty}); err != nil {
		t.Fatal(err)
	}
}

func mustID(t testing.TB, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
