package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/tradsys/mesh/services/gateway/hub"
	"github.com/tradsys/mesh/services/gateway/server"
)

func TestNoKeyNoConnection(t *testing.T) {
	m := startMesh(t, nil)
	for name, key := range map[string]string{"no key": "", "unknown key": "not-a-key-of-this-gateway"} {
		_, resp, err := m.dial(t, key)
		if err == nil {
			t.Fatalf("%s: upgrade accepted", name)
		}
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s: %v (response %v), want 401", name, err, resp)
		}
	}
	// The refused upgrades did not load the gateway.
	if st := m.gw.Main.Status(); st.State.String() != "DORMANT" {
		t.Fatalf("gateway %s after refused upgrades, want DORMANT", st.State)
	}
	// The key in the query string (what browsers use) works.
	c, resp, err := m.dialQuery(t, keyA)
	if err != nil {
		t.Fatalf("api_key query: %v %v", err, resp)
	}
	c.send(map[string]string{"type": "ping", "id": "p"})
	if f := c.next(5 * time.Second); f.Type != "pong" || f.ID != "p" {
		t.Fatalf("got %+v, want pong", f)
	}
}

func TestBadJSONGetsAnErrorFrameAndTheConnectionStays(t *testing.T) {
	m := startMesh(t, nil)
	c := m.mustDial(t, keyA)
	cases := []struct {
		frame string
		code  string
		field string
		id    string
	}{
		{`{"type":"subscribe","channel":"trades"`, hub.CodeBadJSON, "", ""},
		{`not json`, hub.CodeBadJSON, "", ""},
		{`{"id":"7","type":"subscribe","channel":"trades","symbol":"BTC-USD","extra":1}`, hub.CodeBadJSON, "", "7"},
		{`{"id":"8","type":"dance"}`, hub.CodeUnknownType, "", "8"},
		{`{"id":"9","type":"subscribe","channel":"weather","symbol":"BTC-USD"}`, hub.CodeInvalidField, "channel", "9"},
		{`{"id":"10","type":"subscribe","channel":"trades","symbol":"BTC USD"}`, hub.CodeInvalidField, "symbol", "10"},
		{`{"id":"11","type":"submit","order":{"symbol":"BTC-USD","side":"buy","price":"-5","quantity":"1"}}`, hub.CodeInvalidField, "order.price", "11"},
		{`{"id":"12","type":"submit","order":{"symbol":"BTC-USD","side":"buy","price":"100","quantity":1}}`, hub.CodeBadJSON, "", "12"},
		{`{"id":"13","type":"cancel","symbol":"BTC-USD","order_id":"x"}`, hub.CodeInvalidField, "order_id", "13"},
	}
	for _, tc := range cases {
		c.send([]byte(tc.frame))
		f := c.next(5 * time.Second)
		if f.Type != "error" || f.Code != tc.code || f.Field != tc.field || f.ID != tc.id || f.Message == "" {
			t.Errorf("%s: got %+v, want error %s field %q id %q", tc.frame, f, tc.code, tc.field, tc.id)
		}
	}
	// A binary frame is refused the same way.
	if err := c.ws.Write(bg, websocket.MessageBinary, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if f := c.next(5 * time.Second); f.Type != "error" || f.Code != hub.CodeBadJSON {
		t.Fatalf("binary frame: %+v", f)
	}
	c.send(map[string]string{"type": "ping", "id": "still-here"})
	if f := c.next(5 * time.Second); f.Type != "pong" || f.ID != "still-here" {
		t.Fatalf("after bad frames: %+v, want pong", f)
	}
}

func TestSubscribeReceivesTradesBookAndCandles(t *testing.T) {
	m := startMesh(t, nil)
	c := m.mustDial(t, keyA)
	// Trades that happened before the subscription come as the recent list.
	m.cross(t, symbol, 1, 3, 10000)
	c.send(map[string]any{"id": "t", "type": "subscribe", "channel": "trades", "symbol": symbol})
	if f := c.next(5 * time.Second); f.Type != "ack" || f.ID != "t" {
		t.Fatalf("subscribe answer %+v", f)
	}
	// The recent trades come as the "trades" list or, while the gateway
	// catches up with matching, as "trade" frames: 1..3 either way, once.
	var seen []uint64
	c.until(5*time.Second, "recent trades", func(f frame) bool {
		switch f.Type {
		case "trades":
			for _, tr := range decode[[]hub.Trade](t, f.Data) {
				seen = append(seen, tr.Sequence)
			}
		case "trade":
			seen = append(seen, decode[hub.Trade](t, f.Data).Sequence)
		}
		return len(seen) >= 3
	})
	if len(seen) != 3 || seen[0] != 1 || seen[2] != 3 {
		t.Fatalf("recent trades %v, want 1..3", seen)
	}
	// Live trades follow, in order, with what matching did.
	m.cross(t, symbol, 10, 2, 10100)
	for want := uint64(4); want <= 5; want++ {
		f := c.until(5*time.Second, "trade", func(f frame) bool { return f.Type == "trade" })
		tr := decode[hub.Trade](t, f.Data)
		if tr.Sequence != want || tr.Price != "101" || tr.Quantity != "1" || tr.TakerSide != "buy" || tr.Symbol != symbol || tr.Time == 0 {
			t.Fatalf("trade %+v, want sequence %d at 10100 x 1, taker buy", tr, want)
		}
	}

	// The book shows a resting order within a book interval.
	c.send(map[string]any{"id": "b", "type": "subscribe", "channel": "book", "symbol": symbol, "depth": 5})
	restingBid(t, m, 30, 9900, 7)
	f := c.until(5*time.Second, "book with the bid", func(f frame) bool {
		if f.Type != "book" {
			return false
		}
		b := decode[hub.Book](t, f.Data)
		return len(b.Bids) == 1 && b.Bids[0].Price == "99" && b.Bids[0].Quantity == "7"
	})
	if f.Symbol != symbol {
		t.Fatalf("book frame for %q", f.Symbol)
	}

	// Candles: historical follows matching; the current minute's candle
	// holds the trades (prices in ticks of 0.01).
	c.send(map[string]any{"id": "c", "type": "subscribe", "channel": "candles", "symbol": symbol})
	c.until(10*time.Second, "candle with 5 trades", func(f frame) bool {
		var cs []hub.Candle
		switch f.Type {
		case "candles":
			cs = decode[[]hub.Candle](t, f.Data)
		case "candle":
			cs = []hub.Candle{decode[hub.Candle](t, f.Data)}
		}
		for _, cd := range cs {
			if cd.Trades == 5 && cd.High == "101.00000000" && cd.Low == "100.00000000" && cd.Volume == "5.00000000" {
				return true
			}
		}
		return false
	})
}

func TestMeshChannelShowsComponentsAndLeases(t *testing.T) {
	m := startMesh(t, nil)
	c := m.mustDial(t, keyA)
	c.send(map[string]any{"id": "m", "type": "subscribe", "channel": "mesh"})
	c.until(10*time.Second, "mesh with the active gateway and its lease", func(f frame) bool {
		if f.Type != "mesh" {
			return false
		}
		st := decode[hub.MeshState](t, f.Data)
		var active, leased, matching bool
		for _, comp := range st.Components {
			active = active || comp.Name == "gateway" && comp.State == "ACTIVE" && comp.Priority == 10
			matching = matching || comp.Name == "matching"
		}
		for _, l := range st.Leases {
			leased = leased || l.Component == "gateway" && l.Bytes == 200<<20 && l.Priority == 10
		}
		return active && leased && matching && st.BudgetBytes > 0 && st.UsedBytes >= 200<<20
	})
}

func TestKeyActsOnlyOnItsOwnAccount(t *testing.T) {
	m := startMesh(t, nil)
	c := m.mustDial(t, keyB)
	c.send([]byte(`{"id":"x","type":"submit","order":{"symbol":"BTC-USD","side":"buy","price":"100","quantity":"1","account":"1"}}`))
	if f := c.next(5 * time.Second); f.Type != "error" || f.Code != hub.CodeForbidden || f.ID != "x" || !strings.Contains(f.Message, "account 2 only") {
		t.Fatalf("submit for another account: %+v, want forbidden", f)
	}
	c.send([]byte(`{"id":"y","type":"cancel","symbol":"BTC-USD","order_id":"5","account":"1"}`))
	if f := c.next(5 * time.Second); f.Type != "error" || f.Code != hub.CodeForbidden || f.ID != "y" {
		t.Fatalf("cancel for another account: %+v, want forbidden", f)
	}
}

func TestRateLimitPerKey(t *testing.T) {
	m := startMesh(t, nil)
	c := m.mustDial(t, keySlowRPS) // rate=1 burst=2
	for i := range 3 {
		c.send(map[string]any{"id": string(rune('a' + i)), "type": "subscribe", "channel": "mesh"})
	}
	var limited int
	for range 3 {
		f := c.until(5*time.Second, "answer", func(f frame) bool { return f.Type == "ack" || f.Type == "error" })
		if f.Type == "error" {
			if f.Code != hub.CodeRateLimited || f.ID != "c" {
				t.Fatalf("%+v, want rate_limited for the third request", f)
			}
			limited++
		}
	}
	if limited != 1 {
		t.Fatalf("%d requests limited, want 1", limited)
	}
	// Another key is not limited by carol's use.
	other := m.mustDial(t, keyA)
	for i := range 3 {
		other.send(map[string]any{"id": string(rune('a' + i)), "type": "ping"})
		if f := other.next(5 * time.Second); f.Type != "pong" {
			t.Fatalf("alice: %+v", f)
		}
	}
}

func TestSlowConsumerIsClosedWhileAFastOneKeepsUp(t *testing.T) {
	const sendBuffer, chunk, trades = 256, 100, 3000
	m := startMesh(t, func(o *server.Options) {
		o.Hub.SendBuffer, o.Hub.WriteTimeout, o.SocketSendBuffer = sendBuffer, 30*time.Second, 64<<10
	})
	fast := m.mustDial(t, keyA)
	slow := m.dialSmallWindow(t, keyB)
	for _, c := range []*client{fast, slow} {
		c.send(map[string]any{"id": "s", "type": "subscribe", "channel": "trades", "symbol": symbol})
	}
	fast.until(5*time.Second, "ack", func(f frame) bool { return f.Type == "ack" })
	// The fast client reads as the trades flow; the slow one reads nothing.
	fastDone := make(chan error, 1)
	var fastGot atomic.Uint64
	go func() {
		var got uint64
		for got < trades {
			f, err := fast.read(30 * time.Second)
			if err != nil {
				fastDone <- fmt.Errorf("fast client after trade %d: %w", got, err)
				return
			}
			if f.Type != "trade" {
				continue
			}
			var tr hub.Trade
			if err := json.Unmarshal(f.Data, &tr); err != nil || tr.Sequence != got+1 {
				fastDone <- fmt.Errorf("fast client: trade %s after %d (%v)", f.Data, got, err)
				return
			}
			got = tr.Sequence
			fastGot.Store(got)
		}
		fastDone <- nil
	}()
	// The slow client starts reading once the gateway has given up on it
	// (it gets what was in flight, then the close with code and reason).
	type slowEnd struct {
		frames int
		err    error
	}
	slowDone := make(chan slowEnd, 1)
	go func() {
		for m.gw.Hub.Stats().SlowConsumers == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		n := 0
		for {
			_, err := slow.read(20 * time.Second)
			if err != nil {
				slowDone <- slowEnd{n, err}
				return
			}
			n++
		}
	}()
	// In chunks smaller than the send buffer, so a client that reads keeps
	// up with each.
	for i := 0; i < trades; i += chunk {
		m.cross(t, symbol, uint64(1+i*(chunk+1)), chunk, 10000)
		// The next chunk goes once the fast client has read this one, so
		// it keeps up by construction however late a loaded machine runs
		// its reader; the slow one, reading nothing, still falls behind.
		want, deadline := uint64(min(i+chunk, trades)), time.Now().Add(30*time.Second)
		for fastGot.Load() < want && len(fastDone) == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	if err := <-fastDone; err != nil {
		t.Fatal(err)
	}
	end := <-slowDone
	n, err := end.frames, end.err
	if code := websocket.CloseStatus(err); code != hub.CloseSlowConsumer {
		t.Fatalf("slow client ended with %v (code %d) after %d frames, want close %d", err, code, n, hub.CloseSlowConsumer)
	}
	var ce websocket.CloseError
	if !errors.As(err, &ce) || !strings.Contains(ce.Reason, "slow consumer") {
		t.Fatalf("close reason %q", ce.Reason)
	}
	if st := m.gw.Hub.Stats(); st.SlowConsumers != 1 {
		t.Fatalf("%d slow consumers, want 1", st.SlowConsumers)
	}
	if n >= trades {
		t.Fatalf("slow client got all %d trades; it was never slow", n)
	}
	t.Logf("slow client got %d of %d frames before the close", n, trades)
	// The fast client is still served.
	fast.send(map[string]string{"type": "ping", "id": "after"})
	fast.until(5*time.Second, "pong", func(f frame) bool { return f.Type == "pong" })
}
