package candles

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"
)

// Binance kline CSV columns (1-based), as in Binance's public daily files.
const (
	ColOpenTime = 1 + iota
	ColOpen
	ColHigh
	ColLow
	ColClose
	ColVolume
	ColCloseTime
	ColQuoteVolume
	ColTrades
	ColTakerBuyBase
	ColTakerBuyQuote
	ColIgnore
	klineColumns = ColIgnore
)

var klineColumnNames = [...]string{"", "open_time", "open", "high", "low", "close", "volume",
	"close_time", "quote_asset_volume", "number_of_trades", "taker_buy_base_volume",
	"taker_buy_quote_volume", "ignore"}

// ErrMalformedKline is matched (errors.Is) by every *KlineError.
var ErrMalformedKline = errors.New("malformed kline")

// KlineError locates a bad kline CSV line. File and Line are set by the
// loaders (empty/0 from ParseBinanceKline); Column is 1-based, 0 when the
// problem is the line as a whole.
type KlineError struct {
	File   string
	Line   int
	Column int
	Err    error
}

func (e *KlineError) Error() string {
	var b []byte
	if e.File != "" || e.Line > 0 {
		file := e.File
		if file == "" {
			file = "<input>"
		}
		b = fmt.Appendf(b, "%s:%d: ", file, e.Line)
	}
	if e.Column > 0 {
		name := ""
		if e.Column < len(klineColumnNames) {
			name = " (" + klineColumnNames[e.Column] + ")"
		}
		b = fmt.Appendf(b, "column %d%s: ", e.Column, name)
	}
	return string(fmt.Append(b, e.Err))
}

func (e *KlineError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrMalformedKline) true.
func (e *KlineError) Is(target error) bool { return target == ErrMalformedKline }

func colErr(col int, format string, args ...any) *KlineError {
	return &KlineError{Column: col, Err: fmt.Errorf(format, args...)}
}

// Timestamps at or above this are microseconds, below are milliseconds:
// 1e14 ms is the year 5138, 1e14 µs is 1973.
const microThreshold = 100_000_000_000_000

// ParseBinanceKline parses one line of a Binance kline CSV (12 columns, no
// quoting) into a candle of the given symbol and interval. open_time and
// close_time may be milliseconds or microseconds (detected by magnitude,
// both must use the same unit). It checks: the column count, every numeric
// field, open_time aligned to iv, close_time = open_time + iv - 1 unit,
// 0 < low <= open, close <= high, non-negative volumes and trade count.
// A trailing "\r" is ignored. It never panics; errors are *KlineError.
func ParseBinanceKline(symbol string, iv Interval, line []byte) (Candle, error) {
	if !iv.Valid() {
		return Candle{}, &KlineError{Err: fmt.Errorf("invalid interval %v", iv)}
	}
	line = bytes.TrimSuffix(line, []byte{'\r'})
	var fields [klineColumns][]byte
	n := 0
	rest := line
	for {
		j := bytes.IndexByte(rest, ',')
		if n == klineColumns {
			return Candle{}, &KlineError{Err: fmt.Errorf("too many columns (want %d)", klineColumns)}
		}
		if j < 0 {
			fields[n] = rest
			n++
			break
		}
		fields[n] = rest[:j]
		n++
		rest = rest[j+1:]
	}
	if n != klineColumns {
		return Candle{}, &KlineError{Err: fmt.Errorf("%d columns, want %d", n, klineColumns)}
	}
	f := func(col int) []byte { return fields[col-1] }

	openRaw, err := parseUintField(f(ColOpenTime))
	if err != nil {
		return Candle{}, colErr(ColOpenTime, "%v", err)
	}
	closeRaw, err := parseUintField(f(ColCloseTime))
	if err != nil {
		return Candle{}, colErr(ColCloseTime, "%v", err)
	}
	unit := int64(time.Millisecond)
	if openRaw >= microThreshold {
		unit = int64(time.Microsecond)
	}
	maxRaw := uint64(maxTradeUnix * int64(time.Second) / unit)
	if openRaw >= maxRaw {
		return Candle{}, colErr(ColOpenTime, "timestamp %d beyond year 2200", openRaw)
	}
	openNs := int64(openRaw) * unit
	width := iv.nanos()
	if alignNanos(openNs, width) != openNs {
		return Candle{}, colErr(ColOpenTime, "timestamp %d not aligned to %s", openRaw, iv)
	}
	if want := uint64((openNs + width - unit) / unit); closeRaw != want {
		return Candle{}, colErr(ColCloseTime, "timestamp %d, want %d (open_time + %s - 1 %s)",
			closeRaw, want, iv, unitName(unit))
	}

	var px [4]Fixed
	for k, col := range [4]int{ColOpen, ColHigh, ColLow, ColClose} {
		v, err := ParseFixedBytes(f(col))
		if err != nil {
			return Candle{}, colErr(col, "%v", err)
		}
		if v <= 0 {
			return Candle{}, colErr(col, "price %s must be > 0", v)
		}
		px[k] = v
	}
	open, high, low, cls := px[0], px[1], px[2], px[3]
	switch {
	case high < low:
		return Candle{}, colErr(ColHigh, "high %s below low %s", high, low)
	case open > high || open < low:
		return Candle{}, colErr(ColOpen, "open %s outside [low %s, high %s]", open, low, high)
	case cls > high || cls < low:
		return Candle{}, colErr(ColClose, "close %s outside [low %s, high %s]", cls, low, high)
	}
	var vols [4]Fixed
	for k, col := range [4]int{ColVolume, ColQuoteVolume, ColTakerBuyBase, ColTakerBuyQuote} {
		v, err := ParseFixedBytes(f(col))
		if err != nil {
			return Candle{}, colErr(col, "%v", err)
		}
		if v < 0 {
			return Candle{}, colErr(col, "volume %s is negative", v)
		}
		vols[k] = v
	}
	if vols[2] > vols[0] {
		return Candle{}, colErr(ColTakerBuyBase, "taker buy volume %s exceeds volume %s", vols[2], vols[0])
	}
	trades, err := parseUintField(f(ColTrades))
	if err != nil {
		return Candle{}, colErr(ColTrades, "%v", err)
	}
	if trades > 1<<62 {
		return Candle{}, colErr(ColTrades, "trade count %d out of range", trades)
	}
	return Candle{
		Symbol: symbol, Interval: iv, OpenTime: time.Unix(0, openNs).UTC(),
		Open: open, High: high, Low: low, Close: cls,
		Volume: vols[0], QuoteVolume: vols[1], Trades: int64(trades),
	}, nil
}

