package server_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/tradsys/mesh/pkg/candlewire"
	historicalv1 "github.com/tradsys/mesh/proto/tradsys/historical/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"github.com/tradsys/mesh/services/historical/candles"
	"github.com/tradsys/mesh/services/historical/history"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
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

// BenchmarkWireDay1m is issue 15's measure: one day of 1m candles (1,440,
// cache hit) over gRPC in each encoding, against a no-op call (health
// Check) on the same server and connection in the same run. Each of the
// b.N rounds makes one call of each kind, in rotating order, so the shared
// machine's noise hits all alike. Timings include what a Go client does
// to get values: unmarshal, and for the compact forms candlewire's decode
// into exact decimals (the readable form stays strings). Reported: p50 of
// each, its ratio to the no-op p50, and bytes per candle on the wire.
//
//	cd services/historical && go test -run '^$' -bench WireDay1m -benchtime 3000x ./server/
func BenchmarkWireDay1m(b *testing.B) {
	r, _ := coordtest.Start(b, coordtest.Config{})
	c, _, conn := startService(b, r.Addr(), history.Options{NoSync: true})
	ctx := context.Background()
	if _, err := c.Backfill(ctx, &historicalv1.BackfillRequest{Source: &historicalv1.BackfillRequest_Bundled{Bundled: true}}); err != nil {
		b.Fatal(err)
	}
	day := time.Date(2025, 11, 27, 0, 0, 0, 0, time.UTC)
	health := healthpb.NewHealthClient(conn)
	unary := func(enc historicalv1.CandleEncoding) *historicalv1.GetHistoricalDataRequest {
		return &historicalv1.GetHistoricalDataRequest{Symbol: "BTCUSDT", Interval: historicalv1.Interval_INTERVAL_1M,
			Start: timestamppb.New(day), End: timestamppb.New(day.Add(24 * time.Hour)), PageSize: 2000, Encoding: enc}
	}
	readableReq, compactReq := unary(historicalv1.CandleEncoding_CANDLE_ENCODING_UNSPECIFIED), unary(historicalv1.CandleEncoding_CANDLE_ENCODING_COMPACT)
	var wireBytes [4]int
	kinds := []struct {
		name string
		call func() (candles int, err error)
	}{
		{"no-op (health Check)", func() (int, error) {
			_, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
			return 1440, err
		}},
		{"readable, unary", func() (int, error) {
			resp, err := c.GetHistoricalData(ctx, readableReq)
			wireBytes[1] = proto.Size(resp)
			return len(resp.GetCandles()), err
		}},
		{"compact, unary + decode", func() (int, error) {
			resp, err := c.GetHistoricalData(ctx, compactReq)
			if err != nil {
				return 0, err
			}
			wireBytes[2] = proto.Size(resp)
			dec, err := candlewire.Decode(resp.GetCompact())
			return len(dec.Bars), err
		}},
		{"compact, stream (candlewire.Fetch)", func() (int, error) {
			bars, err := candlewire.Fetch(ctx, c, "BTCUSDT", historicalv1.Interval_INTERVAL_1M, day, day.Add(24*time.Hour), 0)
			return len(bars), err
		}},
	}
	// The stream's bytes: its messages as Fetch's default chunking sends them.
	s, err := c.StreamHistoricalData(ctx, &historicalv1.StreamHistoricalDataRequest{Symbol: "BTCUSDT", Interval: historicalv1.Interval_INTERVAL_1M,
		Start: timestamppb.New(day), End: timestamppb.New(day.Add(24 * time.Hour)), ChunkSize: candlewire.DefaultFetchChunk, Encoding: historicalv1.CandleEncoding_CANDLE_ENCODING_COMPACT})
	if err != nil {
		b.Fatal(err)
	}
	for {
		msg, err := s.Recv()
		if err != nil {
			break
		}
		wireBytes[3] += proto.Size(msg)
	}
	lat := make([][]time.Duration, len(kinds))
	for k := range kinds { // warm: the cache holds the day, connections are up
		if _, err := kinds[k].call(); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range kinds {
			k := (i + j) % len(kinds)
			t0 := time.Now()
			n, err := kinds[k].call()
			lat[k] = append(lat[k], time.Since(t0))
			if err != nil || n != 1440 {
				b.Fatalf("%s: %d candles, %v", kinds[k].name, n, err)
			}
		}
	}
	b.StopTimer()
	p50 := make([]time.Duration, len(kinds))
	for k := range kinds {
		sort.Slice(lat[k], func(i, j int) bool { return lat[k][i] < lat[k][j] })
		p50[k] = lat[k][len(lat[k])/2]
	}
	metric := []string{"noop", "readable", "compact", "stream"}
	for k := range kinds {
		b.ReportMetric(float64(p50[k].Nanoseconds())/1e3, metric[k]+"-p50-µs")
		if k > 0 {
			b.ReportMetric(float64(p50[k])/float64(p50[0]), metric[k]+"/noop")
			b.ReportMetric(float64(wireBytes[k])/1440, metric[k]+"-B/candle")
		}
	}
	if b.N < 100 { // the calibration run; the table is for the measured one
		return
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "one day of 1m candles (1,440), cache hit, %d rounds\tp50\tp99\tp50 / no-op p50\tbytes/candle\t\n", b.N)
	for k := range kinds {
		ratio, bytes := "1.00x", ""
		if k > 0 {
			ratio, bytes = fmt.Sprintf("%.2fx", float64(p50[k])/float64(p50[0])), fmt.Sprintf("%.1f", float64(wireBytes[k])/1440)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", kinds[k].name, p50[k].Round(time.Microsecond), lat[k][len(lat[k])*99/100].Round(time.Microsecond), ratio, bytes)
	}
	tw.Flush()
}
