package server_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	historicalv1 "github.com/tradsys/mesh/proto/tradsys/historical/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"github.com/tradsys/mesh/services/historical/candles"
	"github.com/tradsys/mesh/services/historical/history"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var benchStart = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// synthetic trade i: 3 ms apart (a 1m candle closes every 20,000 trades),
// price walking around 90,000.
func benchPrice(i int) (string, candles.Fixed) {
	p := 9_000_000_000_000 + int64((i*7919)%20001-10000)*1_000_000
	f := candles.Fixed(p)
	return f.String(), f
}

// BenchmarkIngestTrades: trades per second into candles end to end.
//
//   - grpc: IngestTrades client stream (1,000 trades per message) through
//     the full server chain into the aggregator, final candles flushed to
//     bbolt (fsync on) by the service's flusher;
//   - history: the same path without gRPC (aggregator + store).
//
// Each run checks the 1m candles written.
func BenchmarkIngestTrades(b *testing.B) {
	r, _ := coordtest.Start(b, coordtest.Config{})
	const batch = 1000
	b.Run("grpc", func(b *testing.B) {
		c, h, _ := startService(b, r.Addr(), history.Options{})
		msgs := make([]*historicalv1.IngestTradesRequest, 0, b.N/batch+1)
		for i := 0; i < b.N; i += batch {
			m := &historicalv1.IngestTradesRequest{}
			for j := i; j < min(i+batch, b.N); j++ {
				ps, _ := benchPrice(j)
				m.Trades = append(m.Trades, &historicalv1.Trade{Symbol: "BTCUSDT", Time: timestamppb.New(benchStart.Add(time.Duration(j) * 3 * time.Millisecond)),
					Price: ps, Quantity: "0.015", TradeId: int64(j + 1)})
			}
			msgs = append(msgs, m)
		}
		b.ResetTimer()
		s, err := c.IngestTrades(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range msgs {
			if err := s.Send(m); err != nil {
				b.Fatal(err)
			}
		}
		res, err := s.CloseAndRecv()
		if err != nil {
			b.Fatal(err)
		}
		h.Flush()
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "trades/s")
		if res.GetAccepted() != uint64(b.N) {
			b.Fatalf("accepted %d of %d", res.GetAccepted(), b.N)
		}
		check1m(b, h, b.N)
	})
	b.Run("history", func(b *testing.B) {
		h, err := history.Open(history.Options{DataDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		defer h.Close()
		trades := make([]candles.Trade, b.N)
		for j := range trades {
			_, p := benchPrice(j)
			trades[j] = candles.Trade{Symbol: "BTCUSDT", Time: benchStart.Add(time.Duration(j) * 3 * time.Millisecond), Price: p,
				Qty: candles.MustFixed("0.015"), ID: int64(j + 1)}
		}
		b.ResetTimer()
		for i := 0; i < b.N; i += batch {
			h.Ingest(trades[i:min(i+batch, b.N)])
		}
		h.Flush()
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "trades/s")
		check1m(b, h, b.N)
	})
}

func check1m(b *testing.B, h *history.History, n int) {
	// All but the last 5 s of trades are in final 1m candles.
	full := (n*3 - 5000) / 60000
	if full <= 0 {
		return
	}
	page, err := h.Store().Range("BTCUSDT", candles.Interval1m, benchStart, benchStart.Add(time.Duration(full)*time.Minute), 10000, "")
	if err != nil || len(page.Candles) != min(full, 10000) {
		b.Fatalf("%d 1m candles written, want %d: %v", len(page.Candles), full, err)
	}
}

// BenchmarkGetHistoricalDataDay1m: one day of 1m candles (1,440) of the
// real week, through gRPC, with the cache hit (the same query repeated) and
// missed (each query's start moves back by a nanosecond: a new cache key, a
// bbolt read). p50/p99 come from every call's latency; the hit ratio from
// GetCacheStats over the same run.
func BenchmarkGetHistoricalDataDay1m(b *testing.B) {
	r, _ := coordtest.Start(b, coordtest.Config{})
	c, _, _ := startService(b, r.Addr(), history.Options{NoSync: true})
	ctx := context.Background()
	if _, err := c.Backfill(ctx, &historicalv1.BackfillRequest{Source: &historicalv1.BackfillRequest_Bundled{Bundled: true}}); err != nil {
		b.Fatal(err)
	}
	day := time.Date(2025, 11, 27, 0, 0, 0, 0, time.UTC)
	run := func(b *testing.B, start func(i int) time.Time) {
		lat := make([]time.Duration, 0, b.N)
		before, _ := c.GetCacheStats(ctx, &historicalv1.GetCacheStatsRequest{})
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			resp, err := c.GetHistoricalData(ctx, &historicalv1.GetHistoricalDataRequest{Symbol: "BTCUSDT", Interval: historicalv1.Interval_INTERVAL_1M,
				Start: timestamppb.New(start(i)), End: timestamppb.New(day.Add(24 * time.Hour)), PageSize: 2000})
			lat = append(lat, time.Since(t0))
			if err != nil || len(resp.GetCandles()) != 1440 {
				b.Fatalf("%d candles, %v", len(resp.GetCandles()), err)
			}
		}
		b.StopTimer()
		after, _ := c.GetCacheStats(ctx, &historicalv1.GetCacheStatsRequest{})
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		hits, misses := after.GetHits()-before.GetHits(), after.GetMisses()-before.GetMisses()
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		b.ReportMetric(float64(hits)/float64(max(hits+misses, 1)), "hit-ratio")
		if testing.Verbose() {
			fmt.Printf("    hits %d misses %d\n", hits, misses)
		}
	}
	b.Run("hit", func(b *testing.B) {
		run(b, func(int) time.Time { return day })
	})
	n := 0
	b.Run("miss", func(b *testing.B) {
		run(b, func(int) time.Time { n++; return day.Add(-time.Duration(n)) })
	})
	m := 0
	b.Run("mixed-90pct-repeat", func(b *testing.B) {
		run(b, func(i int) time.Time {
			if i%10 == 9 {
				m++
				return day.Add(-time.Duration(1_000_000 + m))
			}
			return day
		})
	})
}