func unitName(unit int64) string {
	if unit == int64(time.Microsecond) {
		return "µs"
	}
	return "ms"
}

// parseUintField parses a non-empty run of ASCII digits (max 19 digits).
func parseUintField(b []byte) (uint64, error) {
	if len(b) == 0 {
		return 0, errors.New("empty integer")
	}
	if len(b) > 19 {
		return 0, fmt.Errorf("integer %q too long", trunc(b))
	}
	var v uint64
	for i, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("invalid integer %q: unexpected character %s at offset %d",
				trunc(b), strconv.QuoteRune(rune(c)), i)
		}
		v = v*10 + uint64(c-'0')
	}
	return v, nil
}

func trunc(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}

// MaxKlineLineLen is the longest line ReadBinanceKlines accepts.
const MaxKlineLineLen = 4096

// ReadBinanceKlines reads a Binance kline CSV stream. name is used in error
// messages ("name:line: column c (field): reason"). Blank lines are
// skipped, as is a header line starting with "open_time". Rows must have
// strictly increasing open times. It never panics.
func ReadBinanceKlines(r io.Reader, name, symbol string, iv Interval) ([]Candle, error) {
	if err := ValidateSymbol(symbol); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, MaxKlineLineLen), MaxKlineLineLen)
	out := make([]Candle, 0, 1440)
	lineNo := 0
	var prev time.Time
	for sc.Scan() {
		lineNo++
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if lineNo == 1 && bytes.HasPrefix(line, []byte("open_time")) {
			continue
		}
		c, err := ParseBinanceKline(symbol, iv, line)
		if err != nil {
			var ke *KlineError
			if errors.As(err, &ke) {
				ke.File, ke.Line = name, lineNo
				return nil, ke
			}
			return nil, &KlineError{File: name, Line: lineNo, Err: err}
		}
		if len(out) > 0 && !c.OpenTime.After(prev) {
			return nil, &KlineError{File: name, Line: lineNo, Column: ColOpenTime,
				Err: fmt.Errorf("open time %v not after previous row's %v", c.OpenTime, prev)}
		}
		prev = c.OpenTime
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &KlineError{File: name, Line: lineNo + 1, Err: fmt.Errorf("line longer than %d bytes", MaxKlineLineLen)}
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// LoadBinanceKlines loads one Binance 1m kline CSV file (such as
// BTCUSDT-1m-2025-11-24.csv) as 1m candles of symbol.
func LoadBinanceKlines(path, symbol string) ([]Candle, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return ReadBinanceKlines(fh, filepath.Base(path), symbol, Interval1m)
}

// LoadBinanceKlinesGlob loads every file matching pattern, in file name
// order, and returns the concatenated 1m candles, which must be strictly
// increasing in time across files.
func LoadBinanceKlinesGlob(pattern, symbol string) ([]Candle, error) {
	files, err := filepath.Glob(pattern)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no files match %q", pattern)
	}
	sort.Strings(files)
	var all []Candle
	for _, f := range files {
		cs, err := LoadBinanceKlines(f, symbol)
		if err != nil {
			return nil, err
		}
		if len(all) > 0 && len(cs) > 0 && !cs[0].OpenTime.After(all[len(all)-1].OpenTime) {
			return nil, fmt.Errorf("%s: first candle %v not after the previous file's last candle", filepath.Base(f), cs[0].OpenTime)
		}
		all = append(all, cs...)
	}
	return all, nil
}
