package candles

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

var t0 = time.Date(2025, 11, 24, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func tr(id int64, d time.Duration, price, qty string) Trade {
	return Trade{Symbol: "BTCUSDT", Time: at(d), Price: MustFixed(price), Qty: MustFixed(qty), ID: id}
}

func mk(iv Interval, open time.Duration, o, h, l, c, vol, qvol string, n int64) Candle {
	return Candle{Symbol: "BTCUSDT", Interval: iv, OpenTime: at(open),
		Open: MustFixed(o), High: MustFixed(h), Low: MustFixed(l), Close: MustFixed(c),
		Volume: MustFixed(vol), QuoteVolume: MustFixed(qvol), Trades: n}
}

func fmtCandle(c Candle) string {
	return fmt.Sprintf("%s %s %s O=%s H=%s L=%s C=%s V=%s QV=%s N=%d", c.Symbol, c.Interval,
		c.OpenTime.UTC().Format("15:04:05"), c.Open, c.High, c.Low, c.Close, c.Volume, c.QuoteVolume, c.Trades)
}

func sameCandles(t *testing.T, what string, got, want []Candle) {
	t.Helper()
	if len(got) != len(want) {
		for _, c := range got {
			t.Logf("got  %s", fmtCandle(c))
		}
		t.Fatalf("%s: %d candles, want %d", what, len(got), len(want))
	}
	for i := range got {
		if fmtCandle(got[i]) != fmtCandle(want[i]) || !got[i].OpenTime.Equal(want[i].OpenTime) {
			t.Errorf("%s[%d]:\n got  %s\n want %s", what, i, fmtCandle(got[i]), fmtCandle(want[i]))
		}
	}
}

// TestAggregatorHandComputed walks a small stream with out-of-order trades
// inside the bound, one beyond it, a duplicate id and a two-minute gap, and
// compares every emitted candle with values computed by hand.
func TestAggregatorHandComputed(t *testing.T) {
	a, err := NewAggregator(AggregatorConfig{Lateness: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s := time.Second
	ingest := func(tt Trade) {
		t.Helper()
		if err := a.Ingest(tt); err != nil {
			t.Fatalf("ingest #%d: %v", tt.ID, err)
		}
	}
	ingest(tr(1, 10*s, "100.50", "2"))
	ingest(tr(2, 30*s, "101.00", "1.5"))
	ingest(tr(4, 55*s, "99.25", "0.1"))
	ingest(tr(3, 50*s, "102.00", "1"))    // 5s behind the newest: applied
	ingest(tr(7, 64*s, "103.00", "1"))    // minute 1 opens; minute 0 not final (watermark 54s)
	ingest(tr(6, 58*s, "98.00", "2"))     // arrives after #7 but is minute 0's latest trade: its close
	ingest(tr(8, 62*s, "104.00", "0.25")) // earlier than #7: minute 1's open
	if got := a.Drain(nil); len(got) != 0 {
		t.Fatalf("emitted too early: %v", got)
	}
	ingest(tr(9, 80*s, "101.50", "1")) // watermark 70s: minute 0 final
	sameCandles(t, "after #9", a.Drain(nil), []Candle{
		mk(Interval1m, 0, "100.50", "102", "98", "98", "6.6", "660.425", 5),
	})

	// 21s behind the newest trade: beyond the bound.
	err = a.Ingest(tr(5, 59*s, "50", "1"))
	var late *LateTradeError
	if !errors.As(err, &late) || !errors.Is(err, ErrLateTrade) {
		t.Fatalf("late trade: got %v", err)
	}
	if late.TradeID != 5 || late.Symbol != "BTCUSDT" || !late.NewestTime.Equal(at(80*s)) ||
		late.Lateness != 10*s || !late.TradeTime.Equal(at(59*s)) {
		t.Errorf("late error fields: %+v", late)
	}
	// Duplicate id: ignored, no error.
	if err := a.Ingest(tr(2, 81*s, "1000", "100")); err != nil {
		t.Fatalf("duplicate: %v", err)
	}
	// Gap: minutes 2 and 3 have no trades.
	ingest(tr(10, 4*time.Minute, "105", "3"))
	sameCandles(t, "after #10", a.Drain(nil), []Candle{
		mk(Interval1m, time.Minute, "104", "104", "101.5", "101.5", "2.25", "230.5", 3),
	})
	ingest(tr(11, 5*time.Minute+30*s, "106", "1"))
	sameCandles(t, "after #11", a.Drain(nil), []Candle{
		mk(Interval1m, 4*time.Minute, "105", "105", "105", "105", "3", "315", 1),
		mk(Interval5m, 0, "100.50", "105", "98", "105", "11.85", "1205.925", 9),
	})
	cur, ok := a.Current("BTCUSDT", Interval1h)
	wantHour := mk(Interval1h, 0, "100.50", "106", "98", "106", "12.85", "1311.925", 10)
	if !ok || fmtCandle(cur) != fmtCandle(wantHour) {
		t.Errorf("Current 1h = %s, %v; want %s", fmtCandle(cur), ok, fmtCandle(wantHour))
	}
	if cur, ok := a.Current("BTCUSDT", Interval1m); !ok || fmtCandle(cur) != fmtCandle(mk(Interval1m, 5*time.Minute, "106", "106", "106", "106", "1", "106", 1)) {
		t.Errorf("Current 1m = %s", fmtCandle(cur))
	}
	a.Flush()
	sameCandles(t, "after Flush", a.Drain(nil), []Candle{
		mk(Interval1m, 5*time.Minute, "106", "106", "106", "106", "1", "106", 1),
		mk(Interval5m, 5*time.Minute, "106", "106", "106", "106", "1", "106", 1),
		mk(Interval15m, 0, "100.50", "106", "98", "106", "12.85", "1311.925", 10),
		wantHour,
		mk(Interval1d, 0, "100.50", "106", "98", "106", "12.85", "1311.925", 10),
	})
	st := a.Stats()
	if st.Accepted != 10 || st.Late != 1 || st.Duplicates != 1 || st.Invalid != 0 || st.Emitted != 9 || st.Symbols != 1 {
		t.Errorf("stats = %+v", st)
	}
	if err := a.Ingest(tr(12, 6*time.Minute, "1", "1")); !errors.Is(err, ErrFlushed) {
		t.Errorf("ingest after flush: %v", err)
	}
}

// TestAggregatorLatenessBoundary checks the bound is inclusive: exactly
// Lateness behind the newest trade is applied, 1ns more is dropped.
func TestAggregatorLatenessBoundary(t *testing.T) {
	var got []Candle
	a, _ := NewAggregator(AggregatorConfig{Lateness: 2 * time.Second, OnCandle: func(c Candle) { got = append(got, c) }})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(a.Ingest(tr(1, 61*time.Second, "10", "1")))
	must(a.Ingest(tr(2, 59*time.Second, "11", "1"))) // exactly 2s behind: minute 0
	err := a.Ingest(Trade{Symbol: "BTCUSDT", Time: at(59*time.Second - 1), Price: MustFixed("12"), Qty: MustFixed("1"), ID: 3})
	if !errors.Is(err, ErrLateTrade) {
		t.Fatalf("1ns beyond the bound: %v", err)
	}
	must(a.Ingest(tr(4, 62*time.Second, "13", "1"))) // watermark 60s: minute 0 final
	sameCandles(t, "emitted", got, []Candle{mk(Interval1m, 0, "11", "11", "11", "11", "1", "11", 1)})
	if a.Stats().Late != 1 {
		t.Errorf("late count %d", a.Stats().Late)
	}
	// AdvanceTo closes candles without new trades.
	got = nil
	a.AdvanceTo(at(2*time.Minute + 2*time.Second))
	sameCandles(t, "after AdvanceTo", got, []Candle{mk(Interval1m, time.Minute, "10", "13", "10", "13", "2", "23", 2)})
}

func TestAggregatorTieBreakAndInvalid(t *testing.T) {
	a, _ := NewAggregator(AggregatorConfig{})
	// Same timestamp: open/close chosen by trade id, not arrival.
	for _, tt := range []Trade{tr(20, time.Second, "2", "1"), tr(10, time.Second, "1", "1"), tr(30, time.Second, "3", "1"), tr(25, time.Second, "4", "1")} {
		if err := a.Ingest(tt); err != nil {
			t.Fatal(err)
		}
	}
	a.Flush()
	got := a.Drain(nil)
	if len(got) != 5 || got[0].Open != MustFixed("1") || got[0].Close != MustFixed("3") || got[0].High != MustFixed("4") {
		t.Fatalf("tie-break: %v", got)
	}
	b, _ := NewAggregator(AggregatorConfig{})
	bad := []Trade{
		{Symbol: "BTCUSDT", Time: t0, Price: 0, Qty: Scale, ID: 1},
		{Symbol: "BTCUSDT", Time: t0, Price: Scale, Qty: -1, ID: 2},
		{Symbol: "BTC/USDT", Time: t0, Price: Scale, Qty: Scale, ID: 3},
		{Symbol: "", Time: t0, Price: Scale, Qty: Scale, ID: 4},
		{Symbol: "BTCUSDT", Time: time.Time{}, Price: Scale, Qty: Scale, ID: 5},
		{Symbol: "BTCUSDT", Time: t0, Price: MustFixed("90000"), Qty: MustFixed("2000000"), ID: 6},
	}
	for _, tt := range bad {
		if err := b.Ingest(tt); !errors.Is(err, ErrInvalidTrade) {
			t.Errorf("trade %+v: err %v", tt, err)
		}
	}
	if b.Stats().Invalid != uint64(len(bad)) || b.Stats().Accepted != 0 {
		t.Errorf("stats %+v", b.Stats())
	}
	if _, err := NewAggregator(AggregatorConfig{Lateness: -time.Second}); err == nil {
		t.Error("negative lateness accepted")
	}
}

func TestAggregatorDedupWindow(t *testing.T) {
	a, _ := NewAggregator(AggregatorConfig{DedupWindow: 3})
	for id := int64(1); id <= 4; id++ {
		if err := a.Ingest(tr(id, time.Duration(id)*time.Millisecond, "1", "1")); err != nil {
			t.Fatal(err)
		}
	}
	_ = a.Ingest(tr(4, 5*time.Millisecond, "1", "1")) // in window: ignored
	_ = a.Ingest(tr(2, 5*time.Millisecond, "1", "1")) // in window: ignored
	_ = a.Ingest(tr(1, 5*time.Millisecond, "1", "1")) // fell out of the 3-id window: counted again
	st := a.Stats()
	if st.Accepted != 5 || st.Duplicates != 2 {
		t.Errorf("stats %+v", st)
	}
}

// naiveCandles computes candles straight from a trade set: group by bucket,
// sort by (time, id).
func naiveCandles(trades []Trade, iv Interval) []Candle {
	groups := map[int64][]Trade{}
	for _, tt := range trades {
		s := iv.Align(tt.Time).UnixNano()
		groups[s] = append(groups[s], tt)
	}
	var starts []int64
	for s := range groups {
		starts = append(starts, s)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	var out []Candle
	for _, s := range starts {
		g := groups[s]
		sort.Slice(g, func(i, j int) bool {
			if !g[i].Time.Equal(g[j].Time) {
				return g[i].Time.Before(g[j].Time)
			}
			return g[i].ID < g[j].ID
		})
		c := Candle{Symbol: g[0].Symbol, Interval: iv, OpenTime: time.Unix(0, s).UTC(),
			Open: g[0].Price, High: g[0].Price, Low: g[0].Price, Close: g[len(g)-1].Price}
		for _, tt := range g {
			c.High = max(c.High, tt.Price)
			c.Low = min(c.Low, tt.Price)
			c.Volume += tt.Qty
			qv, _ := MulFixed(tt.Price, tt.Qty)
			c.QuoteVolume += qv
			c.Trades++
		}
		out = append(out, c)
	}
	return out
}

// TestAggregatorMatchesNaive feeds random trades (with sparse minutes,
// equal timestamps, duplicates and arrival jitter below the bound) and
// compares every interval with the naive computation.
func TestAggregatorMatchesNaive(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		const lateness = 3 * time.Second
		var trades []Trade
		tm := t0.Add(23 * time.Hour)
		for i := 0; i < 5000; i++ {
			switch rng.IntN(20) {
			case 0:
				tm = tm.Add(time.Duration(rng.IntN(7)) * time.Minute) // gaps
			case 1:
				// same timestamp as previous
			default:
				tm = tm.Add(time.Duration(rng.IntN(1500)) * time.Millisecond)
			}
			trades = append(trades, Trade{Symbol: "ETHUSDT", Time: tm, ID: int64(i * 3),
				Price: Fixed(1+rng.IntN(1_000_000)) * 1000, Qty: Fixed(1 + rng.IntN(50_000_000))})
		}
		type arrival struct {
			key time.Time
			t   Trade
		}
		var arr []arrival
		for _, tt := range trades {
			arr = append(arr, arrival{tt.Time.Add(time.Duration(rng.Int64N(int64(lateness)))), tt})
			if rng.IntN(10) == 0 { // resend with a different payload; must be ignored
				d := tt
				d.Price++
				arr = append(arr, arrival{tt.Time.Add(time.Duration(rng.Int64N(int64(lateness)))), d})
			}
		}
		sort.SliceStable(arr, func(i, j int) bool { return arr[i].key.Before(arr[j].key) })
		// A duplicate that arrives before the original wins; model that.
		seen := map[int64]bool{}
		var effective []Trade
		for _, x := range arr {
			if !seen[x.t.ID] {
				seen[x.t.ID] = true
				effective = append(effective, x.t)
			}
		}
		a, _ := NewAggregator(AggregatorConfig{Lateness: lateness})
		for _, x := range arr {
			if err := a.Ingest(x.t); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
		}
		a.Flush()
		byIv := map[Interval][]Candle{}
		for _, c := range a.Drain(nil) {
			byIv[c.Interval] = append(byIv[c.Interval], c)
		}
		for _, iv := range Intervals {
			sameCandles(t, fmt.Sprintf("seed %d %s", seed, iv), byIv[iv], naiveCandles(effective, iv))
		}
		if st := a.Stats(); st.Accepted != uint64(len(trades)) || st.Late != 0 {
			t.Errorf("seed %d stats %+v", seed, st)
		}
	}
}

func TestAggregatorZeroAllocs(t *testing.T) {
	n := 0
	a, _ := NewAggregator(AggregatorConfig{OnCandle: func(Candle) { n++ }})
	i := int64(0)
	next := func() {
		i++
		jitter := int64(0)
		if i%7 == 0 {
			jitter = -int64(time.Second) // out of order, within the bound
		}
		_ = a.Ingest(Trade{Symbol: "BTCUSDT", Time: time.Unix(0, t0.UnixNano()+i*int64(3*time.Millisecond)+jitter),
			Price: Fixed(8_600_000_000_000 + i%1000), Qty: 1_000_000, ID: i})
	}
	for range 100_000 { // warm up: symbol state, dedup table, buckets
		next()
	}
	allocs := testing.AllocsPerRun(50_000, next)
	if allocs != 0 {
		t.Errorf("Ingest allocates %.3f per trade in steady state", allocs)
	}
	if n == 0 {
		t.Error("no candles emitted")
	}
}

func TestDedupSetModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for _, capacity := range []int{1, 2, 3, 16, 100} {
		d := newDedupSet(capacity)
		var fifo []uint64
		in := map[uint64]bool{}
		for i := 0; i < 20000; i++ {
			id := uint64(rng.IntN(capacity * 3))
			if rng.IntN(50) == 0 {
				id = 0
			}
			want := !in[id]
			if got := d.insert(id); got != want {
				t.Fatalf("cap %d step %d id %d: insert=%v want %v", capacity, i, id, got, want)
			}
			if want {
				if len(fifo) == capacity {
					delete(in, fifo[0])
					fifo = fifo[1:]
				}
				fifo = append(fifo, id)
				in[id] = true
			}
		}
	}
}
