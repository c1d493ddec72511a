package candles

import (
	"errors"
	"fmt"
	"time"
)

// ErrOverflow is returned (wrapped) when a volume sum does not fit in a Fixed.
var ErrOverflow = errors.New("fixed-point overflow")

// RollUp builds candles of interval `to` from src, which must be candles of
// one symbol and one interval whose width divides `to` (typically 1m),
// sorted by strictly increasing OpenTime. For each target bucket:
// open = first source open, high = max, low = min, close = last source
// close, volume/quote volume/trades = sums.
//
// Gaps: a target bucket with no source candle produces no candle; a target
// bucket with some minutes missing is built from the minutes present. The
// result is sorted by OpenTime. src is not modified.
func RollUp(src []Candle, to Interval) ([]Candle, error) {
	if !to.Valid() {
		return nil, fmt.Errorf("roll-up: target %w", &IntervalError{Value: to.String()})
	}
	if len(src) == 0 {
		return nil, nil
	}
	from := src[0].Interval
	if !from.Valid() {
		return nil, fmt.Errorf("roll-up: source candle 0 has invalid interval %v", from)
	}
	if to.nanos()%from.nanos() != 0 {
		return nil, fmt.Errorf("roll-up: cannot build %s candles from %s candles", to, from)
	}
	sym := src[0].Symbol
	width := to.nanos()
	out := make([]Candle, 0, len(src)*int(from.nanos())/int(width)+1)
	var cur Candle
	var curStart int64
	have := false
	var prev int64
	for i := range src {
		c := &src[i]
		if c.Symbol != sym {
			return nil, fmt.Errorf("roll-up: source candle %d has symbol %q, want %q", i, c.Symbol, sym)
		}
		if c.Interval != from {
			return nil, fmt.Errorf("roll-up: source candle %d has interval %s, want %s", i, c.Interval, from)
		}
		ns := c.OpenTime.UnixNano()
		if alignNanos(ns, from.nanos()) != ns {
			return nil, fmt.Errorf("roll-up: source candle %d open time %v not aligned to %s", i, c.OpenTime.UTC(), from)
		}
		if i > 0 && ns <= prev {
			return nil, fmt.Errorf("roll-up: source candle %d open time %v not after candle %d (%v)",
				i, c.OpenTime.UTC(), i-1, time.Unix(0, prev).UTC())
		}
		prev = ns
		start := alignNanos(ns, width)
		if !have || start != curStart {
			if have {
				out = append(out, cur)
			}
			cur = Candle{
				Symbol: sym, Interval: to, OpenTime: time.Unix(0, start).UTC(),
				Open: c.Open, High: c.High, Low: c.Low, Close: c.Close,
				Volume: c.Volume, QuoteVolume: c.QuoteVolume, Trades: c.Trades,
			}
			curStart, have = start, true
			continue
		}
		if c.High > cur.High {
			cur.High = c.High
		}
		if c.Low < cur.Low {
			cur.Low = c.Low
		}
		cur.Close = c.Close
		var ok1, ok2 bool
		cur.Volume, ok1 = AddFixed(cur.Volume, c.Volume)
		cur.QuoteVolume, ok2 = AddFixed(cur.QuoteVolume, c.QuoteVolume)
		if !ok1 || !ok2 || cur.Trades+c.Trades < cur.Trades {
			return nil, fmt.Errorf("roll-up: %w summing %s bucket %v at source candle %d",
				ErrOverflow, to, cur.OpenTime, i)
		}
		cur.Trades += c.Trades
	}
	out = append(out, cur)
	return out, nil
}

// acc accumulates one candle bucket in the Aggregator. Open and close are
// chosen by (time, trade id) order, not by arrival order.
type acc struct {
	start           int64 // bucket open, Unix ns
	firstT, lastT   int64 // event time of the open / close trade
	firstID, lastID int64
	open, high      Fixed
	low, close      Fixed
	vol, qvol       Fixed
	trades          int64
}

// addTrade applies one trade. The caller has checked vol/qvol overflow.
func (a *acc) addTrade(t, id int64, p, q, qv Fixed) {
	if a.trades == 0 {
		a.firstT, a.lastT, a.firstID, a.lastID = t, t, id, id
		a.open, a.high, a.low, a.close = p, p, p, p
		a.vol, a.qvol, a.trades = q, qv, 1
		return
	}
	if t < a.firstT || (t == a.firstT && id < a.firstID) {
		a.firstT, a.firstID, a.open = t, id, p
	}
	if t > a.lastT || (t == a.lastT && id > a.lastID) {
		a.lastT, a.lastID, a.close = t, id, p
	}
	if p > a.high {
		a.high = p
	}
	if p < a.low {
		a.low = p
	}
	a.vol += q
	a.qvol += qv
	a.trades++
}

// foldLater merges b, whose trades are all later than a's (a finalized,
// later sub-bucket), into a. Volume sums saturate at MaxFixed; it reports
// whether that happened.
func (a *acc) foldLater(b *acc) (overflow bool) {
	if a.trades == 0 {
		s := a.start
		*a = *b
		a.start = s
		return false
	}
	a.lastT, a.lastID, a.close = b.lastT, b.lastID, b.close
	if b.high > a.high {
		a.high = b.high
	}
	if b.low < a.low {
		a.low = b.low
	}
	var ok1, ok2 bool
	if a.vol, ok1 = AddFixed(a.vol, b.vol); !ok1 {
		a.vol = MaxFixed
	}
	if a.qvol, ok2 = AddFixed(a.qvol, b.qvol); !ok2 {
		a.qvol = MaxFixed
	}
	a.trades += b.trades
	return !ok1 || !ok2
}

func (a *acc) candle(sym string, iv Interval) Candle {
	return Candle{
		Symbol: sym, Interval: iv, OpenTime: time.Unix(0, a.start).UTC(),
		Open: a.open, High: a.high, Low: a.low, Close: a.close,
		Volume: a.vol, QuoteVolume: a.qvol, Trades: a.trades,
	}
}
