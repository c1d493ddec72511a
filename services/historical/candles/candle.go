package candles

import (
	"errors"
	"fmt"
	"time"
)

// Candle is one OHLCV bar. OpenTime is the UTC start of the bucket
// (inclusive); the bucket ends at OpenTime + Interval.Duration() (exclusive).
// Prices and volumes are exact fixed-point values.
type Candle struct {
	Symbol      string
	Interval    Interval
	OpenTime    time.Time
	Open        Fixed
	High        Fixed
	Low         Fixed
	Close       Fixed
	Volume      Fixed // base asset quantity
	QuoteVolume Fixed // sum of price*qty (each product truncated to 8 decimals)
	Trades      int64
}

// End returns the exclusive end of the candle's bucket.
func (c Candle) End() time.Time { return c.OpenTime.Add(c.Interval.Duration()) }

// Trade is one executed trade, the input of the Aggregator.
type Trade struct {
	Symbol string
	Time   time.Time
	Price  Fixed // > 0
	Qty    Fixed // > 0
	ID     int64 // unique per symbol; used for de-duplication and tie-breaks
}

// MaxSymbolLen is the longest accepted symbol.
const MaxSymbolLen = 32

// ErrInvalidSymbol is returned (wrapped) for a bad symbol.
var ErrInvalidSymbol = errors.New("invalid symbol")

// ValidateSymbol accepts 1..MaxSymbolLen bytes of [A-Za-z0-9._-].
func ValidateSymbol(s string) error {
	if len(s) == 0 {
		return fmt.Errorf("%w: empty", ErrInvalidSymbol)
	}
	if len(s) > MaxSymbolLen {
		return fmt.Errorf("%w: %q longer than %d bytes", ErrInvalidSymbol, s[:MaxSymbolLen]+"...", MaxSymbolLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' {
			continue
		}
		return fmt.Errorf("%w: %q has byte %q at offset %d (want [A-Za-z0-9._-])", ErrInvalidSymbol, s, c, i)
	}
	return nil
}

// ErrInvalidCandle is returned (wrapped) by Candle.Validate.
var ErrInvalidCandle = errors.New("invalid candle")

// Validate checks the invariants every stored candle satisfies: valid
// symbol and interval, OpenTime aligned to the interval and not before
// 1970, 0 < Low <= Open,Close <= High, non-negative volumes and trades.
func (c Candle) Validate() error {
	if err := ValidateSymbol(c.Symbol); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidCandle, err)
	}
	if !c.Interval.Valid() {
		return fmt.Errorf("%w: field interval: %v", ErrInvalidCandle, c.Interval)
	}
	ns := c.OpenTime.UnixNano()
	if c.OpenTime.Before(time.Unix(0, 0)) || c.OpenTime.Year() > 2200 {
		return fmt.Errorf("%w: field open_time %v out of range [1970, 2200]", ErrInvalidCandle, c.OpenTime)
	}
	if alignNanos(ns, c.Interval.nanos()) != ns {
		return fmt.Errorf("%w: field open_time %v not aligned to %s", ErrInvalidCandle, c.OpenTime.UTC(), c.Interval)
	}
	switch {
	case c.Low <= 0:
		return fmt.Errorf("%w: field low %s must be > 0", ErrInvalidCandle, c.Low)
	case c.High < c.Low:
		return fmt.Errorf("%w: field high %s below low %s", ErrInvalidCandle, c.High, c.Low)
	case c.Open < c.Low || c.Open > c.High:
		return fmt.Errorf("%w: field open %s outside [low %s, high %s]", ErrInvalidCandle, c.Open, c.Low, c.High)
	case c.Close < c.Low || c.Close > c.High:
		return fmt.Errorf("%w: field close %s outside [low %s, high %s]", ErrInvalidCandle, c.Close, c.Low, c.High)
	case c.Volume < 0:
		return fmt.Errorf("%w: field volume %s is negative", ErrInvalidCandle, c.Volume)
	case c.QuoteVolume < 0:
		return fmt.Errorf("%w: field quote_volume %s is negative", ErrInvalidCandle, c.QuoteVolume)
	case c.Trades < 0:
		return fmt.Errorf("%w: field trades %d is negative", ErrInvalidCandle, c.Trades)
	}
	return nil
}
