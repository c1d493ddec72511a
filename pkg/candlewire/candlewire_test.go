package candlewire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/fixed"
	historicalv1 "github.com/tradsys/mesh/proto/tradsys/historical/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var t0 = time.Date(2025, 11, 27, 0, 0, 0, 0, time.UTC)

func bar(min int, o, h, l, c, v, q string, trades int64) Bar {
	return Bar{OpenTimeMs: t0.Add(time.Duration(min) * time.Minute).UnixMilli(), Open: fixed.Must(o), High: fixed.Must(h), Low: fixed.Must(l),
		Close: fixed.Must(c), Volume: fixed.Must(v), QuoteVolume: fixed.Must(q), Trades: trades}
}

// roundTrip encodes bars, sends them through the protobuf wire format, and
// decodes them; it fails unless every value comes back exactly.
func roundTrip(t testing.TB, iv historicalv1.Interval, bars []Bar) *historicalv1.CompactCandles {
	t.Helper()
	enc, err := Encode("BTCUSDT", iv, len(bars), func(i int) Bar { return bars[i] })
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	wire, err := proto.Marshal(enc)
	if err != nil {
		t.Fatal(err)
	}
	var got historicalv1.CompactCandles
	if err := proto.Unmarshal(wire, &got); err != nil {
		t.Fatal(err)
	}
	dec, err := Decode(&got)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if dec.Symbol != "BTCUSDT" || dec.Interval != iv || len(dec.Bars) != len(bars) {
		t.Fatalf("decoded %s %v with %d bars, want BTCUSDT %v with %d", dec.Symbol, dec.Interval, len(dec.Bars), iv, len(bars))
	}
	for i := range bars {
		if !sameBar(dec.Bars[i], bars[i]) {
			t.Fatalf("bar %d: decoded %+v, want %+v", i, dec.Bars[i], bars[i])
		}
	}
	return enc
}

// col is a column of values, zigzag (signed) or plain varints.
func col(signed bool, vs ...int64) []byte {
	var b []byte
	for _, v := range vs {
		u := uint64(v)
		if signed {
			u = protowire.EncodeZigZag(v)
		}
		b = protowire.AppendVarint(b, u)
	}
	return b
}

// values reads a column back.
func values(t testing.TB, b []byte, signed bool) []int64 {
	t.Helper()
	var out []int64
	for len(b) > 0 {
		u, n := protowire.ConsumeVarint(b)
		if n < 0 {
			t.Fatalf("bad varint in column: %v", protowire.ParseError(n))
		}
		v := int64(u)
		if signed {
			v = protowire.DecodeZigZag(u)
		}
		out, b = append(out, v), b[n:]
	}
	return out
}

func sameBar(a, b Bar) bool {
	return a.OpenTimeMs == b.OpenTimeMs && a.Open == b.Open && a.High == b.High && a.Low == b.Low && a.Close == b.Close &&
		a.Volume == b.Volume && a.QuoteVolume == b.QuoteVolume && a.Trades == b.Trades
}

