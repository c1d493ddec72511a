package feeds

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// VenueBinance is the Venue of events parsed from Binance messages.
const VenueBinance = "binance"

// Parse errors (wrapped in *ParseError).
var (
	ErrMissingField     = errors.New("missing field")
	ErrInvalidValue     = errors.New("invalid value")
	ErrUnsupportedEvent = errors.New("unsupported event type")
)

// ParseError is a message that could not be turned into an event; Field
// names the offending field as it appears on the wire ("p", "data.b[3]",
// "price", "close", ...).
type ParseError struct {
	Source string // "binance", "jsonl", "csv"
	Field  string
	Value  string // offending value, truncated
	Err    error
}

func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString("feeds: ")
	b.WriteString(e.Source)
	if e.Field != "" {
		b.WriteString(": field ")
		b.WriteString(strconv.Quote(e.Field))
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	if e.Value != "" {
		b.WriteString(" (value ")
		b.WriteString(strconv.Quote(e.Value))
		b.WriteString(")")
	}
	return b.String()
}

func (e *ParseError) Unwrap() error { return e.Err }

func perr(src, field string, value string, err error) *ParseError {
	if len(value) > 64 {
		value = value[:64] + "..."
	}
	return &ParseError{Source: src, Field: field, Value: value, Err: err}
}

