package feeds

import "testing"

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkParseBinanceTrade: combined-stream trade messages, the hot path.
func BenchmarkParseBinanceTrade(b *testing.B) {
	msg := []byte(tradeMsg)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseBinanceMessage(msg); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

// BenchmarkParseBinanceTradeJSONPath: the same message through the general
// encoding/json path (what any non-plain trade message takes).
func BenchmarkParseBinanceTradeJSONPath(b *testing.B) {
	msg := []byte(tradeMsg)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseBinanceMessageJSON(msg); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

func BenchmarkParseBinanceDepth(b *testing.B) {
	msg := []byte(depthMsg)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseBinanceMessage(msg); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

func BenchmarkParseKlineCSVLine(b *testing.B) {
	line := []byte("1763942400000000,86830.00000000,86830.00000000,86753.82000000,86780.01000000,15.23832000,1763942459999999,1322414.29340390,4447,5.05353000,438500.13902330,0\n")
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseKlineCSVLine(line); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

func BenchmarkParseDecimal(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseDecimal("86780.01000000"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStreamPublish: Stream.Publish into a ring (no subscribers).
func BenchmarkStreamPublish(b *testing.B) {
	s := NewStream(StreamConfig{RingSize: 1 << 16})
	ev := Trade{Symbol: "BTCUSDT", Price: 1, Qty: 1}
	b.ReportAllocs()
	for b.Loop() {
		s.Publish(ev)
	}
	reportRate(b)
}

var sinkStr string

func BenchmarkDecimalString(b *testing.B) {
	d := MustDecimal("86780.01")
	b.ReportAllocs()
	for b.Loop() {
		sinkStr = d.String()
	}
}
