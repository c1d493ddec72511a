package candles

import (
	"path/filepath"
	"testing"
	"time"
)

// benchIngest feeds b.N synthetic trades (3 ms apart, so a 1m candle closes
// every 20,000 trades) spread over nsym symbols; every jitterEvery-th trade
// is 1 s older than its predecessor (out of order, within the 5 s bound).
func benchIngest(b *testing.B, nsym int, jitterEvery int64) {
	syms := []string{"BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"}[:nsym]
	emitted := 0
	a, _ := NewAggregator(AggregatorConfig{OnCandle: func(Candle) { emitted++ }})
	base := t0.UnixNano()
	var i int64
	ingest := func() {
		i++
		ns := base + i*int64(3*time.Millisecond)
		if jitterEvery > 0 && i%jitterEvery == 0 {
			ns -= int64(time.Second)
		}
		err := a.Ingest(Trade{Symbol: syms[i%int64(nsym)], Time: time.Unix(0, ns),
			Price: Fixed(8_600_000_000_000 + (i*7919)%100_000_000), Qty: Fixed(100_000 + i%1_000_000), ID: i})
		if err != nil {
			b.Fatal(err)
		}
	}
	for range 50_000 { // warm up per-symbol state
		ingest()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		ingest()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "trades/s")
	if emitted == 0 {
		b.Fatal("no candles")
	}
}

// BenchmarkIngest: trades per second into 1m/5m/15m/1h/1d candles.
func BenchmarkIngest(b *testing.B) {
	b.Run("in-order", func(b *testing.B) { benchIngest(b, 1, 0) })
	b.Run("10pct-out-of-order", func(b *testing.B) { benchIngest(b, 1, 10) })
	b.Run("4-symbols-interleaved", func(b *testing.B) { benchIngest(b, 4, 10) })
}

type rangeFixture struct {
	store      *Store
	cached     *CachedStore
	start, end time.Time
}

func newRangeFixture(b *testing.B) *rangeFixture {
	week := weekCandles(b)
	s, err := OpenStore(filepath.Join(b.TempDir(), "bench.db"), &StoreOptions{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.Put(week...); err != nil {
		b.Fatal(err)
	}
	cache, _ := NewCache(CacheConfig{MaxBytes: 64 << 20, TTL: time.Hour})
	cs, _ := NewCachedStore(s, cache)
	// The middle day: 2025-11-27, 1,440 candles.
	return &rangeFixture{store: s, cached: cs, start: week[3*1440].OpenTime, end: week[4*1440].OpenTime}
}

func (f *rangeFixture) rangeDay(b *testing.B) {
	p, err := f.cached.Range("BTCUSDT", Interval1m, f.start, f.end, 1440, "")
	if err != nil || len(p.Candles) != 1440 {
		b.Fatalf("%d candles, %v", len(p.Candles), err)
	}
}

// BenchmarkRangeDay1m: Range over one day of 1m candles (1,440) through
// the read-through cache, on a hit and on a miss (the series is
// invalidated before every miss, so each one reads bbolt, decodes and
// inserts into the cache), plus the ratio measured in one run.
func BenchmarkRangeDay1m(b *testing.B) {
	b.Run("cache-miss", func(b *testing.B) {
		f := newRangeFixture(b)
		b.ReportAllocs()
		b.ResetTimer()
		for n := 0; n < b.N; n++ {
			f.cached.Cache().InvalidateSeries("BTCUSDT", Interval1m)
			f.rangeDay(b)
		}
	})
	b.Run("cache-hit", func(b *testing.B) {
		f := newRangeFixture(b)
		f.rangeDay(b)
		b.ReportAllocs()
		b.ResetTimer()
		for n := 0; n < b.N; n++ {
			f.rangeDay(b)
		}
	})
	b.Run("store-direct", func(b *testing.B) {
		f := newRangeFixture(b)
		b.ReportAllocs()
		b.ResetTimer()
		for n := 0; n < b.N; n++ {
			p, err := f.store.Range("BTCUSDT", Interval1m, f.start, f.end, 1440, "")
			if err != nil || len(p.Candles) != 1440 {
				b.Fatal(err)
			}
		}
	})
	b.Run("hit-vs-miss", func(b *testing.B) {
		f := newRangeFixture(b)
		const hitsPerMiss = 100
		var missT, hitT time.Duration
		b.ResetTimer()
		for n := 0; n < b.N; n++ {
			f.cached.Cache().InvalidateSeries("BTCUSDT", Interval1m)
			t := time.Now()
			f.rangeDay(b)
			missT += time.Since(t)
			t = time.Now()
			for range hitsPerMiss {
				f.rangeDay(b)
			}
			hitT += time.Since(t)
		}
		missNs := float64(missT.Nanoseconds()) / float64(b.N)
		hitNs := float64(hitT.Nanoseconds()) / float64(b.N*hitsPerMiss)
		b.ReportMetric(missNs, "miss-ns")
		b.ReportMetric(hitNs, "hit-ns")
		b.ReportMetric(missNs/hitNs, "miss/hit")
	})
}
