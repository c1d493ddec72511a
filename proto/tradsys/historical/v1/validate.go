package historicalv1

// Hand-written request validation, called by the validator interceptor
// (go-grpc-middleware/v2/interceptors/validator) before any handler runs
// and before the lazy gate, so bad input is INVALID_ARGUMENT naming the
// field and never activates the service. See coordinator/v1/validate.go
// for why this is code.

import (
	"fmt"
	"github.com/tradsys/mesh/proto/validate"
	"net"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	// MaxSymbolLen bounds a symbol.
	MaxSymbolLen = validate.MaxSymbolLen
	// DefaultPageSize is the page size when page_size is 0, and the chunk
	// size when chunk_size is 0.
	DefaultPageSize = 1000
	// MaxPageSize bounds page_size and chunk_size.
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
		return validate.Errorf("interval", "must be set (INTERVAL_1M, 5M, 15M, 1H or 1D)")
	}
	if iv.Duration() == 0 {
		return validate.Errorf("interval", "unknown interval %d (want INTERVAL_1M, 5M, 15M, 1H or 1D)", int32(iv))
	}
	return nil
}

func checkTime(field string, ts *timestamppb.Timestamp, required bool) (time.Time, error) {
	if ts == nil {
		if required {
			return time.Time{}, validate.Errorf(field, "must be set")
		}
		return time.Time{}, nil
	}
	if err := ts.CheckValid(); err != nil {
		return time.Time{}, validate.Errorf(field, "%v", err)
	}
	t := ts.AsTime()
	if t.Before(minTime) || !t.Before(maxTime) {
		return time.Time{}, validate.Errorf(field, "%s is outside [1970, 2200)", t.Format(time.RFC3339))
	}
	return t, nil
}

// checkRange checks the query both GetHistoricalData and
// StreamHistoricalData take.
func checkRange(symbol string, iv Interval, startTS, endTS *timestamppb.Timestamp, enc CandleEncoding) error {
	if err := CheckSymbol("symbol", symbol); err != nil {
		return err
	}
	if err := checkInterval(iv); err != nil {
		return err
	}
	start, err := checkTime("start", startTS, true)
	if err != nil {
		return err
	}
	end, err := checkTime("end", endTS, true)
	if err != nil {
		return err
	}
	if !end.After(start) {
		return validate.Errorf("start", "start %s is not before end %s", start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano))
	}
	if n := int64(end.Sub(start) / iv.Duration()); n > MaxRangeCandles {
		return validate.Errorf("end", "the range spans %d %s candles, more than %d: narrow it or use a coarser interval",
			n, strings.ToLower(strings.TrimPrefix(iv.String(), "INTERVAL_")), MaxRangeCandles)
	}
	if _, known := CandleEncoding_name[int32(enc)]; !known {
		return validate.Errorf("encoding", "unknown encoding %d (want CANDLE_ENCODING_READABLE or CANDLE_ENCODING_COMPACT)", int32(enc))
	}
	return nil
}

// Compact says whether the candles go in the compact encoding.
func (e CandleEncoding) Compact() bool { return e == CandleEncoding_CANDLE_ENCODING_COMPACT }

func (r *GetHistoricalDataRequest) Validate() error {
	if err := checkRange(r.GetSymbol(), r.GetInterval(), r.GetStart(), r.GetEnd(), r.GetEncoding()); err != nil {
		return err
	}
	if ps := r.GetPageSize(); ps < 0 || ps > MaxPageSize {
		return validate.Errorf("page_size", "%d is outside 0..%d", ps, MaxPageSize)
	}
	if tok := r.GetPageToken(); len(tok) > MaxPageTokenLen {
		return validate.Errorf("page_token", "longer than %d bytes", MaxPageTokenLen)
	}
	return nil
}

func (r *StreamHistoricalDataRequest) Validate() error {
	if err := checkRange(r.GetSymbol(), r.GetInterval(), r.GetStart(), r.GetEnd(), r.GetEncoding()); err != nil {
		return err
	}
	if cs := r.GetChunkSize(); cs < 0 || cs > MaxPageSize {
		return validate.Errorf("chunk_size", "%d is outside 0..%d", cs, MaxPageSize)
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
		return validate.Errorf("source", "give path or bundled")
	case *BackfillRequest_Path:
		p := src.Path
		switch {
		case p == "":
			return validate.Errorf("path", "must not be empty")
		case len(p) > MaxPathLen:
			return validate.Errorf("path", "longer than %d bytes", MaxPathLen)
		case strings.ContainsRune(p, 0):
			return validate.Errorf("path", "contains NUL")
		}
	case *BackfillRequest_Bundled:
		if !src.Bundled {
			return validate.Errorf("bundled", "must be true when set")
		}
	}
	if r.GetSymbol() != "" {
		return CheckSymbol("symbol", r.GetSymbol())
	}
	return nil
}

func (r *IngestTradesRequest) Validate() error {
	if n := len(r.GetTrades()); n > MaxTradesPerMessage {
		return validate.Errorf("trades", "%d trades in one message, at most %d", n, MaxTradesPerMessage)
	}
	for i, t := range r.GetTrades() {
		f := fmt.Sprintf("trades[%d]", i)
		if err := CheckSymbol(f+".symbol", t.GetSymbol()); err != nil {
			return err
		}
		if _, err := checkTime(f+".time", t.GetTime(), true); err != nil {
			return err
		}
		if err := positiveDecimal(f+".price", t.GetPrice()); err != nil {
			return err
		}
		if err := positiveDecimal(f+".quantity", t.GetQuantity()); err != nil {
			return err
		}
	}
	return nil
}

func (r *FollowConnectorRequest) Validate() error {
	a := r.GetAddress()
	if a == "" {
		return validate.Errorf("address", "must not be empty")
	}
	if len(a) > 256 {
		return validate.Errorf("address", "longer than 256 bytes")
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" || port == "" || strings.ContainsAny(a, "/\x00 ") {
		return validate.Errorf("address", "%q: want host:port", a)
	}
	if c := r.GetConnector(); c != "" {
		if len(c) > 48 {
			return validate.Errorf("connector", "longer than 48 bytes")
		}
		for i := 0; i < len(c); i++ {
			ch := c[i]
			if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || i > 0 && (ch == '-' || ch == '_')) {
				return validate.Errorf("connector", "%q: want [a-z0-9][a-z0-9_-]*", c)
			}
		}
	}
	if len(r.GetSymbols()) > 256 {
		return validate.Errorf("symbols", "%d symbols, at most 256", len(r.GetSymbols()))
	}
	for i, s := range r.GetSymbols() {
		if err := CheckSymbol(fmt.Sprintf("symbols[%d]", i), s); err != nil {
			return err
		}
	}
	return nil
}

// positiveDecimal is validate.PositiveDecimal with this API's bound on
// integer digits.
func positiveDecimal(field, s string) error { return validate.PositiveDecimal(field, s, 10) }

// CheckSymbol is the symbol rule every service shares (validate.Symbol).
func CheckSymbol(field, s string) error { return validate.Symbol(field, s) }
