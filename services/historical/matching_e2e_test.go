package main_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/proctest"
	historicalv1 "github.com/tradsys/mesh/proto/tradsys/historical/v1"
	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
)

// Scales passed to the historical service: price = ticks × 0.25, quantity
// = lots × 0.001; in the 1e-8 units of fx these are the factors below.
const (
	e2eTickSize, e2eTickUnits = "0.25", 25_000_000
	e2eLotSize, e2eLotUnits   = "0.001", 100_000
)

// matchingTrader submits crossing orders to a matching process and keeps
// every trade the answers report.
type matchingTrader struct {
	t      *testing.T
	mc     matchingv1.MatchingServiceClient
	nextID uint64
	trades map[string][]*matchingv1.Trade // by symbol, in sequence order
}

func (m *matchingTrader) submit(symbol string, side matchingv1.Side, typ matchingv1.OrderType, price, qty int64) {
	m.t.Helper()
	m.nextID++
	resp, err := m.mc.SubmitOrder(context.Background(), &matchingv1.SubmitOrderRequest{Symbol: symbol, OrderId: m.nextID,
		Account: m.nextID, Side: side, Type: typ, Price: price, Quantity: qty})
	if err != nil {
		m.t.Fatalf("submit %s #%d: %v", symbol, m.nextID, err)
	}
	for _, tr := range resp.GetExecution().GetTrades() {
		if tr.GetExecutedAt() == nil {
			m.t.Fatalf("trade without executed_at: %v", tr)
		}
		m.trades[symbol] = append(m.trades[symbol], tr)
	}
}

// round rests a few sells and takes them (a market buy sweeping levels, or
// a limit buy lifting one), so trades share execution times and cross
// levels.
func (m *matchingTrader) round(symbol string, i int64) {
	const sell, buy = matchingv1.Side_SIDE_SELL, matchingv1.Side_SIDE_BUY
	limit, market := matchingv1.OrderType_ORDER_TYPE_LIMIT, matchingv1.OrderType_ORDER_TYPE_MARKET
	base := 4000 + (i*37)%50
	if i%2 == 0 {
		var total int64
		for k := int64(0); k < 3; k++ {
			q := 1 + (i+k)%7
			total += q
			m.submit(symbol, sell, limit, base+k, q)
		}
		m.submit(symbol, buy, market, 0, total)
		return
	}
	q := 2 + i%5
	m.submit(symbol, buy, limit, base, q)
	m.submit(symbol, sell, limit, base-3, q) // trades at the maker's (the bid's) price
}

func (m *matchingTrader) count() int {
	n := 0
	for _, ts := range m.trades {
		n += len(ts)
	}
	return n
}

// expectedCandles builds the 1m candles the trades imply, independently of
// the service's code.
func expectedCandles(trades []*matchingv1.Trade) []bar {
	var out []bar
	for _, tr := range trades { // sequence order: execution times never decrease
		minute := tr.GetExecutedAt().AsTime().UTC().Truncate(time.Minute)
		p, v := tr.GetPrice()*e2eTickUnits, tr.GetQuantity()*e2eLotUnits
		if n := len(out); n > 0 && out[n-1].open.Equal(minute) {
			b := &out[n-1]
			b.h, b.l, b.c = max(b.h, p), min(b.l, p), p
			b.v += v
			b.trades++
			continue
		}
		out = append(out, bar{open: minute, o: p, h: p, l: p, c: p, v: v, trades: 1})
	}
	return out
}

