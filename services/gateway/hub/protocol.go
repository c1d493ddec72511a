// Package hub is the gateway's WebSocket domain: the JSON message protocol
// (docs/websocket.md), connections with bounded send buffers, topics that
// fan market data out to subscribers, API keys bound to accounts, per-key
// rate limits and a bounded worker pool for calls to other services. It
// knows nothing of gRPC: the services behind it are the MarketData, Orders
// and Mesh interfaces, which the server package implements.
package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/tradsys/mesh/proto/validate"
)

// Message types a client sends.
const (
	TypeSubscribe   = "subscribe"
	TypeUnsubscribe = "unsubscribe"
	TypeSubmit      = "submit"
	TypeReplace     = "replace"
	TypeCancel      = "cancel"
	TypePing        = "ping"
)

// Channels a client subscribes to.
const (
	ChannelTrades  = "trades"  // a symbol's trades from matching
	ChannelBook    = "book"    // a symbol's book depth
	ChannelCandles = "candles" // a symbol's candles from historical
	ChannelOrders  = "orders"  // the key's account's order updates
	ChannelMesh    = "mesh"    // components, memory leases and locks
)

// Frame types the server sends.
const (
	FrameAck     = "ack"     // a request succeeded; data is its result
	FrameError   = "error"   // a request (or a frame) failed
	FrameTrade   = "trade"   // one trade
	FrameTrades  = "trades"  // the recent trades, sent on subscribe
	FrameBook    = "book"    // the book depth (whenever it changes)
	FrameCandles = "candles" // historical candles, sent on subscribe
	FrameCandle  = "candle"  // the current candle (whenever it changes)
	FrameOrder   = "order"   // an order update
	FrameMesh    = "mesh"    // the mesh at a glance (whenever it changes)
	FramePong    = "pong"    // answer to ping
	FrameWelcome = "welcome" // first frame: the account and limits
)

// Error codes of error frames.
const (
	CodeBadJSON      = "bad_json"      // the frame is not a JSON object of the protocol
	CodeUnknownType  = "unknown_type"  // "type" names no message type
	CodeInvalidField = "invalid_field" // a field is missing or out of range; Field names it
	CodeRateLimited  = "rate_limited"  // the key's request rate is exceeded
	CodeBusy         = "busy"          // the worker pool's queue is full; retry
	CodeForbidden    = "forbidden"     // the key may not act on that account or order
	CodeNotFound     = "not_found"     // no such order or symbol
	CodeRejected     = "rejected"      // orders or risk refused the order; Message says why
	CodeUnavailable  = "unavailable"   // a service behind the gateway is unavailable
	CodeInternal     = "internal"
)

// MaxFrameBytes bounds one client frame.
const MaxFrameBytes = 64 << 10

// Request is one client message. Which fields matter depends on Type.
type Request struct {
	// ID is echoed in the answer (ack or error); optional, at most 64 bytes.
	ID      string `json:"id,omitempty"`
	Type    string `json:"type"`
	Channel string `json:"channel,omitempty"`
	Symbol  string `json:"symbol,omitempty"`
	// Depth of a book subscription, 1..50 (default 10).
	Depth int `json:"depth,omitempty"`
	// Interval of a candles subscription: 1m (default), 5m, 15m, 1h, 1d.
	Interval string `json:"interval,omitempty"`
	// Order is a submit's new order.
	Order *NewOrder `json:"order,omitempty"`
	// OrderID names the order of a replace or cancel.
	OrderID string `json:"order_id,omitempty"`
	// Price and Quantity are a replace's new values (decimal strings; the
	// quantity is the new total).
	Price    string `json:"price,omitempty"`
	Quantity string `json:"quantity,omitempty"`
	// Account, when set, must be the key's own account.
	Account *string `json:"account,omitempty"`
}

