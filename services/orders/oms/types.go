// Package oms is the order management domain of the orders service:
// instruments and their grids, orders and their state machine, fills and
// positions, the durable store (bbolt, fsynced before an acknowledgement)
// and the update log. It has no gRPC types: risk and matching are reached
// through the Risk and Matching interfaces, which the server package
// implements over gRPC.
package oms

import (
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"time"

	"github.com/tradsys/mesh/pkg/fixed"
)

// Side of an order.
type Side int8

const (
	Buy Side = iota + 1
	Sell
)

func (s Side) String() string {
	switch s {
	case Buy:
		return "buy"
	case Sell:
		return "sell"
	}
	return fmt.Sprintf("Side(%d)", int8(s))
}

// OrderType is matching's order types.
type OrderType int8

const (
	Limit OrderType = iota + 1
	Market
	IOC
	FOK
	PostOnly
)

// Status is an order's state.
type Status int8

const (
	New Status = iota + 1
	Accepted
	PartiallyFilled
	Filled
	Rejected
	Canceled
)

var statusNames = [...]string{"", "NEW", "ACCEPTED", "PARTIALLY_FILLED", "FILLED", "REJECTED", "CANCELED"}

func (s Status) String() string {
	if s > 0 && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", int8(s))
}

// Open reports whether the order may still trade.
func (s Status) Open() bool { return s == New || s == Accepted || s == PartiallyFilled }

// transitions is the state machine: the only allowed moves.
var transitions = map[Status][]Status{
	New:             {Accepted, Rejected},
	Accepted:        {PartiallyFilled, Filled, Canceled},
	PartiallyFilled: {PartiallyFilled, Filled, Canceled},
}

// CanMove reports whether from -> to is a legal transition.
func CanMove(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// InstrumentStatus is whether a symbol takes orders.
type InstrumentStatus int8

const (
	Trading InstrumentStatus = iota + 1
	Halted
)

// Instrument is a symbol's grids and limits.
type Instrument struct {
	Symbol      string           `json:"symbol"`
	TickSize    fixed.Decimal    `json:"tick_size"`
	LotSize     fixed.Decimal    `json:"lot_size"`
	MinPrice    fixed.Decimal    `json:"min_price,omitempty"` // 0: one tick
	MaxPrice    fixed.Decimal    `json:"max_price,omitempty"` // 0: matching's maximum
	MinQuantity fixed.Decimal    `json:"min_quantity,omitempty"`
	MaxQuantity fixed.Decimal    `json:"max_quantity,omitempty"`
	Status      InstrumentStatus `json:"status"`
	CreatedAt   time.Time        `json:"created_at"`
	UpdatedAt   time.Time        `json:"updated_at"`
}

// Fill is one execution of an order.
type Fill struct {
	TradeSeq   uint64        `json:"trade_seq"`
	Price      fixed.Decimal `json:"price"`
	Quantity   fixed.Decimal `json:"quantity"`
	Maker      bool          `json:"maker,omitempty"`
	ExecutedAt time.Time     `json:"executed_at,omitzero"`
}

// Event is one entry of an order's history.
type Event struct {
	Seq      uint64        `json:"seq"`
	Status   Status        `json:"status"`
	Time     time.Time     `json:"time"`
	Reason   string        `json:"reason,omitempty"`
	Fill     *Fill         `json:"fill,omitempty"`
	Price    fixed.Decimal `json:"price,omitempty"` // after a replace
	Quantity fixed.Decimal `json:"quantity,omitempty"`
}

// Order is an order and its history.
type Order struct {
	ID            uint64        `json:"id"`
	ClientOrderID string        `json:"client_order_id"`
	Account       string        `json:"account"`
	Symbol        string        `json:"symbol"`
	Side          Side          `json:"side"`
	Type          OrderType     `json:"type"`
	Price         fixed.Decimal `json:"price,omitempty"`
	Quantity      fixed.Decimal `json:"quantity"`
	Filled        fixed.Decimal `json:"filled,omitempty"`
	// FilledNotional is the sum of price x quantity of the fills (for the
	// average price).
	FilledNotional fixed.Decimal `json:"filled_notional,omitempty"`
	Status         Status        `json:"status"`
	RejectReasons  []string      `json:"reject_reasons,omitempty"`
	CreatedAt      time.Time     `json:"created_at"`
	UpdatedAt      time.Time     `json:"updated_at"`
	History        []Event       `json:"history"`
	Seq            uint64        `json:"seq"`
	// Unresolved is set while matching's outcome of the submit is unknown
	// (the call failed in a way that may or may not have reached it); the
	// reconciler settles it.
	Unresolved string `json:"unresolved,omitempty"`
}

// Open is the quantity still in the book (0 once the order is done).
func (o *Order) Open() fixed.Decimal {
	if !o.Status.Open() {
		return 0
	}
	return o.Quantity - o.Filled
}

// AveragePrice is the volume-weighted fill price, truncated to 8
// fractional digits (0 before a fill).
func (o *Order) AveragePrice() fixed.Decimal {
	if o.Filled <= 0 || o.FilledNotional <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(o.FilledNotional), fixed.Scale)
	if hi >= uint64(o.Filled) {
		return 0 // cannot happen for prices within the instrument's range
	}
	q, _ := bits.Div64(hi, lo, uint64(o.Filled))
	return fixed.Decimal(q)
}

