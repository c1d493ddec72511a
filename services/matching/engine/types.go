// Package engine is a deterministic, allocation-free (in steady state) limit
// order matching engine: one Book per symbol, owned by an Engine.
//
// Prices are int64 ticks and quantities int64 lots; there is no floating point
// anywhere in matching. The package is pure Go (stdlib only) and knows nothing
// about gRPC or protobuf; every input error is an exported sentinel error so a
// transport layer can map it to a status code.
//
// Concurrency: a Book is not safe for concurrent use. The Engine serialises
// calls per book (one mutex per book) and may be used from many goroutines.
// Sinks are called synchronously from inside the matching call and must not
// call back into the same Book.
package engine

import (
	"errors"
	"math"
)

// Side of an order.
type Side uint8

const (
	Buy  Side = 1
	Sell Side = 2
)

func (s Side) String() string {
	switch s {
	case Buy:
		return "buy"
	case Sell:
		return "sell"
	}
	return "invalid-side"
}

// Valid reports whether s is Buy or Sell.
func (s Side) Valid() bool { return s == Buy || s == Sell }

// Opposite returns the other side.
func (s Side) Opposite() Side {
	if s == Buy {
		return Sell
	}
	return Buy
}

// OrderType is the order type / time in force.
type OrderType uint8

const (
	// Limit is a good-till-cancel limit order: it matches what it can and
	// the remainder rests in the book.
	Limit OrderType = 1
	// Market matches at any price; any unfilled remainder is cancelled. The
	// Price field is ignored.
	Market OrderType = 2
	// IOC (immediate or cancel) is a limit order whose unfilled remainder is
	// cancelled instead of resting.
	IOC OrderType = 3
	// FOK (fill or kill) is a limit order that either fills completely and
	// immediately or is rejected with ErrFOKNotFillable without any side
	// effect. It never partially fills.
	FOK OrderType = 4
	// PostOnly is a limit order that must add liquidity: it is rejected with
	// ErrPostOnlyWouldCross if it would cross the opposite best price.
	PostOnly OrderType = 5
)

func (t OrderType) String() string {
	switch t {
	case Limit:
		return "limit"
	case Market:
		return "market"
	case IOC:
		return "ioc"
	case FOK:
		return "fok"
	case PostOnly:
		return "post-only"
	}
	return "invalid-type"
}

// Valid reports whether t is a known order type.
func (t OrderType) Valid() bool { return t >= Limit && t <= PostOnly }

// Limits on inputs. They keep every sum in the book far away from int64
// overflow (a level would need 2^23 maximal orders to overflow).
const (
	MaxPrice    int64 = 1 << 48
	MaxQuantity int64 = 1 << 40
)

// Order is an order submission.
type Order struct {
	ID      uint64 // must be non-zero and unique among resting orders of the book
	Account uint64 // self-trade prevention key
	Side    Side
	Type    OrderType
	Price   int64 // ticks, 1..MaxPrice; ignored for Market
	Qty     int64 // lots, 1..MaxQuantity
}

// Result summarises what one Submit or Replace did to the order.
type Result struct {
	Filled    int64 // quantity traded by this call
	Resting   int64 // quantity of the order resting in the book after the call
	Cancelled int64 // unfilled remainder dropped (IOC / market remainder)
	Trades    int   // number of trades produced by this call
}

// CancelReason says why quantity left (or never entered) the book.
type CancelReason uint8

const (
	// ReasonUser: cancelled by a Cancel call.
	ReasonUser CancelReason = 1
	// ReasonSelfTrade: a resting order cancelled by self-trade prevention.
	ReasonSelfTrade CancelReason = 2
	// ReasonUnfilled: the unfilled remainder of a market or IOC order.
	ReasonUnfilled CancelReason = 3
)

func (r CancelReason) String() string {
	switch r {
	case ReasonUser:
		return "user"
	case ReasonSelfTrade:
		return "self-trade"
	case ReasonUnfilled:
		return "unfilled"
	}
	return "invalid-reason"
}

// Trade is one execution between an incoming (taker) and a resting (maker)
// order. Trades are passed by value so that delivering them allocates nothing.
type Trade struct {
	Symbol       string
	Seq          uint64 // per-book trade sequence, +1 per trade, starts at 1
	Price        int64  // the maker's price
	Qty          int64
	TakerID      uint64
	MakerID      uint64
	TakerAccount uint64
	MakerAccount uint64
	TakerSide    Side
	MakerLeft    int64 // maker quantity left after this trade (0: maker is done)
	// Time is when the trade was matched, Unix nanoseconds. The engine has
	// no clock and leaves it 0; the matching layer stamps it with the
	// acceptance time journaled with the taker input (0: not recorded).
	Time int64
}

// Cancel reports quantity removed from the book or dropped from a taker.
type Cancel struct {
	Symbol  string
	OrderID uint64
	Account uint64
	Side    Side
	Price   int64
	Qty     int64 // quantity cancelled
	Reason  CancelReason
}

// Sink receives the events of a book, synchronously, in order. It must not
// call back into the book that produced the event.
type Sink interface {
	OnTrade(Trade)
	OnCancel(Cancel)
}

// NopSink discards all events.
type NopSink struct{}

func (NopSink) OnTrade(Trade)   {}
func (NopSink) OnCancel(Cancel) {}

// SliceSink appends events to caller-owned slices. Call Reset between
// batches to reuse the backing arrays; after warm-up it allocates nothing.
type SliceSink struct {
	Trades  []Trade
	Cancels []Cancel
}

func (s *SliceSink) OnTrade(t Trade)   { s.Trades = append(s.Trades, t) }
func (s *SliceSink) OnCancel(c Cancel) { s.Cancels = append(s.Cancels, c) }

// Reset empties the slices keeping their capacity.
func (s *SliceSink) Reset() { s.Trades = s.Trades[:0]; s.Cancels = s.Cancels[:0] }

// Errors. They are sentinel values (compare with errors.Is or ==).
var (
	ErrInvalidQuantity    = errors.New("engine: invalid quantity (field qty must be 1..MaxQuantity)")
	ErrInvalidPrice       = errors.New("engine: invalid price (field price must be 1..MaxPrice ticks)")
	ErrInvalidSide        = errors.New("engine: invalid side (field side must be buy or sell)")
	ErrInvalidOrderType   = errors.New("engine: invalid order type (field type)")
	ErrInvalidOrderID     = errors.New("engine: invalid order id (field id must be non-zero)")
	ErrInvalidSymbol      = errors.New("engine: invalid symbol (field symbol must be 1..64 bytes)")
	ErrUnknownOrder       = errors.New("engine: unknown order")
	ErrDuplicateOrderID   = errors.New("engine: duplicate order id")
	ErrPostOnlyWouldCross = errors.New("engine: post-only order would cross")
	ErrFOKNotFillable     = errors.New("engine: fill-or-kill order not fillable")
	ErrUnknownAlgorithm   = errors.New("engine: unknown matching algorithm")
	ErrCorruptSnapshot    = errors.New("engine: corrupt snapshot")
)

// MaxSymbolLen is the longest accepted symbol.
const MaxSymbolLen = 64

func validSymbol(s string) bool { return len(s) > 0 && len(s) <= MaxSymbolLen }

func validPrice(p int64) bool { return p > 0 && p <= MaxPrice }
func validQty(q int64) bool   { return q > 0 && q <= MaxQuantity }

// limit prices used for market orders: cross everything.
const (
	marketBuyLimit  = math.MaxInt64
	marketSellLimit = math.MinInt64
)