// NewOrder is a submit's order. Prices and quantities are decimal strings
// on the instrument's tick and lot grids (orders checks them).
type NewOrder struct {
	Symbol   string `json:"symbol"`
	Side     string `json:"side"`           // buy or sell
	Type     string `json:"type,omitempty"` // limit (default), market, ioc, fok, post_only
	Price    string `json:"price,omitempty"`
	Quantity string `json:"quantity"`
	// ClientOrderID is the idempotency key: a retried submit with the same
	// one answers the same order. The gateway makes one up when empty.
	ClientOrderID string `json:"client_order_id,omitempty"`
	// Account, when set, must be the key's own account.
	Account *string `json:"account,omitempty"`
}

// Error is what an error frame carries; also the error type of the
// backends, so a refusal reaches the client with its cause.
type Error struct {
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf is an *Error.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func fieldErr(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidField, Field: field, Message: "invalid " + field + ": " + fmt.Sprintf(format, args...)}
}

// Limits on fields.
const (
	maxIDLen = 64
	// Integer digits of prices and quantities (matching's 2^48 ticks).
	maxIntDigits = 15
)

var (
	sides      = map[string]bool{"buy": true, "sell": true}
	orderTypes = map[string]bool{"limit": true, "market": true, "ioc": true, "fok": true, "post_only": true}
	intervals  = map[string]bool{"1m": true, "5m": true, "15m": true, "1h": true, "1d": true}
	channels   = map[string]bool{ChannelTrades: true, ChannelBook: true, ChannelCandles: true, ChannelOrders: true, ChannelMesh: true}
)

// Decode parses and validates one client frame. The *Error names the
// problem (bad JSON, unknown type, the invalid field); the request's ID is
// kept when it could be read, so the error frame can carry it.
func Decode(b []byte) (Request, *Error) {
	var r Request
	if len(b) > MaxFrameBytes {
		return r, Errorf(CodeBadJSON, "frame of %d bytes is larger than %d", len(b), MaxFrameBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		id := r.ID
		r = Request{ID: idOf(b)}
		if id != "" && len(id) <= maxIDLen {
			r.ID = id
		}
		return r, Errorf(CodeBadJSON, "%s", describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Request{ID: r.ID}, Errorf(CodeBadJSON, "trailing data after the JSON object")
	}
	if len(r.ID) > maxIDLen {
		r.ID = ""
		return r, fieldErr("id", "longer than %d bytes", maxIDLen)
	}
	return r, r.validate()
}

// idOf digs the id out of a frame that did not decode, best effort.
func idOf(b []byte) string {
	var probe struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(b, &probe) == nil && len(probe.ID) <= maxIDLen {
		return probe.ID
	}
	return ""
}

func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("not JSON at byte %d: %v", syn.Offset, err)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q must be a %s, not a JSON %s", typ.Field, typ.Type, typ.Value)
	case errors.Is(err, io.EOF):
		return "empty frame"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	default:
		return err.Error() // e.g. json: unknown field "x"
	}
}

