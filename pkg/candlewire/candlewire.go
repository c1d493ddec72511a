// Package candlewire is the compact wire form of tradsys.historical.v1
// candles (CompactCandles, CANDLE_ENCODING_COMPACT): Encode builds it (the
// historical server), Decode and AppendBars read it back into exact values
// (Go clients: the gateway, strategies, tests), and Fetch streams a range in
// it. The layout is documented on CompactCandles in historical.proto.
//
// Conversions are exact both ways: values are fixed.Decimal, scaled with
// fixed.Decimal.Scaled and fixed.FromScaled, never through floats or
// strings.
package candlewire

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/tradsys/mesh/pkg/fixed"
	historicalv1 "github.com/tradsys/mesh/proto/tradsys/historical/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Bar is one candle's values; the symbol and interval belong to the run.
type Bar struct {
	OpenTimeMs  int64 // Unix milliseconds (candles open on whole minutes)
	Open        fixed.Decimal
	High        fixed.Decimal
	Low         fixed.Decimal
	Close       fixed.Decimal
	Volume      fixed.Decimal // base asset quantity
	QuoteVolume fixed.Decimal // sum of price*qty
	Trades      int64
}

// OpenTime is OpenTimeMs as a UTC time.
func (b Bar) OpenTime() time.Time { return time.UnixMilli(b.OpenTimeMs).UTC() }

// Candles is a decoded run of one symbol and interval, oldest first.
type Candles struct {
	Symbol   string
	Interval historicalv1.Interval
	Bars     []Bar
}

var (
	// ErrNotEncodable is returned by Encode for a run the compact form
	// cannot hold: an unknown interval, or open times that do not rise by
	// whole intervals.
	ErrNotEncodable = errors.New("candles not encodable in the compact form")
	// ErrMalformed is matched by every Decode error.
	ErrMalformed = errors.New("malformed compact candles")
)

// Open times are bounded like the API's (validate.go): [1970, 2200).
var (
	maxOpenTime   = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	maxOpenTimeMs = maxOpenTime.UnixMilli()
)

func formatMs(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }

// Encode builds the compact form of n candles of symbol at interval iv;
// bar(i) is candle i (oldest first). bar is called twice per candle: once
// to choose the scales, once to write the columns.
func Encode(symbol string, iv historicalv1.Interval, n int, bar func(i int) Bar) (*historicalv1.CompactCandles, error) {
	out := &historicalv1.CompactCandles{Symbol: symbol, Interval: iv}
	step := iv.Duration().Milliseconds()
	if step <= 0 {
		return nil, fmt.Errorf("%w: unknown interval %v", ErrNotEncodable, iv)
	}
	if n == 0 {
		return out, nil
	}
	// Pass 1: the fewest digits each column group needs, and whether the
	// open times are consecutive.
	var priceDigits, volDigits, quoteDigits int
	consecutive := true
	var first, prev int64
	for i := 0; i < n; i++ {
		b := bar(i)
		priceDigits = digitsFor(digitsFor(digitsFor(digitsFor(priceDigits, b.Open), b.High), b.Low), b.Close)
		volDigits = digitsFor(volDigits, b.Volume)
		quoteDigits = digitsFor(quoteDigits, b.QuoteVolume)
		if i == 0 {
			first = b.OpenTimeMs
		} else {
			d := b.OpenTimeMs - prev
			if d <= 0 || d%step != 0 {
				return nil, fmt.Errorf("%w: candle %d opens at %s, not a whole number of %s after %s",
					ErrNotEncodable, i, formatMs(b.OpenTimeMs), iv.Duration(), formatMs(prev))
			}
			consecutive = consecutive && d == step
		}
		prev = b.OpenTimeMs
	}
	if first < 0 || prev >= maxOpenTimeMs {
		return nil, fmt.Errorf("%w: open times %s..%s outside [1970, 2200)", ErrNotEncodable, formatMs(first), formatMs(prev))
	}
	out.FirstOpenTime = timestamppb.New(time.UnixMilli(first))
	out.Count = uint32(n)
	out.PriceScale, out.VolumeScale, out.QuoteVolumeScale = uint32(priceDigits), uint32(volDigits), uint32(quoteDigits)
	// Pass 2: the columns, each in its own region of one buffer sized for
	// typical values (a column that outgrows its region is reallocated by
	// append, never overwrites its neighbour). Scaled cannot fail at the
	// digits of pass 1; deltas wrap (two's complement), which decoders undo
	// exactly.
	buf := make([]byte, n*(regionOpen+3*regionPrice+regionVolume+regionQuote+regionTrades))
	region := func(size int) []byte {
		r := buf[0 : 0 : n*size]
		buf = buf[n*size:]
		return r
	}
	open, high, low, closes := region(regionOpen), region(regionPrice), region(regionPrice), region(regionPrice)
	vol, quote, trades := region(regionVolume), region(regionQuote), region(regionTrades)
	var steps []byte
	if !consecutive {
		steps = make([]byte, 0, n)
	}
	var prevClose int64
	for i := 0; i < n; i++ {
		b := bar(i)
		o, _ := b.Open.Scaled(priceDigits)
		h, _ := b.High.Scaled(priceDigits)
		l, _ := b.Low.Scaled(priceDigits)
		c, _ := b.Close.Scaled(priceDigits)
		v, _ := b.Volume.Scaled(volDigits)
		q, _ := b.QuoteVolume.Scaled(quoteDigits)
		open = appendSigned(open, o-prevClose)
		closes = appendSigned(closes, c-o)
		high = appendSigned(high, h-max(o, c))
		low = appendSigned(low, min(o, c)-l)
		vol, quote, trades = appendSigned(vol, v), appendSigned(quote, q), appendSigned(trades, b.Trades)
		if !consecutive {
			var k uint64
			if i > 0 {
				k = uint64((b.OpenTimeMs - prev) / step)
			}
			steps = protowire.AppendVarint(steps, k)
		}
		prev, prevClose = b.OpenTimeMs, c
	}
	out.Open, out.High, out.Low, out.Close = open, high, low, closes
	out.Volume, out.QuoteVolume, out.Trades, out.OpenTimeSteps = vol, quote, trades, steps
	return out, nil
}

