// Package strategies is the strategy service's domain: strategy configs
// and their persistence, the three strategies (a market maker with
// inventory limits, an SMA-crossover trend follower, a TWAP executor), the
// runner that feeds them market data and fills, and their metrics. It knows
// nothing of gRPC: market data and orders are the MarketData and Orders
// interfaces.
package strategies

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tradsys/mesh/pkg/fixed"
)

// Type is what a strategy does.
type Type string

// Strategy types.
const (
	MarketMaking         Type = "market-making"
	TrendFollowing       Type = "trend-following"
	TWAP                 Type = "twap"
	StatisticalArbitrage Type = "statistical-arbitrage" // memory table only
)

// MemoryBytes is a strategy type's memory estimate (the seed's table).
func MemoryBytes(t Type) int64 {
	switch t {
	case MarketMaking:
		return 100 << 20
	case StatisticalArbitrage:
		return 200 << 20
	case TrendFollowing:
		return 75 << 20
	default:
		return 50 << 20
	}
}

// Component is a strategy's lazy component name.
func Component(t Type, name string) string { return "strategy/" + string(t) + "/" + name }

// Config is a strategy's saved config.
type Config struct {
	Name         string `json:"name"`
	Type         Type   `json:"type"`
	Account      string `json:"account"`
	Symbol       string `json:"symbol"`
	Connector    string `json:"connector"`
	MarketSymbol string `json:"market_symbol,omitempty"`

	MarketMaking   *MarketMakingParams   `json:"market_making,omitempty"`
	TrendFollowing *TrendFollowingParams `json:"trend_following,omitempty"`
	TWAP           *TWAPParams           `json:"twap,omitempty"`
}

// MarketSym is the connector's symbol.
func (c *Config) MarketSym() string {
	if c.MarketSymbol != "" {
		return c.MarketSymbol
	}
	return c.Symbol
}

// MarketMakingParams: quotes at reference x (1 -/+ Spread/2).
type MarketMakingParams struct {
	Spread           fixed.Decimal `json:"spread"`
	Quantity         fixed.Decimal `json:"quantity"`
	MaxInventory     fixed.Decimal `json:"max_inventory"`
	RequoteThreshold fixed.Decimal `json:"requote_threshold"`
	RequoteInterval  time.Duration `json:"requote_interval"`
}

// TrendFollowingParams: SMA crossover.
type TrendFollowingParams struct {
	FastPeriod     int           `json:"fast_period"`
	SlowPeriod     int           `json:"slow_period"`
	Quantity       fixed.Decimal `json:"quantity"`
	AllowShort     bool          `json:"allow_short"`
	SampleInterval time.Duration `json:"sample_interval"`
}

// TWAPParams: a parent order worked in equal slices.
type TWAPParams struct {
	Buy           bool          `json:"buy"`
	TotalQuantity fixed.Decimal `json:"total_quantity"`
	Duration      time.Duration `json:"duration"`
	Slices        int           `json:"slices"`
	MaxSlippage   fixed.Decimal `json:"max_slippage"`
}

// Defaults fills unset optional parameters.
func (c *Config) Defaults() {
	if p := c.MarketMaking; p != nil {
		if p.RequoteThreshold == 0 {
			p.RequoteThreshold = fixed.Must("0.001")
		}
		if p.RequoteInterval == 0 {
			p.RequoteInterval = 5 * time.Second
		}
	}
	if p := c.TrendFollowing; p != nil && p.SampleInterval == 0 {
		p.SampleInterval = time.Second
	}
	if p := c.TWAP; p != nil && p.MaxSlippage == 0 {
		p.MaxSlippage = fixed.Must("0.01")
	}
}

// Check is the domain's own validation (the API validates its fields too).
func (c *Config) Check() error {
	n := 0
	for _, set := range []bool{c.MarketMaking != nil, c.TrendFollowing != nil, c.TWAP != nil} {
		if set {
			n++
		}
	}
	ok := n == 1 && (c.Type == MarketMaking && c.MarketMaking != nil || c.Type == TrendFollowing && c.TrendFollowing != nil ||
		c.Type == TWAP && c.TWAP != nil)
	if !ok {
		return &ConfigError{Field: "type", Reason: fmt.Sprintf("type %q needs exactly its own parameters", c.Type)}
	}
	return nil
}

// Errors.
var (
	ErrNotFound = errors.New("no such strategy")
	// ErrConflict: a running strategy of that name has another config.
	ErrConflict = errors.New("a running strategy has that name with another config; stop it first")
)

// ConfigError is an invalid config, naming the field.
type ConfigError struct {
	Field, Reason string
}

func (e *ConfigError) Error() string { return "invalid config." + e.Field + ": " + e.Reason }

// NotFoundError names the strategy.
type NotFoundError struct{ Name string }

func (e *NotFoundError) Error() string { return fmt.Sprintf("strategy %q not found", e.Name) }
func (e *NotFoundError) Unwrap() error { return ErrNotFound }

// OrderRequest is an order a strategy sends.
type OrderRequest struct {
	Account, ClientOrderID, Symbol string
	Buy                            bool
	IOC                            bool // otherwise a resting limit order
	Price, Quantity                fixed.Decimal
}

// Order is orders' answer.
type Order struct {
	ID       uint64
	Status   string // accepted, partially_filled, filled, rejected, canceled
	Filled   fixed.Decimal
	Open     fixed.Decimal
	Reasons  []string
	ClientID string
}

// Done is true when the order has nothing open.
func (o Order) Done() bool {
	return o.Status == "filled" || o.Status == "rejected" || o.Status == "canceled"
}

// Update is one order update from orders' stream.
type Update struct {
	Sequence uint64
	Order    Order
	Buy      bool
	// A fill (zero quantity: not a fill).
	FillPrice, FillQuantity fixed.Decimal
}

// Instrument is a symbol's grids.
type Instrument struct {
	Tick, Lot fixed.Decimal
}

// MarketData is the connectors service.
type MarketData interface {
	// Trades calls fn with every trade price of symbol on connector until
	// ctx ends or the stream fails.
	Trades(ctx context.Context, connector, symbol string, fn func(price fixed.Decimal)) error
}

// UpdatesGapError says the orders service has no updates at the sequence
// asked for: trimmed (older than it keeps) or not yet written (its store
// is behind what the strategy saw: restored or replaced). The updates go
// on from ResumeFrom; those in between are not coming.
type UpdatesGapError struct {
	Requested, ResumeFrom uint64
	Reason                string
}

func (e *UpdatesGapError) Error() string {
	return fmt.Sprintf("order updates from sequence %d are not available (%s); going on from %d", e.Requested, e.Reason, e.ResumeFrom)
}

// Orders is the orders service (risk applies to everything sent).
type Orders interface {
	Instrument(ctx context.Context, symbol string) (Instrument, error)
	Submit(ctx context.Context, r OrderRequest) (Order, error)
	Cancel(ctx context.Context, account string, id uint64) (Order, error)
	// Updates calls fn with every update of account's orders on symbol
	// from sequence from (0: from now) until ctx ends or the stream fails.
	Updates(ctx context.Context, account, symbol string, from uint64, fn func(Update)) error
}
