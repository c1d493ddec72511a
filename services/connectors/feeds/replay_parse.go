package feeds

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// VenueReplay is the default Venue of replayed events.
const VenueReplay = "replay"

// CSV layouts recognised by ParseCSVLine (by field count).
const (
	klineFields      = 12 // Binance kline: open_time,open,high,low,close,volume,close_time,quote_volume,trades,taker_buy_base,taker_buy_quote,ignore
	tradeFields      = 7  // Binance spot trades: id,price,qty,quote_qty,time,is_buyer_maker,is_best_match
	tradeFieldsShort = 6  // Binance futures trades: id,price,qty,quote_qty,time,is_buyer_maker
)

// ParseKlineCSVLine parses one line of a Binance kline CSV file (no header,
// 12 comma-separated fields) into the synthetic trade Replay emits for a
// candle:
//
//   - Price = close, Qty = volume (base asset; may be 0 for an empty
//     minute), Time = close_time, TradeID = open_time in milliseconds;
//   - TakerSide = the majority taker side of the candle: Buy if
//     taker_buy_base_volume > volume/2, Sell if below, Unknown if equal.
//
// open_time/close_time may be milliseconds or microseconds (UnixAuto).
// The candle is validated (low <= open,close <= high, close_time >=
// open_time, volumes >= 0, taker buy <= volume). Symbol and Venue are left
// for the caller.
func ParseKlineCSVLine(line []byte) (Trade, error) {
	var f [klineFields]string
	n, err := splitCSV(line, f[:])
	if err != nil {
		return Trade{}, err
	}
	if n != klineFields {
		return Trade{}, perr("csv", "", strconv.Itoa(n), fmt.Errorf("%w: kline line has %d fields, want %d", ErrInvalidValue, n, klineFields))
	}
	return klineFromFields(f[:])
}

func klineFromFields(f []string) (Trade, error) {
	names := [...]string{"open_time", "open", "high", "low", "close", "volume", "close_time", "quote_asset_volume", "number_of_trades", "taker_buy_base_volume"}
	openT, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || openT <= 0 {
		return Trade{}, perr("csv", names[0], f[0], ErrInvalidValue)
	}
	closeT, err := strconv.ParseInt(f[6], 10, 64)
	if err != nil || closeT < openT {
		return Trade{}, perr("csv", names[6], f[6], ErrInvalidValue)
	}
	var d [6]Decimal // open high low close volume quote
	for i, idx := range [...]int{1, 2, 3, 4, 5, 7} {
		v, err := ParseDecimal(f[idx])
		if err != nil || v < 0 {
			return Trade{}, perr("csv", names[idx], f[idx], ErrInvalidValue)
		}
		d[i] = v
	}
	open, high, low, cls, vol := d[0], d[1], d[2], d[3], d[4]
	if cls <= 0 {
		return Trade{}, perr("csv", "close", f[4], fmt.Errorf("%w: must be positive", ErrInvalidValue))
	}
	if low > open || low > cls || low > high || low <= 0 {
		return Trade{}, perr("csv", "low", f[3], fmt.Errorf("%w: inconsistent candle", ErrInvalidValue))
	}
	if high < open || high < cls {
		return Trade{}, perr("csv", "high", f[2], fmt.Errorf("%w: inconsistent candle", ErrInvalidValue))
	}
	if n, err := strconv.ParseInt(f[8], 10, 64); err != nil || n < 0 {
		return Trade{}, perr("csv", names[8], f[8], ErrInvalidValue)
	}
	takerBuy, err := ParseDecimal(f[9])
	if err != nil || takerBuy < 0 || takerBuy > vol {
		return Trade{}, perr("csv", names[9], f[9], ErrInvalidValue)
	}
	t := Trade{TradeID: UnixAuto(openT).UnixMilli(), Time: UnixAuto(closeT), Price: cls, Qty: vol}
	// compare takerBuy with vol/2 without rounding: 2*takerBuy vs vol
	switch tb2 := uint64(takerBuy) * 2; {
	case tb2 > uint64(vol):
		t.TakerSide = SideBuy
	case tb2 < uint64(vol):
		t.TakerSide = SideSell
	}
	return t, nil
}

