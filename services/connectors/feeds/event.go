package feeds

import (
	"strings"
	"time"
)

// Side is the aggressor (taker) side of a trade.
type Side uint8

const (
	SideUnknown Side = iota
	SideBuy          // the taker bought (lifted the offer)
	SideSell         // the taker sold (hit the bid)
)

func (s Side) String() string {
	switch s {
	case SideBuy:
		return "buy"
	case SideSell:
		return "sell"
	default:
		return "unknown"
	}
}

// ParseSide accepts "buy"/"sell" (any case, also "b"/"s" and "bid"/"ask"
// style aliases "buyer"/"seller") and "" (unknown).
func ParseSide(s string) (Side, bool) {
	switch strings.ToLower(s) {
	case "":
		return SideUnknown, true
	case "buy", "b", "buyer":
		return SideBuy, true
	case "sell", "s", "seller":
		return SideSell, true
	}
	return SideUnknown, false
}

// Event is a market-data event: a Trade or a BookUpdate.
type Event interface {
	EventVenue() string
	EventSymbol() string
	EventTime() time.Time
	isEvent()
}

// Trade is one executed trade (or, for kline replay, one synthetic trade per
// candle; see Replay).
type Trade struct {
	Venue     string
	Symbol    string
	TradeID   int64
	Time      time.Time
	Price     Decimal
	Qty       Decimal
	TakerSide Side
}

// Level is one price level of an order book. Qty 0 means "remove the level"
// in an incremental BookUpdate.
type Level struct {
	Price Decimal
	Qty   Decimal
}

// BookUpdate is an order-book change for one symbol. Snapshot=true replaces
// the whole book (Bids and Asks are the top levels); otherwise the levels
// are absolute quantities to set (0 deletes).
//
// Seq is the venue's own book sequence (Binance: the final update id "u",
// or lastUpdateId for snapshots); FirstSeq is the first update id covered
// ("U"), equal to Seq when the venue does not provide one. Both are
// independent of the Stream sequence numbers.
type BookUpdate struct {
	Venue    string
	Symbol   string
	Seq      int64
	FirstSeq int64
	Time     time.Time
	Bids     []Level // best (highest) first
	Asks     []Level // best (lowest) first
	Snapshot bool
}

func (t Trade) EventVenue() string       { return t.Venue }
func (t Trade) EventSymbol() string      { return t.Symbol }
func (t Trade) EventTime() time.Time     { return t.Time }
func (Trade) isEvent()                   {}
func (b BookUpdate) EventVenue() string  { return b.Venue }
func (b BookUpdate) EventSymbol() string { return b.Symbol }
func (b BookUpdate) EventTime() time.Time {
	return b.Time
}
func (BookUpdate) isEvent() {}

// UnixAuto converts a Unix timestamp whose unit is unknown to a time.Time,
// deciding by magnitude: |v| >= 1e17 is nanoseconds, >= 1e14 microseconds,
// anything smaller milliseconds. (1e14 ms is the year 5138 and 1e14 µs is
// 1973, so real timestamps are unambiguous.) Binance spot files switched
// from milliseconds to microseconds in 2025, which is why this exists.
func UnixAuto(v int64) time.Time {
	a := v
	if a < 0 {
		a = -a
	}
	switch {
	case a >= 1e17:
		return time.Unix(0, v).UTC()
	case a >= 1e14:
		return time.UnixMicro(v).UTC()
	default:
		return time.UnixMilli(v).UTC()
	}
}

// normSymbol upper-cases a symbol (allocation-free when already upper case).
func normSymbol(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'a' && c <= 'z' {
			return strings.ToUpper(s)
		}
	}
	return s
}
