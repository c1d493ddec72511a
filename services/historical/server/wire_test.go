package server_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/candlewire"
	"github.com/tradsys/mesh/pkg/fixed"
	historicalv1 "github.com/tradsys/mesh/proto/tradsys/historical/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"github.com/tradsys/mesh/services/historical/candles"
	"github.com/tradsys/mesh/services/historical/history"
	"github.com/tradsys/mesh/services/historical/server"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The bundled Binance week (BTCUSDT 1m).
var (
	weekStart = time.Date(2025, 11, 24, 0, 0, 0, 0, time.UTC)
	weekEnd   = weekStart.Add(8 * 24 * time.Hour)
)

// readableBar parses a readable candle exactly (the strings a grpcurl user
// sees) into the values the compact form must decode to.
func readableBar(t *testing.T, c *historicalv1.Candle) candlewire.Bar {
	t.Helper()
	var b candlewire.Bar
	if c.GetOpenTime().GetNanos()%int32(time.Millisecond) != 0 {
		t.Fatalf("readable candle opens at %v, not a whole millisecond", c.GetOpenTime().AsTime())
	}
	b.OpenTimeMs, b.Trades = c.GetOpenTime().AsTime().UnixMilli(), c.GetTrades()
	for _, f := range []struct {
		s  string
		to *fixed.Decimal
	}{{c.GetOpen(), &b.Open}, {c.GetHigh(), &b.High}, {c.GetLow(), &b.Low}, {c.GetClose(), &b.Close},
		{c.GetVolume(), &b.Volume}, {c.GetQuoteVolume(), &b.QuoteVolume}} {
		d, err := fixed.Parse(f.s)
		if err != nil {
			t.Fatalf("readable candle %v: %v", c, err)
		}
		*f.to = d
	}
	return b
}

func equalBars(t *testing.T, what string, got, want []candlewire.Bar) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d candles, readable has %d", what, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.OpenTimeMs != w.OpenTimeMs || g.Open != w.Open || g.High != w.High || g.Low != w.Low || g.Close != w.Close ||
			g.Volume != w.Volume || g.QuoteVolume != w.QuoteVolume || g.Trades != w.Trades {
			t.Fatalf("%s: candle %d is %+v, readable is %+v", what, i, g, w)
		}
	}
}

