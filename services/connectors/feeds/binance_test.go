package feeds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeBinance is a local server speaking Binance's combined-stream protocol.
type fakeBinance struct {
	t     *testing.T
	conns atomic.Int32
	mu    sync.Mutex
	subs  [][]string
	// script returns the messages to send on connection n (1-based) and
	// whether to drop the connection afterwards (else it stays open).
	script func(n int) (msgs []string, drop bool)
}

func (f *fakeBinance) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	n := int(f.conns.Add(1))
	ctx := r.Context()
	_, msg, err := c.Read(ctx)
	if err != nil {
		return
	}
	var sub struct {
		Method string   `json:"method"`
		Params []string `json:"params"`
		ID     int      `json:"id"`
	}
	if err := json.Unmarshal(msg, &sub); err != nil || sub.Method != "SUBSCRIBE" || sub.ID == 0 {
		f.t.Errorf("bad subscription %s", msg)
		return
	}
	f.mu.Lock()
	f.subs = append(f.subs, sub.Params)
	f.mu.Unlock()
	c.Write(ctx, websocket.MessageText, []byte(fmt.Sprintf(`{"result":null,"id":%d}`, sub.ID)))
	msgs, drop := f.script(n)
	for _, m := range msgs {
		if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			return
		}
	}
	if drop {
		return // CloseNow: abrupt drop, no close handshake
	}
	// stay open; keep reading so pings/close are processed
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return
		}
	}
}

func binTrade(id int64, price string, maker bool) string {
	return fmt.Sprintf(`{"stream":"btcusdt@trade","data":{"e":"trade","E":%d,"s":"BTCUSDT","t":%d,"p":"%s","q":"0.01000000","T":%d,"m":%v,"M":true}}`,
		1763942400000+id, id, price, 1763942400000+id, maker)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBinanceConnectorReconnect(t *testing.T) {
	f := &fakeBinance{t: t, script: func(n int) ([]string, bool) {
		switch n {
		case 1:
			return []string{
				binTrade(1, "86780.01", true),
				`{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","p":"oops"}}`, // malformed: counted, skipped
				binTrade(2, "86780.02", false),
				`not json at all`, // malformed
				`{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1763942400200,"s":"BTCUSDT","U":10,"u":12,"b":[["86780.00","1"]],"a":[]}}`,
				binTrade(3, "86780.03", true),
			}, true // then drop the connection
		default:
			return []string{binTrade(4, "86780.04", false), binTrade(5, "86780.05", true)}, false
		}
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()

	b, err := NewBinance(BinanceConfig{
		URL:     "ws" + strings.TrimPrefix(srv.URL, "http") + "/stream",
		Symbols: []string{"BTCUSDT"}, Depth: true,
		Backoff: Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond},
		Seed:    1,
	})
	if err != nil {
		t.Fatal(err)
	}
	stream := NewStream(StreamConfig{RingSize: 64})
	if err := b.Start(context.Background(), stream); err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	sub, _ := stream.Subscribe("BTCUSDT", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var prices []string
	for len(prices) < 5 {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("after %v: %v (stats %+v)", prices, err, b.Stats())
		}
		if tr, ok := ev.Event.(Trade); ok {
			prices = append(prices, tr.Price.String())
		}
	}
	if got := strings.Join(prices, " "); got != "86780.01000000 86780.02000000 86780.03000000 86780.04000000 86780.05000000" {
		t.Fatalf("prices %s", got)
	}
	waitFor(t, "connected", func() bool { return b.Stats().Connected })
	// Counters are bumped after the event is published: wait for them.
	var st Stats
	waitFor(t, "stats to settle", func() bool {
		st = b.Stats()
		return st.Malformed == 2 && st.Reconnects == 1 && st.Events == 6 && st.Messages == 10 && st.Running
	})
	f.mu.Lock()
	subs := f.subs
	f.mu.Unlock()
	if len(subs) != 2 || strings.Join(subs[1], ",") != "btcusdt@trade,btcusdt@depth@100ms" {
		t.Fatalf("subscriptions %v", subs)
	}
	b.Stop()
	if st := b.Stats(); st.Running || st.Connected {
		t.Fatalf("after stop %+v", st)
	}
}

func TestBinanceConnectorDialFailureBackoff(t *testing.T) {
	// nothing listens: dial errors are counted and retried until Stop
	srv := httptest.NewServer(http.NotFoundHandler())
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	srv.Close()
	b, _ := NewBinance(BinanceConfig{URL: url, Symbols: []string{"btcusdt"},
		Backoff: Backoff{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond}})
	b.Start(context.Background(), newCollector())
	waitFor(t, "3 dial errors", func() bool { return b.Stats().DialErrors >= 3 })
	b.Stop()
	if st := b.Stats(); st.LastError == nil || st.Reconnects != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBinanceAPIErrorIsNotMalformed(t *testing.T) {
	f := &fakeBinance{t: t, script: func(int) ([]string, bool) {
		return []string{`{"error":{"code":2,"msg":"Invalid request"},"id":1}`, binTrade(1, "1", true)}, false
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	b, _ := NewBinance(BinanceConfig{URL: "ws" + strings.TrimPrefix(srv.URL, "http"), Symbols: []string{"btcusdt"}})
	c := newCollector()
	b.Start(context.Background(), c)
	defer b.Stop()
	waitFor(t, "trade", func() bool { return len(c.trades()) == 1 })
	var api *APIError
	if st := b.Stats(); st.Malformed != 0 || !errors.As(st.LastError, &api) {
		t.Fatalf("stats %+v", st)
	}
}

func TestBinanceIdleTimeoutReconnects(t *testing.T) {
	f := &fakeBinance{t: t, script: func(n int) ([]string, bool) {
		return []string{binTrade(int64(n), "1", true)}, false // then silence
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	b, _ := NewBinance(BinanceConfig{URL: "ws" + strings.TrimPrefix(srv.URL, "http"), Symbols: []string{"btcusdt"},
		IdleTimeout: 100 * time.Millisecond, Backoff: Backoff{Initial: 5 * time.Millisecond, Max: 10 * time.Millisecond}})
	c := newCollector()
	b.Start(context.Background(), c)
	defer b.Stop()
	waitFor(t, "reconnect after idle", func() bool { return b.Stats().Reconnects >= 1 && len(c.trades()) >= 2 })
}

func TestBackoffDelay(t *testing.T) {
	bo := Backoff{Initial: 100 * time.Millisecond, Max: 2 * time.Second}
	for n, want := range []time.Duration{100, 200, 400, 800, 1600, 2000, 2000, 2000} {
		want *= time.Millisecond
		lo, hi := bo.Delay(n, func() float64 { return 0 }), bo.Delay(n, func() float64 { return 0.999999999 })
		if lo != want/2 || hi > want || hi < want*99/100 {
			t.Errorf("attempt %d: [%v, %v], want [%v, %v]", n, lo, hi, want/2, want)
		}
	}
	if d := bo.Delay(1000, func() float64 { return 1 }); d > 2*time.Second {
		t.Fatalf("uncapped %v", d)
	}
}
