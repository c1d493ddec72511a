package oms

import (
	"context"
	"errors"
	"time"

	"github.com/tradsys/mesh/pkg/fixed"
)

// RiskCheck is what the risk service is asked about an order.
type RiskCheck struct {
	OrderID         uint64
	Account, Symbol string
	Side            Side
	Price           fixed.Decimal // 0 for market orders
	Quantity        fixed.Decimal
	TickSize        fixed.Decimal
	LotSize         fixed.Decimal
	Position        fixed.Decimal // net, signed
	OpenQuantity    fixed.Decimal // open orders on the same side
}

// Risk checks orders (the risk service).
type Risk interface {
	// Validate answers nil reasons when approved, or every failed check.
	// An error means risk could not answer: the order is rejected with it.
	Validate(ctx context.Context, c RiskCheck) (failures []string, err error)
}

// MatchOrder is an order as matching takes it: ticks and lots.
type MatchOrder struct {
	Symbol  string
	ID      uint64
	Account uint64
	Side    Side
	Type    OrderType
	Ticks   int64 // 0 for market orders
	Lots    int64
}

// Trade is one of matching's trades.
type Trade struct {
	Symbol      string
	Seq         uint64
	Ticks, Lots int64
	TakerID     uint64
	MakerID     uint64
	TakerSide   Side
	// Matching's account numbers of the two sides (0: not known). Orders
	// numbers its accounts in matching (txn.account); a side whose number
	// is not its order's account's is another client's order with the
	// same id.
	TakerAccount, MakerAccount uint64
	ExecutedAt                 time.Time
}

// CancelCause says why matching removed quantity.
type CancelCause int8

const (
	CancelUser CancelCause = iota + 1
	CancelSelfTrade
	CancelUnfilled
)

// Cancellation is quantity matching removed from an order.
type Cancellation struct {
	OrderID uint64
	Lots    int64
	Cause   CancelCause
}

// Execution is what matching did with a submit or replace.
type Execution struct {
	Trades        []Trade
	Cancellations []Cancellation
	RestingLots   int64
}

// MatchState is what matching knows of an order it was sent: resting in
// the book, or finished (filled, or cancelled with a cause) while it still
// remembers finished orders.
type MatchState struct {
	Resting   bool
	Cancelled bool
	Cause     CancelCause // when Cancelled
	// Account is the matching account number of the order matching has
	// under the id (0: not said): another client of matching (a tool)
	// may have used an id this service gives its own orders.
	Account uint64
}

// Matching is the matching engine (the matching service).
type Matching interface {
	Submit(ctx context.Context, o MatchOrder) (Execution, error)
	Cancel(ctx context.Context, symbol string, id uint64) (cancelledLots int64, err error)
	Replace(ctx context.Context, symbol string, id uint64, ticks, lots int64) (Execution, error)
	// State is what matching knows of order id: ErrNotFound when it has
	// neither it in the book nor a memory of it finishing.
	State(ctx context.Context, symbol string, id uint64) (MatchState, error)
	// LastTradeSeq is the symbol's newest trade sequence (0: none).
	LastTradeSeq(ctx context.Context, symbol string) (uint64, error)
	// Trades streams the symbol's trades from sequence from, calling fn
	// for each, until ctx ends or the stream fails.
	Trades(ctx context.Context, symbol string, from uint64, fn func(Trade) error) error
}

// Errors a Matching implementation returns to say what is known of a call
// that failed. Any other error is ambiguous: the call may or may not have
// been applied, and the order is settled by the reconciler.
var (
	// ErrNotSent: the call never reached matching (not applied).
	ErrNotSent = errors.New("not sent to matching")
	// ErrNotFound: no such resting order in matching.
	ErrNotFound = errors.New("not in matching's book")
)

// RefusedError is matching's definite refusal of an order (FOK not
// fillable, post-only would cross, ...): nothing was applied.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return "matching refused the order: " + e.Reason }

// OutOfRangeError says matching no longer keeps trades from Requested.
type OutOfRangeError struct{ Requested, Oldest uint64 }

func (e *OutOfRangeError) Error() string { return "trades no longer kept by matching" }
