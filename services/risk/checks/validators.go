package checks

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/tradsys/mesh/pkg/fixed"
)

// Validator names, in the order ValidateOrder runs them.
const (
	MaxOrderQuantity = "max-order-quantity"
	MaxNotional      = "max-notional"
	PriceBand        = "price-band"
	PositionLimit    = "position-limit"
	OrderRate        = "order-rate"
)

// Names lists every validator in run order.
var Names = []string{MaxOrderQuantity, MaxNotional, PriceBand, PositionLimit, OrderRate}

// Failure codes.
const (
	CodeLimitExceeded = "LIMIT_EXCEEDED"
	CodeRateLimited   = "RATE_LIMITED"
	CodeOutsideBand   = "PRICE_OUTSIDE_BAND"
	CodeUnavailable   = "VALIDATOR_UNAVAILABLE"
	// A market order under a notional limit with no trade yet to value it.
	CodeNoReferencePrice = "NO_REFERENCE_PRICE"
)

// Order is what is checked.
type Order struct {
	Account, Symbol string
	Buy             bool
	Price           fixed.Decimal // 0: market
	Quantity        fixed.Decimal
	Position        fixed.Decimal // net, signed
	OpenQuantity    fixed.Decimal // open orders on the same side
}

// Result is one validator's verdict.
type Result struct {
	Validator string
	Passed    bool
	Reason    string
	Code      string
}

// Checker runs the validators' logic; the server wraps each in its leased
// component.
type Checker struct {
	Trades *LastTrades
	mu     sync.Mutex
	bucket map[string]*tokenBucket // per account
	now    func() time.Time
}

// NewChecker returns a Checker reading last trades from trades.
func NewChecker(trades *LastTrades) *Checker {
	return &Checker{Trades: trades, bucket: map[string]*tokenBucket{}, now: time.Now}
}

func pass(name string) Result { return Result{Validator: name, Passed: true} }

func fail(name, code, format string, args ...any) Result {
	return Result{Validator: name, Code: code, Reason: fmt.Sprintf(format, args...)}
}

// Check runs one validator on o under limits l.
func (c *Checker) Check(name string, o Order, l Limits) Result {
	switch name {
	case MaxOrderQuantity:
		if l.MaxOrderQuantity > 0 && o.Quantity > l.MaxOrderQuantity {
			return fail(name, CodeLimitExceeded, "quantity %s is above the account's maximum order quantity %s", o.Quantity.Text(), l.MaxOrderQuantity.Text())
		}
	case MaxNotional:
		price := o.Price
		if price == 0 {
			price, _ = c.Trades.Last(o.Symbol)
		}
		if l.MaxNotional > 0 && price == 0 {
			// A market order with nothing to value it by: passing it
			// would leave the limit unchecked for any quantity.
			return fail(name, CodeNoReferencePrice, "a market order cannot be valued against the account's maximum notional %s: no trade in %s yet; send a limit order",
				l.MaxNotional.Text(), o.Symbol)
		}
		if l.MaxNotional > 0 {
			n, ok := price.Mul(o.Quantity)
			if !ok || n > l.MaxNotional {
				return fail(name, CodeLimitExceeded, "notional %s x %s = %s is above the account's maximum notional %s",
					price.Text(), o.Quantity.Text(), notional(n, ok), l.MaxNotional.Text())
			}
		}
	case PriceBand:
		last, ok := c.Trades.Last(o.Symbol)
		if l.PriceBand > 0 && ok && o.Price > 0 {
			width, _ := last.Mul(l.PriceBand)
			lo, hi := last-width, last+width
			if o.Price < lo || o.Price > hi {
				return fail(name, CodeOutsideBand, "price %s is outside %s..%s (last trade %s +/- %s%%)", o.Price.Text(), lo.Text(), hi.Text(),
					last.Text(), (l.PriceBand * 100).Text())
			}
		}
	case PositionLimit:
		if l.MaxPosition > 0 {
			exposure := o.OpenQuantity + o.Quantity
			after := o.Position + exposure
			if !o.Buy {
				after = o.Position - exposure
			}
			if after > l.MaxPosition || after < -l.MaxPosition {
				return fail(name, CodeLimitExceeded, "position %s with open orders and this order would be %s, beyond the limit of +/-%s in %s",
					o.Position.Text(), after.Text(), l.MaxPosition.Text(), o.Symbol)
			}
		}
	case OrderRate:
		if l.OrdersPerSecond > 0 {
			burst := float64(max(l.OrderBurst, 1))
			c.mu.Lock()
			b := c.bucket[o.Account]
			if b == nil {
				b = &tokenBucket{tokens: burst, at: c.now()}
				c.bucket[o.Account] = b
			}
			ok := b.take(c.now(), l.OrdersPerSecond, burst)
			c.mu.Unlock()
			if !ok {
				return fail(name, CodeRateLimited, "more than %g orders per second (burst %g) for account %s", l.OrdersPerSecond, burst, o.Account)
			}
		}
	default:
		return fail(name, CodeUnavailable, "unknown validator %q", name)
	}
	return pass(name)
}

