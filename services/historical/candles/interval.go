package candles

import (
	"errors"
	"fmt"
	"time"
)

// Interval is a candle width. The zero value is invalid.
type Interval uint8

const (
	Interval1m Interval = iota + 1
	Interval5m
	Interval15m
	Interval1h
	Interval1d
)

// Intervals lists every supported interval, narrowest first.
var Intervals = [...]Interval{Interval1m, Interval5m, Interval15m, Interval1h, Interval1d}

var intervalNames = [...]string{"", "1m", "5m", "15m", "1h", "1d"}

var intervalNanos = [...]int64{
	0,
	int64(time.Minute),
	5 * int64(time.Minute),
	15 * int64(time.Minute),
	int64(time.Hour),
	24 * int64(time.Hour),
}

// ErrUnknownInterval is matched (errors.Is) by the error of ParseInterval.
var ErrUnknownInterval = errors.New("unknown interval")

// IntervalError names an interval string that is not supported.
type IntervalError struct{ Value string }

func (e *IntervalError) Error() string {
	v := e.Value
	if len(v) > 32 {
		v = v[:32] + "..."
	}
	return fmt.Sprintf("unknown interval %q (want one of 1m, 5m, 15m, 1h, 1d)", v)
}

// Is makes errors.Is(err, ErrUnknownInterval) true.
func (e *IntervalError) Is(target error) bool { return target == ErrUnknownInterval }

// ParseInterval parses "1m", "5m", "15m", "1h" or "1d" (exact, case
// sensitive, as Binance spells them). The error names the bad value.
func ParseInterval(s string) (Interval, error) {
	for i := Interval1m; i <= Interval1d; i++ {
		if intervalNames[i] == s {
			return i, nil
		}
	}
	return 0, &IntervalError{Value: s}
}

// Valid reports whether iv is one of the supported intervals.
func (iv Interval) Valid() bool { return iv >= Interval1m && iv <= Interval1d }

// String returns the Binance spelling ("1m", ...), or "Interval(n)" if invalid.
func (iv Interval) String() string {
	if !iv.Valid() {
		return fmt.Sprintf("Interval(%d)", uint8(iv))
	}
	return intervalNames[iv]
}

// Duration is the width of the interval (0 if invalid).
func (iv Interval) Duration() time.Duration {
	if !iv.Valid() {
		return 0
	}
	return time.Duration(intervalNanos[iv])
}

func (iv Interval) nanos() int64 { return intervalNanos[iv] }

// Align returns the open time of the iv bucket containing t, in UTC. Buckets
// are aligned on UTC boundaries (Unix time has no leap seconds, so a UTC
// day is exactly 86,400 s and every bucket start is a multiple of the width
// since the Unix epoch). Times before 1970 are floored correctly.
func (iv Interval) Align(t time.Time) time.Time {
	return time.Unix(0, alignNanos(t.UnixNano(), iv.nanos())).UTC()
}

// MarshalText implements encoding.TextMarshaler.
func (iv Interval) MarshalText() ([]byte, error) {
	if !iv.Valid() {
		return nil, fmt.Errorf("invalid interval %d", uint8(iv))
	}
	return []byte(intervalNames[iv]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (iv *Interval) UnmarshalText(b []byte) error {
	v, err := ParseInterval(string(b))
	if err != nil {
		return err
	}
	*iv = v
	return nil
}

// alignNanos floors ns to a multiple of width (width > 0).
func alignNanos(ns, width int64) int64 {
	r := ns % width
	if r < 0 {
		r += width
	}
	return ns - r
}