func TestRoundTrip(t *testing.T) {
	consecutive := []Bar{
		bar(0, "90000.01", "90010.5", "89990", "90005.25", "12.34567", "1111111.12345678", 1500),
		bar(1, "90005.25", "90005.25", "90000", "90001", "0", "0", 0),
		bar(2, "90001.1", "90100", "90001.1", "90100", "3.1", "279300.5", 77),
	}
	enc := roundTrip(t, historicalv1.Interval_INTERVAL_1M, consecutive)
	if enc.GetPriceScale() != 2 || enc.GetVolumeScale() != 5 || enc.GetQuoteVolumeScale() != 8 {
		t.Errorf("scales %d/%d/%d, want 2/5/8 (the fewest exact digits)", enc.GetPriceScale(), enc.GetVolumeScale(), enc.GetQuoteVolumeScale())
	}
	if len(enc.GetOpenTimeSteps()) != 0 {
		t.Errorf("consecutive candles carry %d bytes of open time steps, want none", len(enc.GetOpenTimeSteps()))
	}
	if got := values(t, enc.GetOpen(), true); len(got) != 3 || got[1] != 0 {
		t.Errorf("open column %v: an open equal to the previous close should be delta 0", got)
	}

	gaps := []Bar{consecutive[0], consecutive[1], consecutive[2]}
	gaps[1].OpenTimeMs = t0.Add(7 * time.Minute).UnixMilli()
	gaps[2].OpenTimeMs = t0.Add(8 * time.Minute).UnixMilli()
	enc = roundTrip(t, historicalv1.Interval_INTERVAL_1M, gaps)
	if got := values(t, enc.GetOpenTimeSteps(), false); len(got) != 3 || got[0] != 0 || got[1] != 7 || got[2] != 1 {
		t.Errorf("open_time_steps %v, want [0 7 1]", got)
	}

	// The extremes: deltas wrap around int64 and still come back exactly;
	// negative values (not valid candles, but never lost) too.
	extreme := []Bar{
		{OpenTimeMs: t0.UnixMilli(), Open: fixed.Max, High: fixed.Max, Low: fixed.Min, Close: fixed.Min, Volume: fixed.Min, QuoteVolume: fixed.Max, Trades: math.MinInt64},
		{OpenTimeMs: t0.Add(24 * time.Hour).UnixMilli(), Open: fixed.Min, High: fixed.Max, Low: fixed.Min, Close: fixed.Max, Volume: -1, QuoteVolume: 0, Trades: math.MaxInt64},
		{OpenTimeMs: t0.Add(48 * time.Hour).UnixMilli(), Open: 1, High: 1, Low: -1, Close: -1, Volume: fixed.Max, QuoteVolume: fixed.Min, Trades: -1},
	}
	roundTrip(t, historicalv1.Interval_INTERVAL_1D, extreme)
	roundTrip(t, historicalv1.Interval_INTERVAL_1H, nil)
	roundTrip(t, historicalv1.Interval_INTERVAL_5M, consecutive[:1])
}