func notional(n fixed.Decimal, ok bool) string {
	if !ok {
		return "(overflow)"
	}
	return n.Text()
}

// What a validator holds, per entry (measured: TestValidatorUsageMatchesTheHeap):
// the order rate a token bucket per account (the bucket, its map slot and
// the account's name), the price band a last price per symbol (its map slot
// and the symbol's name).
const (
	rateAccountBytes = 86
	lastTradeBytes   = 38
)

// RateBytes is what the order-rate validator holds: a bucket per account
// seen since it was loaded.
func (c *Checker) RateBytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := int64(0)
	for a := range c.bucket {
		n += rateAccountBytes + int64(len(a))
	}
	return n
}

// ForgetRates drops the order-rate buckets (the validator was unloaded).
func (c *Checker) ForgetRates() {
	c.mu.Lock()
	c.bucket = map[string]*tokenBucket{}
	c.mu.Unlock()
}

type tokenBucket struct {
	tokens      float64
	at          time.Time
	rate, burst float64 // the account's limits at its last order
}

// ForgetFullBuckets drops the order-rate buckets that have refilled to
// their burst: such a bucket is what a new one would be, so nothing is
// lost (the next order of the account starts a full bucket again). The
// order-rate validator sheds its memory that way when its lease may not
// grow. It returns how many it dropped.
func (c *Checker) ForgetFullBuckets() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	n := 0
	for a, b := range c.bucket {
		if b.refilled(now) >= b.burst {
			delete(c.bucket, a)
			n++
		}
	}
	return n
}

// refilled is the bucket's tokens at now, before any cap, at the rate of
// its last order.
func (b *tokenBucket) refilled(now time.Time) float64 {
	return b.tokens + now.Sub(b.at).Seconds()*b.rate
}

// take refills the bucket at the account's current limits (kept for
// ForgetFullBuckets) and takes a token if there is one.
func (b *tokenBucket) take(now time.Time, rate, burst float64) bool {
	b.rate, b.burst = rate, burst
	b.tokens = math.Min(burst, b.refilled(now))
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// LastTrades is the last trade price per symbol (fed from matching's trade
// stream by the price-band validator).
type LastTrades struct {
	mu   sync.RWMutex
	last map[string]fixed.Decimal
}

// NewLastTrades returns an empty book.
func NewLastTrades() *LastTrades { return &LastTrades{last: map[string]fixed.Decimal{}} }

// Set records a trade price.
func (t *LastTrades) Set(symbol string, price fixed.Decimal) {
	t.mu.Lock()
	t.last[symbol] = price
	t.mu.Unlock()
}

// Last returns the last trade price (ok false: none seen).
func (t *LastTrades) Last(symbol string) (fixed.Decimal, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	p, ok := t.last[symbol]
	return p, ok
}

// Bytes is what the book holds: a price per symbol.
func (t *LastTrades) Bytes() int64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := int64(0)
	for s := range t.last {
		n += lastTradeBytes + int64(len(s))
	}
	return n
}

// Reset forgets every price.
func (t *LastTrades) Reset() {
	t.mu.Lock()
	t.last = map[string]fixed.Decimal{}
	t.mu.Unlock()
}