// Position is an account's holding of a symbol, from its fills.
type Position struct {
	Account        string        `json:"account"`
	Symbol         string        `json:"symbol"`
	Bought         fixed.Decimal `json:"bought"`
	Sold           fixed.Decimal `json:"sold"`
	BoughtNotional fixed.Decimal `json:"bought_notional"`
	SoldNotional   fixed.Decimal `json:"sold_notional"`
	UpdatedAt      time.Time     `json:"updated_at"`
}

// Net is bought minus sold.
func (p *Position) Net() fixed.Decimal { return p.Bought - p.Sold }

// Update is one entry of the update log (StreamOrderUpdates).
type Update struct {
	Seq     uint64 `json:"seq"`
	OrderID uint64 `json:"order_id"`
	Event   Event  `json:"event"`
	// Order is the order after the change, without history.
	Order Order `json:"order"`
}

// Domain errors; the server's error table maps them to gRPC codes.
var (
	ErrUnknownSymbol    = errors.New("unknown symbol")
	ErrSymbolExists     = errors.New("instrument already exists")
	ErrHalted           = errors.New("instrument halted")
	ErrUnknownOrder     = errors.New("unknown order")
	ErrNotOpen          = errors.New("order is not open")
	ErrWrongAccount     = errors.New("order belongs to another account")
	ErrUpdatesTrimmed   = errors.New("updates no longer available")
	ErrClosed           = errors.New("order store closed")
	ErrBadTransition    = errors.New("illegal order state transition")
	ErrInvalidPageToken = errors.New("invalid page_token")
)

// FieldError is a request value the instrument refuses: off the grid or
// outside its limits. It names the field.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return "invalid " + e.Field + ": " + e.Reason }

// ClientOrderIDReusedError is a submit whose account and client order id
// name an earlier order with other terms. It is not a retry: answering
// the earlier order would tell the caller an order it did not describe
// was placed, so it is refused, naming the fields that differ.
type ClientOrderIDReusedError struct {
	Account, ClientOrderID string
	OrderID                uint64
	Fields                 []string // request fields that differ, in request order
}

func (e *ClientOrderIDReusedError) Error() string {
	return fmt.Sprintf("client_order_id %q of account %s is already order %d, which differs in %s: a retry must repeat the submit; a new order needs a new client_order_id",
		e.ClientOrderID, e.Account, e.OrderID, strings.Join(e.Fields, ", "))
}

// AheadError is a resumption from an update sequence the service has not
// given yet (past the next one): a sequence from another store, or a
// client's mistake.
type AheadError struct{ Requested, Next uint64 }

func (e *AheadError) Error() string {
	return fmt.Sprintf("update sequence %d is not given yet; the next is %d (resume after the last update received, or from 0 for new updates only)", e.Requested, e.Next)
}

// TrimmedError is ErrUpdatesTrimmed with the oldest sequence still kept.
type TrimmedError struct{ Requested, Oldest uint64 }

func (e *TrimmedError) Error() string {
	return fmt.Sprintf("update sequence %d is no longer kept; the oldest is %d", e.Requested, e.Oldest)
}
func (e *TrimmedError) Unwrap() error { return ErrUpdatesTrimmed }
