package historicalv1

// Hand-written request validation, called by the validator interceptor
// (go-grpc-middleware/v2/interceptors/validator) before any handler runs
// and before the lazy gate, so bad input is INVALID_ARGUMENT naming the
// field and never activates the service. See coordinator/v1/validate.go
// for why this is code.

import (
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	// MaxSymbolLen bounds a symbol.
	MaxSymbolLen = 32
	// DefaultPageSize is the page size when page_size is 0.
	DefaultPageSize = 1000
	// MaxPageSize bounds page_size.
	MaxPageSize = 10000
	// MaxRangeCandles bounds how many candles of the interval one query's
	// [start, end) may span (a million 1m candles is about 694 days);
	// beyond that, use a coarser interval or a narrower range.
	MaxRangeCandles = 1_000_000
	// MaxPageTokenLen bounds page_token.
	MaxPageTokenLen = 64
	// MaxPathLen bounds a backfill path.
	MaxPathLen = 4096
	// MaxTradesPerMessage bounds an IngestTrades message.
	MaxTradesPerMessage = 10000
)

var (
	minTime = time.Unix(0, 0)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

func fieldErr(field, format string, args ...any) error {
	return fmt.Errorf("invalid %s: %s", field, fmt.Sprintf(format, args...))
}

// CheckSymbol accepts 1..MaxSymbolLen bytes of [A-Za-z0-9._-].
func CheckSymbol(field, s string) error {
	if s == "" {
		return fieldErr(field, "must not be empty")
	}
	if len(s) > MaxSymbolLen {
		return fieldErr(field, "longer than %d bytes", MaxSymbolLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' {
			continue
		}
		return fieldErr(field, "%q has byte %q at offset %d (want [A-Za-z0-9._-])", s, c, i)
	}
	return nil
}

// Duration is the width of a known interval, 0 otherwise.
func (iv Interval) Duration() time.Duration {
	switch iv {
	case Interval_INTERVAL_1M:
		return time.Minute
	case Interval_INTERVAL_5M:
		return 5 * time.Minute
	case Interval_INTERVAL_15M:
		return 15 * time.Minute
	case Interval_INTERVAL_1H:
		return time.Hour
	case Interval_INTERVAL_1D:
		return 24 * time.Hour
	}
	return 0
}

func checkInterval(iv Interval) error {
	if iv == Interval_INTERVAL_UNSPECIFIED {
		return fieldErr("interval", "must be set (INTERVAL_1M, 5M, 15M, 1H or 1D)")
	}
	if iv.Duration() == 0 {
		return fieldErr("interval", "unknown interval %d (want INTERVAL_1M, 5M, 15M, 1H or 1D)", int32(iv))
	}
	return nil
}

func checkTime(field string, ts *timestamppb.Timestamp, required bool) (time.Time, error) {
	if ts == nil {
		if required {
			return time.Time{}, fieldErr(field, "must be set")
		}
		return time.Time{}, nil
	}
	if err := ts.CheckValid(); err != nil {
		return time.Time{}, fieldErr(field, "%v", err)
	}
	t := ts.AsTime()
	if t.Before(minTime) || !t.Before(maxTime) {
		return time.Time{}, fieldErr(field, "%s is outside [1970, 2200)", t.Format(time.RFC3339))
	}
	return t, nil
}

func (r *GetHistoricalDataRequest) Validate() error {
	if err := CheckSymbol("symbol", r.GetSymbol()); err != nil {
		return err
	}
	if err := checkInterval(r.GetInterval()); err != nil {
		return err
	}
	start, err := checkTime("start", r.GetStart(), true)
	if err != nil {
		return err
	}
	end, err := checkTime("end", r.GetEnd(), true)
	if err != nil {
		return err
	}
	if !end.After(start) {
		return fieldErr("start", "start %s is not before end %s", start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano))
	}
	if n := int64(end.Sub(start) / r.GetInterval().Duration()); n > MaxRangeCandles {
		return fieldErr("end", "the range spans %d %s candles, more than %d: narrow it or use a coarser interval",
			n, strings.ToLower(strings.TrimPrefix(r.GetInterval().String(), "INTERVAL_")), MaxRangeCandles)
	}
	if ps := r.GetPageSize(); ps < 0 || ps > MaxPageSize {
		return fieldErr("page_size", "%d is outside 0..%d", ps, MaxPageSize)
	}
	if tok := r.GetPageToken(); len(tok) > MaxPageTokenLen {
		return fieldErr("page_token", "longer than %d bytes", MaxPageTokenLen)
	}
	return nil
}