// Bytes per candle reserved for each column: enough for a liquid pair's
// typical values, so a day of 1m candles is one allocation.
const (
	regionOpen   = 2
	regionPrice  = 3
	regionVolume = 4
	regionQuote  = 8
	regionTrades = 3
)

func appendSigned(b []byte, v int64) []byte {
	return protowire.AppendVarint(b, protowire.EncodeZigZag(v))
}

// digitsFor is the fewest digits (at least have) that hold d exactly: one
// division when have already does, which is the common case.
func digitsFor(have int, d fixed.Decimal) int {
	for have < fixed.ScaleDigits {
		if _, exact := d.Scaled(have); exact {
			break
		}
		have++
	}
	return have
}

// Decode reads a compact run back into exact values.
func Decode(c *historicalv1.CompactCandles) (Candles, error) {
	bars, err := AppendBars(nil, c)
	return Candles{Symbol: c.GetSymbol(), Interval: c.GetInterval(), Bars: bars}, err
}

func malformed(field, format string, args ...any) error {
	return fmt.Errorf("%w: field %s: %s", ErrMalformed, field, fmt.Sprintf(format, args...))
}

// column reads one column's varints; the first error sticks, so a candle's
// seven reads are checked once.
type column struct {
	name string
	b    []byte
	err  error
}

// next is inlined for the one- and two-byte values most columns hold.
func (c *column) next(i int) uint64 {
	b := c.b
	if len(b) > 0 && b[0] < 0x80 {
		c.b = b[1:]
		return uint64(b[0])
	}
	if len(b) > 1 && b[1] < 0x80 {
		c.b = b[2:]
		return uint64(b[0]&0x7f) | uint64(b[1])<<7
	}
	return c.nextLong(i)
}

func (c *column) nextLong(i int) uint64 {
	v, n := protowire.ConsumeVarint(c.b)
	if n < 0 {
		if c.err == nil {
			if len(c.b) == 0 {
				c.err = malformed(c.name, "ends at candle %d", i)
			} else {
				c.err = malformed(c.name, "candle %d: %v", i, protowire.ParseError(n))
			}
		}
		return 0
	}
	c.b = c.b[n:]
	return v
}

func (c *column) signed(i int) int64 { return protowire.DecodeZigZag(c.next(i)) }