// APIError is an error response from the Binance WebSocket API, e.g. to a
// bad SUBSCRIBE: {"error":{"code":2,"msg":"Invalid request"},"id":1}.
type APIError struct {
	Code int             `json:"code"`
	Msg  string          `json:"msg"`
	ID   json.RawMessage `json:"-"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("feeds: binance API error %d: %s (id %s)", e.Code, e.Msg, string(e.ID))
}

// binancePayload is the union of the fields of the supported events.
// encoding/json matches keys case-insensitively when there is no exact
// match, so every key whose case-twin we use ("m"/"M", "e"/"E", "t"/"T",
// "u"/"U") is declared explicitly to stop it from overwriting its twin.
type binancePayload struct {
	EventType string          `json:"e"`
	EventTime int64           `json:"E"`
	Symbol    string          `json:"s"`
	TradeID   *int64          `json:"t"` // trade
	AggID     json.RawMessage `json:"a"` // aggTrade: id (number); depthUpdate: asks
	Price     string          `json:"p"`
	Qty       string          `json:"q"`
	TradeTime int64           `json:"T"`
	Maker     *bool           `json:"m"`
	Ignore    json.RawMessage `json:"M"`
	FirstID   int64           `json:"U"`
	FinalID   int64           `json:"u"`
	Bids      json.RawMessage `json:"b"` // depthUpdate: bids (legacy trade: buyer order id)
	// partial book depth stream (<symbol>@depth<N>): no "e"
	LastUpdateID *int64     `json:"lastUpdateId"`
	SnapBids     [][]string `json:"bids"`
	SnapAsks     [][]string `json:"asks"`
}

type binanceWire struct {
	Stream string          `json:"stream"`
	Data   *binancePayload `json:"data"`
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *APIError       `json:"error"`
	binancePayload
}

// ParseBinanceMessage parses one Binance WebSocket market-data message, in
// either the combined-stream form {"stream":"btcusdt@trade","data":{...}}
// or the raw form (the payload alone). Supported payloads:
//
//   - "trade" and "aggTrade" -> Trade (TakerSide: "m"=true means the buyer
//     was the maker, so the taker sold);
//   - "depthUpdate" -> BookUpdate{Seq: "u", FirstSeq: "U"};
//   - partial depth {"lastUpdateId","bids","asks"} (stream
//     <symbol>@depth<N>) -> BookUpdate{Snapshot: true}, symbol taken
//     from the stream name.
//
// A control message (subscription acknowledgement {"result":null,"id":1})
// returns a nil Event and a nil error; an error response returns
// *APIError. Anything else returns a *ParseError naming the field. The
// function is pure and safe for concurrent use.
func ParseBinanceMessage(msg []byte) (Event, error) {
	if ev, err, ok := parseBinanceTradeFast(msg); ok {
		return ev, err
	}
	return parseBinanceMessageJSON(msg)
}

// parseBinanceMessageJSON is the general encoding/json path.
func parseBinanceMessageJSON(msg []byte) (Event, error) {
	var w binanceWire
	if err := json.Unmarshal(msg, &w); err != nil {
		return nil, jsonError("binance", err)
	}
	p := &w.binancePayload
	prefix := ""
	if w.Data != nil {
		p = w.Data
		prefix = "data."
	} else if w.Error != nil {
		w.Error.ID = w.ID
		return nil, w.Error
	} else if w.ID != nil && p.EventType == "" && p.LastUpdateID == nil {
		return nil, nil // control response, e.g. {"result":null,"id":1}
	}
	switch p.EventType {
	case "trade", "aggTrade":
		return parseBinanceTrade(p, prefix)
	case "depthUpdate":
		return parseBinanceDepth(p, prefix)
	case "":
		if p.LastUpdateID != nil {
			return parseBinanceSnapshot(p, w.Stream, prefix)
		}
		return nil, perr("binance", prefix+"e", "", ErrMissingField)
	default:
		return nil, perr("binance", prefix+"e", p.EventType, ErrUnsupportedEvent)
	}
}

func jsonError(src string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return perr(src, te.Field, "", fmt.Errorf("%w: JSON %s where %s expected", ErrInvalidValue, te.Value, jsonKind(te.Type)))
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return perr(src, "", "", fmt.Errorf("%w: JSON syntax at offset %d: %v", ErrInvalidValue, se.Offset, se))
	}
	return perr(src, "", "", fmt.Errorf("%w: %v", ErrInvalidValue, err))
}

func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 { // json.RawMessage
			return "value"
		}
		return "array"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	}
	return t.Kind().String()
}

func parseBinanceTrade(p *binancePayload, prefix string) (Event, error) {
	var id int64
	hasID := false
	if p.EventType == "trade" {
		if p.TradeID != nil {
			id, hasID = *p.TradeID, true
		}
	} else if p.Symbol != "" { // aggTrade; "s" is checked first
		if len(p.AggID) == 0 {
			return nil, perr("binance", prefix+"a", "", ErrMissingField)
		}
		n, err := strconv.ParseInt(string(p.AggID), 10, 64)
		if err != nil {
			return nil, perr("binance", prefix+"a", string(p.AggID), ErrInvalidValue)
		}
		id, hasID = n, true
	}
	maker, hasMaker := false, p.Maker != nil
	if hasMaker {
		maker = *p.Maker
	}
	return buildBinanceTrade(prefix, p.Symbol, id, hasID, p.Price, p.Qty, p.TradeTime, p.EventTime, maker, hasMaker)
}

// buildBinanceTrade validates the fields of a trade in wire order
// (s, t, p, q, T, m); shared by the JSON and the fast path.
func buildBinanceTrade(prefix, symbol string, id int64, hasID bool, price, qty string, tradeTime, eventTime int64, maker, hasMaker bool) (Event, error) {
	t := Trade{Venue: VenueBinance, TradeID: id}
	if symbol == "" {
		return nil, perr("binance", prefix+"s", "", ErrMissingField)
	}
	if !hasID {
		return nil, perr("binance", prefix+"t", "", ErrMissingField)
	}
	t.Symbol = normSymbol(symbol)
	var err error
	if t.Price, err = positiveDecimal(price); err != nil {
		return nil, perr("binance", prefix+"p", price, err)
	}
	if t.Qty, err = positiveDecimal(qty); err != nil {
		return nil, perr("binance", prefix+"q", qty, err)
	}
	ts := tradeTime
	if ts == 0 {
		ts = eventTime
	}
	if ts == 0 {
		return nil, perr("binance", prefix+"T", "", ErrMissingField)
	}
	if ts < 0 {
		return nil, perr("binance", prefix+"T", strconv.FormatInt(ts, 10), fmt.Errorf("%w: negative time", ErrInvalidValue))
	}
	t.Time = UnixAuto(ts)
	if !hasMaker {
		return nil, perr("binance", prefix+"m", "", ErrMissingField)
	}
	if maker {
		t.TakerSide = SideSell
	} else {
		t.TakerSide = SideBuy
	}
	return t, nil
}

// positiveDecimal parses s and requires it to be > 0.
func positiveDecimal(s string) (Decimal, error) {
	if s == "" {
		return 0, ErrMissingField
	}
	d, err := ParseDecimal(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalidValue, err)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%w: must be positive", ErrInvalidValue)
	}
	return d, nil
}

func parseBinanceDepth(p *binancePayload, prefix string) (Event, error) {
	if p.Symbol == "" {
		return nil, perr("binance", prefix+"s", "", ErrMissingField)
	}
	if p.EventTime <= 0 {
		return nil, perr("binance", prefix+"E", "", ErrMissingField)
	}
	if p.FinalID <= 0 {
		return nil, perr("binance", prefix+"u", "", ErrMissingField)
	}
	if p.FirstID <= 0 || p.FirstID > p.FinalID {
		return nil, perr("binance", prefix+"U", strconv.FormatInt(p.FirstID, 10), ErrInvalidValue)
	}
	var raw [][]string
	b := BookUpdate{Venue: VenueBinance, Symbol: normSymbol(p.Symbol), Seq: p.FinalID, FirstSeq: p.FirstID, Time: UnixAuto(p.EventTime)}
	var err error
	if len(p.Bids) == 0 {
		return nil, perr("binance", prefix+"b", "", ErrMissingField)
	}
	if err = json.Unmarshal(p.Bids, &raw); err != nil {
		return nil, perr("binance", prefix+"b", string(p.Bids), ErrInvalidValue)
	}
	if b.Bids, err = parseLevels(raw, prefix+"b"); err != nil {
		return nil, err
	}
	raw = nil
	if len(p.AggID) == 0 {
		return nil, perr("binance", prefix+"a", "", ErrMissingField)
	}
	if err = json.Unmarshal(p.AggID, &raw); err != nil {
		return nil, perr("binance", prefix+"a", string(p.AggID), ErrInvalidValue)
	}
	if b.Asks, err = parseLevels(raw, prefix+"a"); err != nil {
		return nil, err
	}
	return b, nil
}

func parseBinanceSnapshot(p *binancePayload, stream, prefix string) (Event, error) {
	sym := p.Symbol
	if sym == "" {
		sym, _, _ = strings.Cut(stream, "@")
	}
	if sym == "" {
		return nil, perr("binance", "stream", stream, ErrMissingField)
	}
	if *p.LastUpdateID <= 0 {
		return nil, perr("binance", prefix+"lastUpdateId", strconv.FormatInt(*p.LastUpdateID, 10), ErrInvalidValue)
	}
	b := BookUpdate{Venue: VenueBinance, Symbol: normSymbol(sym), Seq: *p.LastUpdateID, FirstSeq: *p.LastUpdateID, Snapshot: true}
	if p.EventTime > 0 {
		b.Time = UnixAuto(p.EventTime)
	}
	var err error
	if b.Bids, err = parseLevels(p.SnapBids, prefix+"bids"); err != nil {
		return nil, err
	}
	if b.Asks, err = parseLevels(p.SnapAsks, prefix+"asks"); err != nil {
		return nil, err
	}
	return b, nil
}

func parseLevels(raw [][]string, field string) ([]Level, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	out := make([]Level, len(raw))
	for i, lv := range raw {
		if len(lv) != 2 {
			return nil, perr("binance", field+"["+strconv.Itoa(i)+"]", strings.Join(lv, ","), fmt.Errorf("%w: want [price, qty]", ErrInvalidValue))
		}
		p, err := ParseDecimal(lv[0])
		if err != nil || p <= 0 {
			return nil, perr("binance", field+"["+strconv.Itoa(i)+"][0]", lv[0], fmt.Errorf("%w: price", ErrInvalidValue))
		}
		q, err := ParseDecimal(lv[1])
		if err != nil || q < 0 {
			return nil, perr("binance", field+"["+strconv.Itoa(i)+"][1]", lv[1], fmt.Errorf("%w: quantity", ErrInvalidValue))
		}
		out[i] = Level{Price: p, Qty: q}
	}
	return out, nil
}