func (r *GetLatestRequest) Validate() error {
	if err := CheckSymbol("symbol", r.GetSymbol()); err != nil {
		return err
	}
	return checkInterval(r.GetInterval())
}

func (r *GetCacheStatsRequest) Validate() error   { return nil }
func (r *GetIngestStatusRequest) Validate() error { return nil }

func (r *BackfillRequest) Validate() error {
	switch src := r.GetSource().(type) {
	case nil:
		return fieldErr("source", "give path or bundled")
	case *BackfillRequest_Path:
		p := src.Path
		switch {
		case p == "":
			return fieldErr("path", "must not be empty")
		case len(p) > MaxPathLen:
			return fieldErr("path", "longer than %d bytes", MaxPathLen)
		case strings.ContainsRune(p, 0):
			return fieldErr("path", "contains NUL")
		}
	case *BackfillRequest_Bundled:
		if !src.Bundled {
			return fieldErr("bundled", "must be true when set")
		}
	}
	if r.GetSymbol() != "" {
		return CheckSymbol("symbol", r.GetSymbol())
	}
	return nil
}

// checkDecimal accepts a plain positive decimal with at most 8 fractional
// digits ("86780.01", "0.0015").
func checkDecimal(field, s string) error {
	if len(s) > 24 {
		return fieldErr(field, "%q is not a decimal", s[:24]+"...")
	}
	digits, dot, frac, nonzero := 0, false, 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
			if dot {
				frac++
			}
			if c != '0' {
				nonzero = true
			}
		case c == '.' && !dot:
			dot = true
		default:
			return fieldErr(field, "%q is not a plain decimal", s)
		}
	}
	switch {
	case digits == 0:
		return fieldErr(field, "%q is not a plain decimal", s)
	case frac > 8:
		return fieldErr(field, "%q has more than 8 fractional digits", s)
	case digits-frac > 10:
		return fieldErr(field, "%q is too large", s)
	case !nonzero:
		return fieldErr(field, "%q must be more than zero", s)
	}
	return nil
}

func (r *IngestTradesRequest) Validate() error {
	if n := len(r.GetTrades()); n > MaxTradesPerMessage {
		return fieldErr("trades", "%d trades in one message, at most %d", n, MaxTradesPerMessage)
	}
	for i, t := range r.GetTrades() {
		f := fmt.Sprintf("trades[%d]", i)
		if err := CheckSymbol(f+".symbol", t.GetSymbol()); err != nil {
			return err
		}
		if _, err := checkTime(f+".time", t.GetTime(), true); err != nil {
			return err
		}
		if err := checkDecimal(f+".price", t.GetPrice()); err != nil {
			return err
		}
		if err := checkDecimal(f+".quantity", t.GetQuantity()); err != nil {
			return err
		}
	}
	return nil
}

func (r *FollowConnectorRequest) Validate() error {
	a := r.GetAddress()
	if a == "" {
		return fieldErr("address", "must not be empty")
	}
	if len(a) > 256 {
		return fieldErr("address", "longer than 256 bytes")
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" || port == "" || strings.ContainsAny(a, "/\x00 ") {
		return fieldErr("address", "%q: want host:port", a)
	}
	if c := r.GetConnector(); c != "" {
		if len(c) > 48 {
			return fieldErr("connector", "longer than 48 bytes")
		}
		for i := 0; i < len(c); i++ {
			ch := c[i]
			if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || i > 0 && (ch == '-' || ch == '_')) {
				return fieldErr("connector", "%q: want [a-z0-9][a-z0-9_-]*", c)
			}
		}
	}
	if len(r.GetSymbols()) > 256 {
		return fieldErr("symbols", "%d symbols, at most 256", len(r.GetSymbols()))
	}
	for i, s := range r.GetSymbols() {
		if err := CheckSymbol(fmt.Sprintf("symbols[%d]", i), s); err != nil {
			return err
		}
	}
	return nil
}