// TestCompactDecodesToReadable: over the real week at every interval, the
// compact form (unary and streamed, through candlewire) decodes to exactly
// the values of the readable form, which stays the default; a day of 1m
// candles costs at most 40 bytes a candle on the wire.
func TestCompactDecodesToReadable(t *testing.T) {
	r, _ := coordtest.Start(t, coordtest.Config{})
	c, _, _ := startService(t, r.Addr(), history.Options{NoSync: true})
	ctx := context.Background()
	if _, err := c.Backfill(ctx, &historicalv1.BackfillRequest{Source: &historicalv1.BackfillRequest_Bundled{Bundled: true}}); err != nil {
		t.Fatal(err)
	}
	for _, iv := range []historicalv1.Interval{historicalv1.Interval_INTERVAL_1M, historicalv1.Interval_INTERVAL_5M,
		historicalv1.Interval_INTERVAL_15M, historicalv1.Interval_INTERVAL_1H, historicalv1.Interval_INTERVAL_1D} {
		req := &historicalv1.GetHistoricalDataRequest{Symbol: "BTCUSDT", Interval: iv, Start: timestamppb.New(weekStart),
			End: timestamppb.New(weekEnd), PageSize: historicalv1.MaxPageSize}
		// Page through both forms with the same page tokens.
		var want, unary []candlewire.Bar
		for {
			req.Encoding = historicalv1.CandleEncoding_CANDLE_ENCODING_UNSPECIFIED
			readable, err := c.GetHistoricalData(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if readable.GetCompact() != nil || len(readable.GetCandles()) == 0 {
				t.Fatalf("%v: the default answer has %d readable candles and compact %v", iv, len(readable.GetCandles()), readable.GetCompact() != nil)
			}
			for _, rc := range readable.GetCandles() {
				want = append(want, readableBar(t, rc))
			}
			req.Encoding = historicalv1.CandleEncoding_CANDLE_ENCODING_COMPACT
			compact, err := c.GetHistoricalData(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if len(compact.GetCandles()) != 0 || compact.GetNextPageToken() != readable.GetNextPageToken() {
				t.Fatalf("%v: compact answer has %d readable candles, next page %q (readable: %q)", iv, len(compact.GetCandles()),
					compact.GetNextPageToken(), readable.GetNextPageToken())
			}
			dec, err := candlewire.Decode(compact.GetCompact())
			if err != nil {
				t.Fatal(err)
			}
			if dec.Symbol != "BTCUSDT" || dec.Interval != iv {
				t.Fatalf("compact run is %s %v", dec.Symbol, dec.Interval)
			}
			unary = append(unary, dec.Bars...)
			if req.PageToken = readable.GetNextPageToken(); req.PageToken == "" {
				break
			}
		}
		if iv == historicalv1.Interval_INTERVAL_1M && len(want) != 7*1440 {
			t.Fatalf("%d 1m candles in the bundled week, want %d", len(want), 7*1440)
		}
		equalBars(t, iv.String()+" unary compact", unary, want)

		streamed, err := candlewire.Fetch(ctx, c, "BTCUSDT", iv, weekStart, weekEnd, 777)
		if err != nil {
			t.Fatal(err)
		}
		equalBars(t, iv.String()+" streamed compact", streamed, want)

		// The readable stream: chunks of at most chunk_size, together the
		// same candles.
		s, err := c.StreamHistoricalData(ctx, &historicalv1.StreamHistoricalDataRequest{Symbol: "BTCUSDT", Interval: iv,
			Start: timestamppb.New(weekStart), End: timestamppb.New(weekEnd), ChunkSize: 777})
		if err != nil {
			t.Fatal(err)
		}
		var got []candlewire.Bar
		for {
			msg, err := s.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if n := len(msg.GetCandles()); n == 0 || n > 777 || msg.GetCompact() != nil {
				t.Fatalf("readable chunk of %d candles (compact %v)", n, msg.GetCompact() != nil)
			}
			for _, rc := range msg.GetCandles() {
				got = append(got, readableBar(t, rc))
			}
		}
		equalBars(t, iv.String()+" streamed readable", got, want)
	}

	// A long stream leaves one page in the cache, its first: the rest is
	// read past the cache.
	before, err := c.GetCacheStats(ctx, &historicalv1.GetCacheStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	otherStart := weekStart.Add(time.Minute) // a query no one asked before
	bars, err := candlewire.Fetch(ctx, c, "BTCUSDT", historicalv1.Interval_INTERVAL_1M, otherStart, weekEnd, 100)
	if err != nil || len(bars) != 7*1440-1 {
		t.Fatalf("streamed %d candles in chunks of 100, want %d: %v", len(bars), 7*1440-1, err)
	}
	after, err := c.GetCacheStats(ctx, &historicalv1.GetCacheStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if grew := after.GetEntries() - before.GetEntries(); grew != 1 {
		t.Errorf("a stream of %d chunks added %d cache entries, want 1 (its first chunk)", (len(bars)+99)/100, grew)
	}

	day := time.Date(2025, 11, 27, 0, 0, 0, 0, time.UTC)
	size := func(enc historicalv1.CandleEncoding) float64 {
		resp, err := c.GetHistoricalData(ctx, &historicalv1.GetHistoricalDataRequest{Symbol: "BTCUSDT", Interval: historicalv1.Interval_INTERVAL_1M,
			Start: timestamppb.New(day), End: timestamppb.New(day.Add(24 * time.Hour)), PageSize: 2000, Encoding: enc})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(resp.GetCandles()) + int(resp.GetCompact().GetCount()); n != 1440 {
			t.Fatalf("%d candles in a day", n)
		}
		return float64(proto.Size(resp)) / 1440
	}
	readableB, compactB := size(historicalv1.CandleEncoding_CANDLE_ENCODING_UNSPECIFIED), size(historicalv1.CandleEncoding_CANDLE_ENCODING_COMPACT)
	t.Logf("a day of 1m candles: readable %.1f, compact %.1f bytes per candle", readableB, compactB)
	if compactB > 40 {
		t.Errorf("compact: %.1f bytes per candle, want <= 40", compactB)
	}
}

// TestStreamHistoricalDataErrors: bad requests are INVALID_ARGUMENT naming
// the field; an empty range is an empty stream.
func TestStreamHistoricalDataErrors(t *testing.T) {
	r, _ := coordtest.Start(t, coordtest.Config{})
	c, _, _ := startService(t, r.Addr(), history.Options{NoSync: true})
	ctx := context.Background()
	day := time.Date(2025, 11, 27, 0, 0, 0, 0, time.UTC)
	req := func() *historicalv1.StreamHistoricalDataRequest {
		return &historicalv1.StreamHistoricalDataRequest{Symbol: "BTCUSDT", Interval: historicalv1.Interval_INTERVAL_1M,
			Start: timestamppb.New(day), End: timestamppb.New(day.Add(time.Hour))}
	}
	recvAll := func(rq *historicalv1.StreamHistoricalDataRequest) (int, error) {
		s, err := c.StreamHistoricalData(ctx, rq)
		if err != nil {
			return 0, err
		}
		n := 0
		for {
			msg, err := s.Recv()
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			if err != nil {
				return n, err
			}
			n += len(msg.GetCandles()) + int(msg.GetCompact().GetCount())
		}
	}
	for field, mutate := range map[string]func(*historicalv1.StreamHistoricalDataRequest){
		"encoding":   func(r *historicalv1.StreamHistoricalDataRequest) { r.Encoding = 7 },
		"chunk_size": func(r *historicalv1.StreamHistoricalDataRequest) { r.ChunkSize = historicalv1.MaxPageSize + 1 },
		"symbol":     func(r *historicalv1.StreamHistoricalDataRequest) { r.Symbol = "BTC/USDT" },
		"start":      func(r *historicalv1.StreamHistoricalDataRequest) { r.Start = r.End },
		"end":        func(r *historicalv1.StreamHistoricalDataRequest) { r.End = nil },
	} {
		rq := req()
		mutate(rq)
		_, err := recvAll(rq)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), field) {
			t.Errorf("%s: %v, want INVALID_ARGUMENT naming it", field, err)
		}
	}
	_, err := c.GetHistoricalData(ctx, &historicalv1.GetHistoricalDataRequest{Symbol: "BTCUSDT", Interval: historicalv1.Interval_INTERVAL_1M,
		Start: timestamppb.New(day), End: timestamppb.New(day.Add(time.Hour)), Encoding: -1})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "encoding") {
		t.Errorf("GetHistoricalData with encoding -1: %v, want INVALID_ARGUMENT naming encoding", err)
	}
	if n, err := recvAll(req()); err != nil || n != 0 {
		t.Errorf("a range with no candles: %d candles, %v; want an empty stream", n, err)
	}
}

// FuzzCompactMatchesReadable: for any run of candles (any values, any gaps,
// any interval), the compact form the server sends decodes to exactly the
// values of the readable form it sends for the same candles.
func FuzzCompactMatchesReadable(f *testing.F) {
	f.Add(uint8(0), []byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18"))
	f.Add(uint8(4), bytes.Repeat([]byte{0xff, 0x7f, 0x80, 0x01}, 40))
	ivs := []candles.Interval{candles.Interval1m, candles.Interval5m, candles.Interval15m, candles.Interval1h, candles.Interval1d}
	f.Fuzz(func(t *testing.T, ivb uint8, data []byte) {
		iv := ivs[int(ivb)%len(ivs)]
		next := func(digits byte) candles.Fixed {
			if len(data) < 8 {
				return 0
			}
			v := int64(binary.LittleEndian.Uint64(data))
			data = data[8:]
			if p := int64(math.Pow10(int(digits % 9))); p > 1 { // fewer digits, so every scale is seen
				v -= v % p
			}
			return candles.Fixed(v)
		}
		at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		var cs []candles.Candle
		for len(data) >= 2 && len(cs) < 300 {
			gap, digits := time.Duration(data[0]%3), data[1]
			data = data[2:]
			if len(cs) > 0 {
				at = at.Add((1 + gap) * iv.Duration())
			}
			cs = append(cs, candles.Candle{Symbol: "BTCUSDT", Interval: iv, OpenTime: at, Open: next(digits), High: next(digits),
				Low: next(digits), Close: next(digits), Volume: next(digits + 3), QuoteVolume: next(digits + 5), Trades: int64(next(0))})
		}
		var want []candlewire.Bar
		for i := range cs {
			want = append(want, readableBar(t, server.CandlePB(&cs[i])))
		}
		compact, err := server.CompactPB("BTCUSDT", server.IntervalPB(iv), cs)
		if err != nil {
			t.Fatal(err)
		}
		wire, err := proto.Marshal(compact)
		if err != nil {
			t.Fatal(err)
		}
		var got historicalv1.CompactCandles
		if err := proto.Unmarshal(wire, &got); err != nil {
			t.Fatal(err)
		}
		dec, err := candlewire.Decode(&got)
		if err != nil {
			t.Fatal(err)
		}
		equalBars(t, "fuzzed run", dec.Bars, want)
	})
}