func (r *Request) validate() *Error {
	switch r.Type {
	case "":
		return fieldErr("type", "missing (subscribe, unsubscribe, submit, replace, cancel or ping)")
	case TypePing:
		return nil
	case TypeSubscribe, TypeUnsubscribe:
		if !channels[r.Channel] {
			return fieldErr("channel", "%q is not trades, book, candles, orders or mesh", r.Channel)
		}
		switch r.Channel {
		case ChannelOrders, ChannelMesh:
			if r.Symbol != "" {
				return fieldErr("symbol", "channel %s takes no symbol", r.Channel)
			}
		default:
			if err := checkSymbol("symbol", r.Symbol); err != nil {
				return err
			}
		}
		switch {
		case r.Depth != 0 && r.Channel != ChannelBook:
			return fieldErr("depth", "%d: only book subscriptions take a depth", r.Depth)
		case r.Depth < 0 || r.Depth > 50:
			return fieldErr("depth", "%d is outside 1..50 (0 means 10)", r.Depth)
		}
		if r.Channel == ChannelBook && r.Depth == 0 {
			r.Depth = 10
		}
		if r.Interval != "" && (r.Channel != ChannelCandles || !intervals[r.Interval]) {
			return fieldErr("interval", "%q: only candles subscriptions take an interval: 1m, 5m, 15m, 1h or 1d", r.Interval)
		}
		if r.Channel == ChannelCandles && r.Interval == "" {
			r.Interval = "1m"
		}
		return nil
	case TypeSubmit:
		o := r.Order
		if o == nil {
			return fieldErr("order", "missing")
		}
		if err := checkSymbol("order.symbol", o.Symbol); err != nil {
			return err
		}
		if !sides[o.Side] {
			return fieldErr("order.side", "%q is not buy or sell", o.Side)
		}
		if o.Type == "" {
			o.Type = "limit"
		}
		if !orderTypes[o.Type] {
			return fieldErr("order.type", "%q is not limit, market, ioc, fok or post_only", o.Type)
		}
		if o.Type == "market" {
			if o.Price != "" {
				return fieldErr("order.price", "a market order has no price")
			}
		} else if err := checkDecimal("order.price", o.Price); err != nil {
			return err
		}
		if err := checkDecimal("order.quantity", o.Quantity); err != nil {
			return err
		}
		if o.ClientOrderID != "" {
			if err := checkID("order.client_order_id", o.ClientOrderID); err != nil {
				return err
			}
		}
		if o.Account != nil {
			if err := checkID("order.account", *o.Account); err != nil {
				return err
			}
		}
		return nil
	case TypeReplace, TypeCancel:
		if r.Symbol != "" {
			if err := checkSymbol("symbol", r.Symbol); err != nil {
				return err
			}
		}
		if err := checkOrderID(r.OrderID); err != nil {
			return err
		}
		if r.Account != nil {
			if err := checkID("account", *r.Account); err != nil {
				return err
			}
		}
		if r.Type == TypeCancel {
			return nil
		}
		if err := checkDecimal("price", r.Price); err != nil {
			return err
		}
		return checkDecimal("quantity", r.Quantity)
	default:
		t := r.Type
		if len(t) > 32 {
			t = t[:32] + "..."
		}
		return Errorf(CodeUnknownType, "unknown message type %q (subscribe, unsubscribe, submit, replace, cancel or ping)", t)
	}
}

func checkSymbol(field, s string) *Error {
	if err := validate.Symbol(field, s); err != nil {
		return &Error{Code: CodeInvalidField, Field: field, Message: err.Error()}
	}
	return nil
}

func checkDecimal(field, s string) *Error {
	if s == "" {
		return fieldErr(field, "missing (a decimal string such as \"100.5\")")
	}
	if err := validate.PositiveDecimal(field, s, maxIntDigits); err != nil {
		return &Error{Code: CodeInvalidField, Field: field, Message: err.Error()}
	}
	return nil
}

func checkID(field, s string) *Error {
	if err := validate.ID(field, s); err != nil {
		return &Error{Code: CodeInvalidField, Field: field, Message: err.Error()}
	}
	return nil
}

func checkOrderID(id string) *Error {
	if id == "" {
		return fieldErr("order_id", "missing")
	}
	if n, err := strconv.ParseUint(id, 10, 64); err != nil || n == 0 {
		return fieldErr("order_id", "%q is not a positive decimal integer", id)
	}
	return nil
}

// Frame is one server message.
type Frame struct {
	Type    string `json:"type"`
	ID      string `json:"id,omitempty"`
	Channel string `json:"channel,omitempty"`
	Symbol  string `json:"symbol,omitempty"`
	// Error frames: the code, the field at fault and what is wrong.
	Code    string `json:"code,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message,omitempty"`
	Data    any    `json:"data,omitempty"`
	// SentAt is when the gateway produced the frame (Unix nanoseconds), for
	// measuring delivery latency.
	SentAt int64 `json:"ts"`
}