func sourceTrades(t *testing.T, hc historicalv1.HistoricalDataServiceClient, name string) (uint64, *historicalv1.GetIngestStatusResponse) {
	t.Helper()
	st, err := hc.GetIngestStatus(context.Background(), &historicalv1.GetIngestStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.GetSources() {
		if s.GetName() == name {
			return s.GetTrades(), st
		}
	}
	return 0, st
}

// TestEndToEndMatchingTradesToCandles runs real processes: a coordinator,
// tradsys-matching, and the historical service following its StreamTrades
// (--trades-from). Matching is killed (SIGKILL) and restarted mid-way, the
// historical service is restarted at the end; the 1m candles must be
// exactly what the submitted trades imply, with nothing lost, late or
// counted twice.
func TestEndToEndMatchingTradesToCandles(t *testing.T) {
	r, _ := coordtest.Start(t, coordtest.Config{})
	ctx := context.Background()
	mdir, hdir := t.TempDir(), t.TempDir()
	const btc, eth = "BTC-USD", "ETH-USD"
	m := proctest.Start(t, matchingBin, r.Addr(), "--data-dir", mdir)
	histArgs := []string{"--data-dir", hdir, "--trades-from", m.Addr, "--trades-symbols", btc + "," + eth,
		"--tick-size", e2eTickSize, "--lot-size", e2eLotSize,
		// Room for the reconnect after the restart under -race.
		"--lateness", "15s"}
	tr := &matchingTrader{t: t, mc: matchingv1.NewMatchingServiceClient(m.Conn), trades: map[string][]*matchingv1.Trade{}}
	// Trades before the historical service starts are picked up too (it
	// starts from the oldest trade matching keeps).
	for i := int64(0); i < 5; i++ {
		tr.round(btc, i)
	}
	hist := proctest.Start(t, historicalBin, r.Addr(), histArgs...)
	hc := client(hist)
	btcSrc, ethSrc := "matching://"+m.Addr+"/"+btc, "matching://"+m.Addr+"/"+eth
	for i := int64(5); i < 20; i++ {
		tr.round(btc, i)
	}
	proctest.Eventually(t, 30*time.Second, "phase 1 trades received", func() bool {
		n, _ := sourceTrades(t, hc, btcSrc)
		return n == uint64(len(tr.trades[btc]))
	})

	// Crash matching and restart it on the same address and data directory.
	before := append([]*matchingv1.Trade(nil), tr.trades[btc]...)
	m.Kill(t)
	m = proctest.Start(t, matchingBin, r.Addr(), "--data-dir", mdir, "--listen", m.Addr)
	tr.mc = matchingv1.NewMatchingServiceClient(m.Conn)
	for i := int64(20); i < 40; i++ {
		tr.round(btc, i)
		if i%4 == 0 {
			tr.round(eth, i) // a symbol that did not exist before the restart
		}
	}
	// The replayed trades kept their execution times.
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	stream, err := tr.mc.StreamTrades(sctx, &matchingv1.StreamTradesRequest{Symbol: btc, FromSequence: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range before {
		got, err := stream.Recv()
		if err != nil || got.GetTrade().GetSequence() != want.GetSequence() ||
			!got.GetTrade().GetExecutedAt().AsTime().Equal(want.GetExecutedAt().AsTime()) {
			t.Fatalf("after restart: %v %v, want %v", got, err, want)
		}
	}
	cancel()

	proctest.Eventually(t, 30*time.Second, "every trade received", func() bool {
		b, _ := sourceTrades(t, hc, btcSrc)
		e, _ := sourceTrades(t, hc, ethSrc)
		return b == uint64(len(tr.trades[btc])) && e == uint64(len(tr.trades[eth]))
	})
	want := map[string][]bar{btc: expectedCandles(tr.trades[btc]), eth: expectedCandles(tr.trades[eth])}
	query := func(p *proctest.Proc, sym string) []*historicalv1.Candle {
		w := want[sym]
		got, _ := allPages(t, client(p), &historicalv1.GetHistoricalDataRequest{Symbol: sym, Interval: historicalv1.Interval_INTERVAL_1M,
			Start: ts(w[0].open), End: ts(w[len(w)-1].open.Add(time.Minute))})
		return got
	}
	// A 1m candle is written once final: its minute over plus the lateness.
	proctest.Eventually(t, 110*time.Second, "the 1m candles final", func() bool {
		return len(query(hist, btc)) == len(want[btc]) && len(query(hist, eth)) == len(want[eth])
	})
	check := func(p *proctest.Proc, what string) {
		t.Helper()
		for _, sym := range []string{btc, eth} {
			got := query(p, sym)
			if len(got) != len(want[sym]) {
				t.Fatalf("%s %s: %d candles, want %d", what, sym, len(got), len(want[sym]))
			}
			for i, c := range got {
				checkCandle(t, fmt.Sprintf("%s %s candle %d", what, sym, i), c, want[sym][i])
			}
		}
	}
	check(hist, "after the matching restart")
	total := uint64(tr.count())
	_, st := sourceTrades(t, hc, btcSrc)
	if st.GetAccepted() != total || st.GetLate() != 0 || st.GetDuplicates() != 0 || st.GetInvalid() != 0 {
		t.Fatalf("ingest status %v; %d trades submitted", st, total)
	}

	// The historical service restarts: it reads matching's trades again
	// from the oldest, skips those its stored candles already hold, and the
	// candles stay the same.
	hist.Stop(t)
	hist = proctest.Start(t, historicalBin, r.Addr(), histArgs...)
	hc = client(hist)
	proctest.Eventually(t, 30*time.Second, "trades received again after the historical restart", func() bool {
		b, _ := sourceTrades(t, hc, btcSrc)
		e, _ := sourceTrades(t, hc, ethSrc)
		return b == uint64(len(tr.trades[btc])) && e == uint64(len(tr.trades[eth]))
	})
	_, st = sourceTrades(t, hc, btcSrc)
	if st.GetAccepted() != 0 || st.GetLate() != 0 || st.GetInvalid() != 0 {
		t.Fatalf("after the historical restart: %v (want every trade skipped as already stored)", st)
	}
	check(hist, "after the historical restart")
	var names []string
	for _, s := range st.GetSources() {
		names = append(names, s.GetName())
	}
	sort.Strings(names)
	if len(names) != 2 || names[0] != btcSrc || names[1] != ethSrc {
		t.Fatalf("sources %v", names)
	}
}
