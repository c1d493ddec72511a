package hub

import (
	"context"
	"time"
)

// Trade is one execution on matching. Price and quantity are decimals on
// the instrument's grids (ticks and lots when orders has no instrument).
type Trade struct {
	Symbol    string `json:"symbol"`
	Sequence  uint64 `json:"sequence"`
	Price     string `json:"price"`
	Quantity  string `json:"quantity"`
	TakerSide string `json:"taker_side"`
	// Time is the trade's execution time in Unix milliseconds (0: unknown).
	Time int64 `json:"time"`
}

// Level is one aggregated price level.
type Level struct {
	Price    string `json:"price"`
	Quantity string `json:"quantity"`
	Orders   int32  `json:"orders"`
}

// Book is a symbol's book depth, best first.
type Book struct {
	Symbol        string  `json:"symbol"`
	Bids          []Level `json:"bids"`
	Asks          []Level `json:"asks"`
	LastTradeSeq  uint64  `json:"last_trade_sequence"`
	RestingOrders int64   `json:"resting_orders"`
}

// Candle is one OHLCV candle from historical (decimal strings, as
// historical stores them).
type Candle struct {
	OpenTime int64  `json:"open_time"` // Unix milliseconds
	Open     string `json:"open"`
	High     string `json:"high"`
	Low      string `json:"low"`
	Close    string `json:"close"`
	Volume   string `json:"volume"`
	Trades   int64  `json:"trades"`
	Partial  bool   `json:"partial,omitempty"`
}

// OrderUpdate is an order as orders reports it after a change.
type OrderUpdate struct {
	OrderID       string `json:"order_id"`
	ClientOrderID string `json:"client_order_id,omitempty"`
	Account       string `json:"account"`
	Symbol        string `json:"symbol"`
	Side          string `json:"side"`
	Type          string `json:"type,omitempty"`
	Price         string `json:"price,omitempty"`
	Quantity      string `json:"quantity"`
	Filled        string `json:"filled"`
	Open          string `json:"open"`
	AvgPrice      string `json:"average_fill_price,omitempty"`
	// Status: new, accepted, partially_filled, filled, rejected, canceled.
	Status  string   `json:"status"`
	Reasons []string `json:"reject_reasons,omitempty"`
	// Event is the change (its reason: "replaced", a cancel reason, "fill").
	Event string `json:"event,omitempty"`
	// FillPrice and FillQuantity are set when the change is a fill.
	FillPrice    string `json:"fill_price,omitempty"`
	FillQuantity string `json:"fill_quantity,omitempty"`
	// Sequence is orders' update sequence of the change.
	Sequence uint64 `json:"sequence,omitempty"`
	// Time in Unix milliseconds.
	Time int64 `json:"time"`
}

// Component is one registered component of the mesh.
type Component struct {
	Name        string `json:"name"`
	State       string `json:"state"`
	MemoryBytes int64  `json:"memory_bytes"`
	Priority    int32  `json:"priority"`
	Cause       string `json:"cause,omitempty"`
	Endpoint    string `json:"endpoint,omitempty"`
}

// Lease is one granted memory lease.
type Lease struct {
	Component   string `json:"component"`
	Owner       string `json:"owner"`
	Bytes       int64  `json:"bytes"`
	Priority    int32  `json:"priority"`
	Preemptible bool   `json:"preemptible"`
}

// Lock is one held lock.
type Lock struct {
	Name         string   `json:"name"`
	Owner        string   `json:"owner"`
	FencingToken uint64   `json:"fencing_token"`
	Waiters      []string `json:"waiters,omitempty"`
}

// MeshState is the mesh at a glance.
type MeshState struct {
	BudgetBytes int64       `json:"budget_bytes"`
	UsedBytes   int64       `json:"used_bytes"`
	Leader      string      `json:"leader"`
	Sessions    int32       `json:"sessions"`
	Waiters     int32       `json:"waiters"`
	Components  []Component `json:"components"`
	Leases      []Lease     `json:"leases"`
	Locks       []Lock      `json:"locks"`
	// LastEvent is the newest Watch event, for people ("GRANTED matching ...").
	LastEvent string    `json:"last_event,omitempty"`
	At        time.Time `json:"at"`
}

// MarketData is matching and historical, as the hub needs them.
type MarketData interface {
	// Trades calls fn for every trade of symbol from sequence from (0: the
	// next one) until ctx ends or the stream fails.
	Trades(ctx context.Context, symbol string, from uint64, fn func(Trade)) error
	Book(ctx context.Context, symbol string, depth int) (Book, error)
	// Candles are the last n candles of symbol at interval, oldest first,
	// including the current partial one.
	Candles(ctx context.Context, symbol, interval string, n int) ([]Candle, error)
}

// NewOrderFor is a submit on behalf of an account.
type NewOrderFor struct {
	NewOrder
	Account string
}

// Orders is the orders service (which applies risk), as the hub needs it.
// Each call acts for account only; orders refuses a call about another
// account's order (CodeForbidden or CodeNotFound).
type Orders interface {
	Submit(ctx context.Context, o NewOrderFor) (OrderUpdate, error)
	Replace(ctx context.Context, account, orderID, price, quantity string) (OrderUpdate, error)
	Cancel(ctx context.Context, account, orderID string) (OrderUpdate, error)
	// Updates calls opened once the stream is open, then fn for every
	// update of account's orders until ctx ends or the stream fails.
	Updates(ctx context.Context, account string, opened func(), fn func(OrderUpdate)) error
}

// Mesh is the coordinator, as the page needs it.
type Mesh interface {
	Snapshot(ctx context.Context) (MeshState, error)
	// Watch calls fn with a one-line description of every event until ctx
	// ends or the stream fails.
	Watch(ctx context.Context, fn func(event string)) error
}