// ParseTradeCSVLine parses one line of a Binance trades CSV file:
// id,price,qty,quote_qty,time,is_buyer_maker[,is_best_match] (spot files
// have 7 fields, futures files 6). Symbol and Venue are left for the caller.
func ParseTradeCSVLine(line []byte) (Trade, error) {
	var f [tradeFields]string
	n, err := splitCSV(line, f[:])
	if err != nil {
		return Trade{}, err
	}
	if n != tradeFields && n != tradeFieldsShort {
		return Trade{}, perr("csv", "", strconv.Itoa(n), fmt.Errorf("%w: trade line has %d fields, want 6 or 7", ErrInvalidValue, n))
	}
	return tradeFromFields(f[:n])
}

func tradeFromFields(f []string) (Trade, error) {
	var t Trade
	var err error
	if t.TradeID, err = strconv.ParseInt(f[0], 10, 64); err != nil {
		return Trade{}, perr("csv", "id", f[0], ErrInvalidValue)
	}
	if t.Price, err = positiveDecimal(f[1]); err != nil {
		return Trade{}, perr("csv", "price", f[1], err)
	}
	if t.Qty, err = positiveDecimal(f[2]); err != nil {
		return Trade{}, perr("csv", "qty", f[2], err)
	}
	if _, err = ParseDecimal(f[3]); err != nil {
		return Trade{}, perr("csv", "quote_qty", f[3], ErrInvalidValue)
	}
	ts, err := strconv.ParseInt(f[4], 10, 64)
	if err != nil || ts <= 0 {
		return Trade{}, perr("csv", "time", f[4], ErrInvalidValue)
	}
	t.Time = UnixAuto(ts)
	switch strings.ToLower(f[5]) {
	case "true":
		t.TakerSide = SideSell // buyer was the maker
	case "false":
		t.TakerSide = SideBuy
	default:
		return Trade{}, perr("csv", "is_buyer_maker", f[5], ErrInvalidValue)
	}
	return t, nil
}

// ParseCSVLine parses a Binance kline (12 fields) or trades (6/7 fields)
// CSV line, choosing the layout by field count.
func ParseCSVLine(line []byte) (Trade, error) {
	var f [klineFields]string
	n, err := splitCSV(line, f[:])
	if err != nil {
		return Trade{}, err
	}
	switch n {
	case klineFields:
		return klineFromFields(f[:])
	case tradeFields, tradeFieldsShort:
		return tradeFromFields(f[:n])
	}
	return Trade{}, perr("csv", "", strconv.Itoa(n), fmt.Errorf("%w: %d fields: neither a kline (12) nor a trade (6/7) line", ErrInvalidValue, n))
}

// splitCSV splits an unquoted comma-separated line (trailing CR/LF
// stripped) into dst and returns the field count; it fails if there are
// more fields than dst holds. Quoting is not supported (Binance files never
// quote).
func splitCSV(line []byte, dst []string) (int, error) {
	line = bytes.TrimRight(line, "\r\n")
	if len(line) == 0 {
		return 0, perr("csv", "", "", fmt.Errorf("%w: empty line", ErrInvalidValue))
	}
	s := string(line)
	n := 0
	for {
		field, rest, found := strings.Cut(s, ",")
		if n == len(dst) {
			return 0, perr("csv", "", "", fmt.Errorf("%w: more than %d fields", ErrInvalidValue, len(dst)))
		}
		dst[n] = strings.TrimSpace(field)
		n++
		if !found {
			return n, nil
		}
		s = rest
	}
}