func TestEncodeRefuses(t *testing.T) {
	ok := bar(0, "1", "1", "1", "1", "1", "1", 1)
	for name, tc := range map[string]struct {
		iv   historicalv1.Interval
		bars []Bar
		want string
	}{
		"unknown interval":  {historicalv1.Interval(99), []Bar{ok}, "unknown interval"},
		"unaligned":         {historicalv1.Interval_INTERVAL_5M, []Bar{ok, bar(7, "1", "1", "1", "1", "1", "1", 1)}, "whole number of 5m0s"},
		"out of order":      {historicalv1.Interval_INTERVAL_1M, []Bar{bar(5, "1", "1", "1", "1", "1", "1", 1), ok}, "not a whole number"},
		"same open time":    {historicalv1.Interval_INTERVAL_1M, []Bar{ok, ok}, "not a whole number"},
		"before 1970":       {historicalv1.Interval_INTERVAL_1M, []Bar{{OpenTimeMs: -60_000}}, "outside [1970, 2200)"},
		"in 2200 and after": {historicalv1.Interval_INTERVAL_1D, []Bar{{OpenTimeMs: maxOpenTimeMs}}, "outside [1970, 2200)"},
	} {
		_, err := Encode("X", tc.iv, len(tc.bars), func(i int) Bar { return tc.bars[i] })
		if !errors.Is(err, ErrNotEncodable) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrNotEncodable containing %q", name, err, tc.want)
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	good := func() *historicalv1.CompactCandles {
		c, err := Encode("X", historicalv1.Interval_INTERVAL_1M, 2, func(i int) Bar { return bar(i, "1.5", "2", "1", "1.5", "3", "4.5", 2) })
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for name, tc := range map[string]struct {
		mutate func(c *historicalv1.CompactCandles)
		field  string
	}{
		"short column":     {func(c *historicalv1.CompactCandles) { c.Trades = c.Trades[:1] }, "trades"},
		"trailing bytes":   {func(c *historicalv1.CompactCandles) { c.High = append(c.High, 0) }, "high"},
		"bad varint":       {func(c *historicalv1.CompactCandles) { c.Volume = bytes.Repeat([]byte{0xff}, 11) }, "volume"},
		"bytes for none":   {func(c *historicalv1.CompactCandles) { c.Count = 0 }, "open"},
		"count too large":  {func(c *historicalv1.CompactCandles) { c.Count = 1 << 31 }, "open"},
		"steps length":     {func(c *historicalv1.CompactCandles) { c.OpenTimeSteps = col(false, 0) }, "open_time_steps"},
		"first step":       {func(c *historicalv1.CompactCandles) { c.OpenTimeSteps = col(false, 3, 1) }, "open_time_steps"},
		"zero step":        {func(c *historicalv1.CompactCandles) { c.OpenTimeSteps = col(false, 0, 0) }, "open_time_steps"},
		"step beyond 2200": {func(c *historicalv1.CompactCandles) { c.OpenTimeSteps = col(false, 0, -1) }, "open_time_steps"},
		"interval":         {func(c *historicalv1.CompactCandles) { c.Interval = 0 }, "interval"},
		"scale":            {func(c *historicalv1.CompactCandles) { c.VolumeScale = 9 }, "volume_scale"},
		"sub-millisecond":  {func(c *historicalv1.CompactCandles) { c.FirstOpenTime.Nanos = 1 }, "first_open_time"},
		"no first time":    {func(c *historicalv1.CompactCandles) { c.FirstOpenTime = nil }, "first_open_time"},
		"first time range": {func(c *historicalv1.CompactCandles) { c.FirstOpenTime = timestamppb.New(maxOpenTime) }, "first_open_time"},
		"value overflow":   {func(c *historicalv1.CompactCandles) { c.QuoteVolume = col(true, 45, math.MaxInt64) }, "quote_volume"},
		"price overflow":   {func(c *historicalv1.CompactCandles) { c.Open = col(true, math.MaxInt64/2, 0) }, "open"},
		"consecutive 2200+": {func(c *historicalv1.CompactCandles) {
			c.Interval = historicalv1.Interval_INTERVAL_1D
			c.FirstOpenTime = timestamppb.New(maxOpenTime.Add(-time.Hour))
		}, "interval"},
	} {
		c := good()
		tc.mutate(c)
		dst := []Bar{{Trades: 42}}
		got, err := AppendBars(dst, c)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "field "+tc.field+":") {
			t.Errorf("%s: %v, want ErrMalformed naming field %s", name, err, tc.field)
		}
		if len(got) != 1 || got[0].Trades != 42 {
			t.Errorf("%s: dst changed on error: %d bars", name, len(got))
		}
	}
}

// FuzzRoundTrip: any run of bars the encoder accepts (any values, any gaps)
// decodes to exactly the same values after the protobuf wire.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(1), []byte("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19"))
	f.Add(uint8(5), make([]byte, 200))
	f.Fuzz(func(t *testing.T, ivb uint8, data []byte) {
		iv := historicalv1.Interval(ivb%5 + 1)
		var bars []Bar
		at := t0
		next := func(scaleDigits byte) int64 {
			if len(data) < 8 {
				return 0
			}
			v := int64(binary.LittleEndian.Uint64(data))
			data = data[8:]
			// Round some values to fewer digits so every scale is seen.
			if p := int64(math.Pow10(int(scaleDigits % 9))); p > 1 {
				v -= v % p
			}
			return v
		}
		for len(data) >= 2 && len(bars) < 500 {
			gap, digits := int(data[0]%4), data[1]
			data = data[2:]
			if len(bars) > 0 {
				at = at.Add(time.Duration(1+gap) * iv.Duration())
			}
			bars = append(bars, Bar{OpenTimeMs: at.UnixMilli(), Open: fixed.Decimal(next(digits)), High: fixed.Decimal(next(digits)),
				Low: fixed.Decimal(next(digits)), Close: fixed.Decimal(next(digits)), Volume: fixed.Decimal(next(digits + 3)),
				QuoteVolume: fixed.Decimal(next(digits + 5)), Trades: next(0)})
		}
		roundTrip(t, iv, bars)
	})
}

// FuzzDecode: any bytes that parse as CompactCandles decode to values or a
// field error, never a panic; what decodes re-encodes to the same values.
func FuzzDecode(f *testing.F) {
	c, _ := Encode("X", historicalv1.Interval_INTERVAL_1M, 3, func(i int) Bar { return bar(i*2, "1.5", "2", "1", "1.5", "3", "4.5", 2) })
	wire, _ := proto.Marshal(c)
	f.Add(wire)
	f.Fuzz(func(t *testing.T, data []byte) {
		var c historicalv1.CompactCandles
		if proto.Unmarshal(data, &c) != nil {
			return
		}
		dec, err := Decode(&c)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if dec.Interval.Duration() > 0 {
			roundTrip(t, dec.Interval, dec.Bars)
		}
	})
}
