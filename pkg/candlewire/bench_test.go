package candlewire

import (
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/fixed"
	historicalv1 "github.com/tradsys/mesh/proto/tradsys/historical/v1"
	"google.golang.org/protobuf/proto"
)

// dayOfBars is a day of 1m candles shaped like BTCUSDT's (prices to the
// cent around 90,000, volumes to 5 digits, quote volumes to 8).
func dayOfBars() []Bar {
	bars := make([]Bar, 1440)
	p := int64(9_000_000) // cents
	for i := range bars {
		o := p
		c := o + int64((i*7919)%4001-2000)
		h, l := max(o, c)+int64(i%700), min(o, c)-int64(i%500)
		p = c
		cents := func(v int64) fixed.Decimal { d, _ := fixed.FromScaled(v, 2); return d }
		vol, _ := fixed.FromScaled(int64(1_000_000+i*3331%5_000_000), 5)
		bars[i] = Bar{OpenTimeMs: t0.Add(time.Duration(i) * time.Minute).UnixMilli(), Open: cents(o), High: cents(h), Low: cents(l), Close: cents(c),
			Volume: vol, QuoteVolume: fixed.Decimal(123_456_789_012_345 + int64(i)*7777), Trades: int64(500 + i%3000)}
	}
	return bars
}

// BenchmarkDay1m: what the compact form costs a day of 1m candles without
// the network: encode + marshal (server), unmarshal + decode (client).
func BenchmarkDay1m(b *testing.B) {
	bars := dayOfBars()
	b.Run("encode+marshal", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			c, err := Encode("BTCUSDT", historicalv1.Interval_INTERVAL_1M, len(bars), func(i int) Bar { return bars[i] })
			if err != nil {
				b.Fatal(err)
			}
			if _, err := proto.Marshal(c); err != nil {
				b.Fatal(err)
			}
		}
	})
	c, _ := Encode("BTCUSDT", historicalv1.Interval_INTERVAL_1M, len(bars), func(i int) Bar { return bars[i] })
	wire, _ := proto.Marshal(c)
	b.Run("unmarshal+decode", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			var m historicalv1.CompactCandles
			if err := proto.Unmarshal(wire, &m); err != nil {
				b.Fatal(err)
			}
			if _, err := Decode(&m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(len(wire))/float64(len(bars)), "B/candle")
}