// jsonlTrade is the JSONL replay format.
type jsonlTrade struct {
	Symbol string          `json:"symbol"`
	ID     json.RawMessage `json:"id"`
	Time   json.RawMessage `json:"time"`
	Price  json.RawMessage `json:"price"`
	Qty    json.RawMessage `json:"qty"`
	Side   string          `json:"side"`
	Venue  string          `json:"venue"`
}

// ParseJSONLTrade parses one JSONL trade line:
//
//	{"symbol":"BTCUSDT","id":123,"time":"2025-11-24T00:00:01.5Z","price":"86780.01","qty":"0.5","side":"buy"}
//
// "id" is an integer (JSON number or numeric string); "time" is RFC 3339
// or a Unix timestamp in milliseconds (number or numeric string; µs/ns are
// recognised by magnitude, see UnixAuto); "price" and "qty" are decimal
// strings (plain JSON numbers are accepted too and parsed exactly from
// their text, exponents rejected); "side" is "buy", "sell" or absent;
// "venue" is optional. Price and qty must be positive.
func ParseJSONLTrade(line []byte) (Trade, error) {
	var j jsonlTrade
	if err := json.Unmarshal(line, &j); err != nil {
		return Trade{}, jsonError("jsonl", err)
	}
	var t Trade
	if j.Symbol == "" {
		return Trade{}, perr("jsonl", "symbol", "", ErrMissingField)
	}
	t.Symbol = normSymbol(j.Symbol)
	t.Venue = j.Venue
	if len(j.ID) > 0 && string(j.ID) != "null" {
		id, err := strconv.ParseInt(unquoteJSON(j.ID), 10, 64)
		if err != nil {
			return Trade{}, perr("jsonl", "id", string(j.ID), ErrInvalidValue)
		}
		t.TradeID = id
	}
	if len(j.Time) == 0 || string(j.Time) == "null" {
		return Trade{}, perr("jsonl", "time", "", ErrMissingField)
	}
	ts := unquoteJSON(j.Time)
	if n, err := strconv.ParseInt(ts, 10, 64); err == nil {
		if n <= 0 {
			return Trade{}, perr("jsonl", "time", ts, ErrInvalidValue)
		}
		t.Time = UnixAuto(n)
	} else if tm, err := time.Parse(time.RFC3339Nano, ts); err == nil && j.Time[0] == '"' {
		if !tm.After(time.Unix(0, 0)) {
			return Trade{}, perr("jsonl", "time", ts, fmt.Errorf("%w: before 1970", ErrInvalidValue))
		}
		t.Time = tm
	} else {
		return Trade{}, perr("jsonl", "time", ts, fmt.Errorf("%w: want RFC 3339 or Unix milliseconds", ErrInvalidValue))
	}
	var err error
	if t.Price, err = positiveDecimal(jsonNumberText(j.Price)); err != nil {
		return Trade{}, perr("jsonl", "price", string(j.Price), err)
	}
	if t.Qty, err = positiveDecimal(jsonNumberText(j.Qty)); err != nil {
		return Trade{}, perr("jsonl", "qty", string(j.Qty), err)
	}
	var ok bool
	if t.TakerSide, ok = ParseSide(j.Side); !ok {
		return Trade{}, perr("jsonl", "side", j.Side, fmt.Errorf("%w: want buy or sell", ErrInvalidValue))
	}
	return t, nil
}

// unquoteJSON returns the contents of a JSON string token, or the raw text
// for a non-string token. Strings with escapes are returned still escaped,
// which makes them fail numeric/time parsing as they should.
func unquoteJSON(raw json.RawMessage) string {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		return string(raw[1 : len(raw)-1])
	}
	return string(raw)
}

// jsonNumberText returns the decimal text of a JSON string or number
// token ("" for null/absent).
func jsonNumberText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if raw[0] == '"' {
		return unquoteJSON(raw)
	}
	if raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9') {
		return string(raw)
	}
	return "\x00" // not a number/string: fails decimal parsing
}