// AppendBars decodes c's candles and appends them to dst. On error dst is
// returned as it was.
func AppendBars(dst []Bar, c *historicalv1.CompactCandles) ([]Bar, error) {
	n := int(c.GetCount())
	if n == 0 {
		for _, col := range [...]column{{name: "open", b: c.GetOpen()}, {name: "high", b: c.GetHigh()}, {name: "low", b: c.GetLow()}, {name: "close", b: c.GetClose()},
			{name: "volume", b: c.GetVolume()}, {name: "quote_volume", b: c.GetQuoteVolume()}, {name: "trades", b: c.GetTrades()}, {name: "open_time_steps", b: c.GetOpenTimeSteps()}} {
			if len(col.b) != 0 {
				return dst, malformed(col.name, "%d bytes for count 0", len(col.b))
			}
		}
		return dst, nil
	}
	// Every value takes at least one byte: a column shorter than count is
	// malformed before anything is allocated for it.
	if len(c.GetOpen()) < n {
		return dst, malformed("open", "%d bytes for %d candles", len(c.GetOpen()), n)
	}
	step := c.GetInterval().Duration().Milliseconds()
	if step <= 0 {
		return dst, malformed("interval", "unknown interval %v", c.GetInterval())
	}
	for _, sc := range []struct {
		name  string
		scale uint32
	}{{"price_scale", c.GetPriceScale()}, {"volume_scale", c.GetVolumeScale()}, {"quote_volume_scale", c.GetQuoteVolumeScale()}} {
		if sc.scale > fixed.ScaleDigits {
			return dst, malformed(sc.name, "%d is more than %d digits", sc.scale, fixed.ScaleDigits)
		}
	}
	ts := c.GetFirstOpenTime()
	if err := ts.CheckValid(); err != nil {
		return dst, malformed("first_open_time", "%v", err)
	}
	if t := ts.AsTime(); t.Before(time.Unix(0, 0)) || !t.Before(maxOpenTime) {
		return dst, malformed("first_open_time", "%s is outside [1970, 2200)", t.Format(time.RFC3339))
	}
	if ts.GetNanos()%int32(time.Millisecond) != 0 {
		return dst, malformed("first_open_time", "%s is not a whole millisecond", ts.AsTime().Format(time.RFC3339Nano))
	}
	first := ts.AsTime().UnixMilli()
	// The most intervals any candle may open after the first.
	maxSteps := uint64((maxOpenTimeMs - 1 - first) / step)
	ps, vs, qs := int(c.GetPriceScale()), int(c.GetVolumeScale()), int(c.GetQuoteVolumeScale())
	opens, highs, lows, closes := column{name: "open", b: c.GetOpen()}, column{name: "high", b: c.GetHigh()}, column{name: "low", b: c.GetLow()}, column{name: "close", b: c.GetClose()}
	vols, quotes, trades := column{name: "volume", b: c.GetVolume()}, column{name: "quote_volume", b: c.GetQuoteVolume()}, column{name: "trades", b: c.GetTrades()}
	steps0 := column{name: "open_time_steps", b: c.GetOpenTimeSteps()}
	consecutive := len(steps0.b) == 0
	base := len(dst)
	dst = append(dst, make([]Bar, n)...)
	out := dst[base:]
	fail := func(err error) ([]Bar, error) { return dst[:base], err }
	var prevClose int64
	var steps uint64
	for i := 0; i < n; i++ {
		if consecutive {
			steps = uint64(i)
		} else {
			k := steps0.next(i)
			switch {
			case steps0.err != nil:
				return fail(steps0.err)
			case i == 0 && k != 0:
				return fail(malformed("open_time_steps", "the first candle's step is %d, want 0", k))
			case i > 0 && k == 0:
				return fail(malformed("open_time_steps", "candle %d does not open after the one before", i))
			case k > maxSteps-steps:
				return fail(malformed("open_time_steps", "candle %d opens after 2200", i))
			}
			steps += k
		}
		if steps > maxSteps {
			return fail(malformed("interval", "candle %d opens after 2200", i))
		}
		dOpen, dClose, dHigh, dLow := opens.signed(i), closes.signed(i), highs.signed(i), lows.signed(i)
		vol, quote, trade := vols.signed(i), quotes.signed(i), trades.signed(i)
		if opens.err != nil || closes.err != nil || highs.err != nil || lows.err != nil || vols.err != nil || quotes.err != nil || trades.err != nil {
			return fail(cmp.Or(opens.err, closes.err, highs.err, lows.err, vols.err, quotes.err, trades.err))
		}
		o := dOpen + prevClose // wrapping, as encoded
		cl := dClose + o
		h := dHigh + max(o, cl)
		l := min(o, cl) - dLow
		prevClose = cl
		b := &out[i]
		b.OpenTimeMs = first + int64(steps)*step
		b.Trades = trade
		var ok [6]bool
		b.Open, ok[0] = fixed.FromScaled(o, ps)
		b.High, ok[1] = fixed.FromScaled(h, ps)
		b.Low, ok[2] = fixed.FromScaled(l, ps)
		b.Close, ok[3] = fixed.FromScaled(cl, ps)
		b.Volume, ok[4] = fixed.FromScaled(vol, vs)
		b.QuoteVolume, ok[5] = fixed.FromScaled(quote, qs)
		if ok != [6]bool{true, true, true, true, true, true} {
			return fail(outOfRange(i, ok, [6]int64{o, h, l, cl, vol, quote}, [6]int{ps, ps, ps, ps, vs, qs}))
		}
	}
	for _, col := range [...]*column{&opens, &highs, &lows, &closes, &vols, &quotes, &trades, &steps0} {
		if len(col.b) != 0 {
			return fail(malformed(col.name, "%d bytes left after %d candles", len(col.b), n))
		}
	}
	return dst, nil
}

// outOfRange names the first value of candle i that FromScaled refused.
func outOfRange(i int, ok [6]bool, v [6]int64, scale [6]int) error {
	fields := [6]string{"open", "high", "low", "close", "volume", "quote_volume"}
	k := 0
	for ok[k] {
		k++
	}
	return malformed(fields[k], "candle %d: %d at %d digits is outside the decimal range", i, v[k], scale[k])
}
