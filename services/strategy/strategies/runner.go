package strategies

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cenkalti/backoff/v5"
	"github.com/tradsys/mesh/pkg/fixed"
	"go.uber.org/zap"
)

// Metrics are a strategy's counters, from its own orders and fills.
type Metrics struct {
	OrdersSent     uint64 // orders orders recorded (accepted or rejected)
	OrdersRejected uint64 // of OrdersSent, refused by risk or matching
	OrderErrors    uint64 // submits that failed as calls: nothing recorded
	CancelsSent    uint64
	Fills          uint64
	Bought, Sold   fixed.Decimal
	Position       fixed.Decimal // Bought - Sold
	Cash           fixed.Decimal // sold notional - bought notional
	LastPrice      fixed.Decimal
	PnL            fixed.Decimal // Cash + Position x LastPrice
	MarketEvents   uint64
	UpdatedAt      time.Time
	// LastUpdate is the newest order update applied (resume point).
	LastUpdate uint64
}

// logic is one strategy's decisions; the runner calls it from one
// goroutine.
type logic interface {
	onPrice(ctx context.Context, r *runner)
	onTick(ctx context.Context, r *runner)
	tick() time.Duration
}

// runner runs one strategy: market data and order updates in, orders out.
type runner struct {
	cfg    Config
	md     MarketData
	orders Orders
	log    *zap.Logger
	inst   Instrument
	prefix string // client order ids of this strategy start with it

	mu      sync.Mutex
	m       Metrics
	open    map[uint64]Order // its orders that may still rest
	seq     int
	last    fixed.Decimal
	haveMkt bool

	// logicBytes is what its logic holds (sized), set by the loop.
	logicBytes atomic.Int64

	// streamErrs is why each of its streams (by what it carries) last
	// failed, until it delivers again: the strategy runs on, retrying,
	// and its status says what it waits for (guarded by mu).
	streamErrs map[string]string
}

// sized is a logic that holds state worth counting (a window of samples).
type sized interface{ stateBytes() int64 }

// What a running strategy holds, structure by structure (usage): the
// runner, the stacks of its three goroutines (market data, order updates,
// the decision loop) at the size they grow to, the receive window of its
// two streams, each open order with its map slot and strings, and its
// logic's state.
const (
	runnerBytes    = int64(unsafe.Sizeof(runner{}))
	goroutineBytes = 8 << 10
	streamBytes    = 64 << 10
	openOrderBytes = int64(unsafe.Sizeof(Order{})) + 48
)

// usage is what the strategy holds now (its component's Usage).
func (r *runner) usage() int64 {
	r.mu.Lock()
	n := runnerBytes + 3*goroutineBytes + 2*streamBytes + int64(len(r.prefix))
	for _, o := range r.open {
		n += openOrderBytes + int64(len(o.ClientID)+len(o.Status))
		for _, why := range o.Reasons {
			n += 16 + int64(len(why))
		}
	}
	r.mu.Unlock()
	return n + r.logicBytes.Load()
}

func newRunner(cfg Config, md MarketData, orders Orders, log *zap.Logger, m Metrics) *runner {
	return &runner{cfg: cfg, md: md, orders: orders, log: log, m: m, open: map[uint64]Order{},
		prefix: "s." + cfg.Name + ".", streamErrs: map[string]string{}}
}

func (r *runner) metrics() Metrics {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m
}

// run trades until ctx ends; then it cancels what it left open.
func (r *runner) run(ctx context.Context, l logic) error {
	inst, err := r.orders.Instrument(ctx, r.cfg.Symbol)
	if err != nil {
		return fmt.Errorf("instrument %s: %w", r.cfg.Symbol, err)
	}
	r.inst = inst
	// A run's client order ids are unique across restarts.
	r.prefix = fmt.Sprintf("s.%s.%d.", r.cfg.Name, time.Now().UnixNano())
	prices := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		r.retry(ctx, "market data", func() error {
			return r.md.Trades(ctx, r.cfg.Connector, r.cfg.MarketSym(), func(p fixed.Decimal) {
				r.mu.Lock()
				delete(r.streamErrs, "market data")
				r.last, r.haveMkt = p, true
				r.m.LastPrice = p
				r.m.MarketEvents++
				r.markLocked()
				r.mu.Unlock()
				select {
				case prices <- struct{}{}:
				default: // the strategy sees the newest price when it gets to it
				}
			})
		})
	}()
	go func() {
		defer wg.Done()
		r.retry(ctx, "order updates", func() error {
			r.mu.Lock()
			from := r.m.LastUpdate + 1
			if r.m.LastUpdate == 0 {
				from = 0
			}
			r.mu.Unlock()
			err := r.orders.Updates(ctx, r.cfg.Account, r.cfg.Symbol, from, r.apply)
			var gap *UpdatesGapError
			if errors.As(err, &gap) && gap.ResumeFrom > 1 {
				// Asking again from the same sequence would fail forever:
				// go on from where the orders service can, and say what
				// was skipped (the error stays shown until updates flow).
				r.log.Error("order updates skipped", zap.Uint64("from_sequence", gap.Requested),
					zap.Uint64("resume_from", gap.ResumeFrom), zap.String("reason", gap.Reason))
				r.mu.Lock()
				r.m.LastUpdate = gap.ResumeFrom - 1
				r.mu.Unlock()
			}
			return err
		})
	}()
	tick := time.NewTicker(l.tick())
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-prices:
			l.onPrice(ctx, r)
		case <-tick.C:
			l.onTick(ctx, r)
		}
		if z, ok := l.(sized); ok {
			r.logicBytes.Store(z.stateBytes())
		}
	}
	wg.Wait()
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.cancelAll(cctx)
	return nil
}

// retry runs the stream f until ctx ends, with a growing pause after each
// failure, which it keeps as the stream's error (streamErrs) meanwhile.
func (r *runner) retry(ctx context.Context, what string, f func() error) {
	schedule := &backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, Multiplier: 2, MaxInterval: 5 * time.Second}
	for ctx.Err() == nil {
		err := f()
		if ctx.Err() != nil {
			return
		}
		wait := schedule.NextBackOff()
		r.mu.Lock()
		r.streamErrs[what] = fmt.Sprintf("%s stream failed (retrying): %v", what, err)
		r.mu.Unlock()
		r.log.Warn(what+" stream failed; retrying", zap.Error(err), zap.Duration("backoff", wait))
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// streamError is why its streams are failing ("" while they deliver).
func (r *runner) streamError() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, what := range []string{"market data", "order updates"} {
		if e := r.streamErrs[what]; e != "" {
			out = append(out, e)
		}
	}
	return strings.Join(out, "; ")
}

// apply takes one order update: fills of this strategy's orders count.
func (r *runner) apply(u Update) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.streamErrs, "order updates")
	if u.Sequence <= r.m.LastUpdate {
		return // seen before a resume
	}
	r.m.LastUpdate = u.Sequence
	if !strings.HasPrefix(u.Order.ClientID, "s."+r.cfg.Name+".") {
		return // another strategy's or a person's order on the account
	}
	if u.Order.Done() {
		delete(r.open, u.Order.ID)
	} else if _, ok := r.open[u.Order.ID]; ok {
		r.open[u.Order.ID] = u.Order
	}
	if u.FillQuantity <= 0 {
		return
	}
	notional, _ := u.FillPrice.Mul(u.FillQuantity)
	r.m.Fills++
	if u.Buy {
		r.m.Bought += u.FillQuantity
		r.m.Position += u.FillQuantity
		r.m.Cash -= notional
	} else {
		r.m.Sold += u.FillQuantity
		r.m.Position -= u.FillQuantity
		r.m.Cash += notional
	}
	r.markLocked()
}

func (r *runner) markLocked() {
	value, _ := r.m.Position.Mul(r.m.LastPrice)
	r.m.PnL = r.m.Cash + value
	r.m.UpdatedAt = time.Now()
}

// price is the last market price; ok false before the first.
func (r *runner) price() (fixed.Decimal, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last, r.haveMkt
}

func (r *runner) position() fixed.Decimal {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m.Position
}

// roundPrice puts p on the tick grid: down for buys, up for sells (never
// more aggressive than asked).
func (r *runner) roundPrice(p fixed.Decimal, buy bool) fixed.Decimal {
	t := r.inst.Tick
	if t <= 0 {
		return p
	}
	q := p / t * t
	if !buy && q < p {
		q += t
	}
	return max(q, t)
}

// roundQty puts q on the lot grid, down.
func (r *runner) roundQty(q fixed.Decimal) fixed.Decimal {
	if r.inst.Lot <= 0 {
		return q
	}
	return q / r.inst.Lot * r.inst.Lot
}

// scaleBy is p x (1 + f) (f may be negative).
func scaleBy(p, f fixed.Decimal) fixed.Decimal {
	d, _ := p.Mul(f)
	return p + d
}

// submit sends one order through orders; the answer is recorded.
func (r *runner) submit(ctx context.Context, buy, ioc bool, price, qty fixed.Decimal) (Order, bool) {
	price, qty = r.roundPrice(price, buy), r.roundQty(qty)
	if qty <= 0 {
		return Order{}, false
	}
	r.mu.Lock()
	r.seq++
	id := fmt.Sprintf("%s%d", r.prefix, r.seq)
	r.mu.Unlock()
	req := OrderRequest{Account: r.cfg.Account, ClientOrderID: id, Symbol: r.cfg.Symbol, Buy: buy, IOC: ioc, Price: price, Quantity: qty}
	// Not cut short by the strategy stopping: an order orders may have
	// recorded must be known (and so cancelled at the stop). A failed call
	// is asked once more with the same client order id, which orders
	// answers with the order it recorded, if it did.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	o, err := r.orders.Submit(cctx, req)
	if err != nil && cctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		o, err = r.orders.Submit(cctx, req)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		// Orders refused the call itself (or could not be reached):
		// nothing was recorded, so it is not an order sent.
		r.m.OrderErrors++
		r.log.Warn("order call failed", zap.String("client_order_id", id), zap.Error(err))
		return o, false
	}
	r.m.OrdersSent++
	if o.Status == "rejected" {
		r.m.OrdersRejected++
		r.log.Info("order rejected", zap.String("client_order_id", id), zap.Strings("reasons", o.Reasons))
		return o, false
	}
	if !o.Done() {
		r.open[o.ID] = o
	}
	return o, true
}

func (r *runner) cancel(ctx context.Context, id uint64) {
	r.mu.Lock()
	r.m.CancelsSent++
	r.mu.Unlock()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	o, err := r.orders.Cancel(cctx, r.cfg.Account, id)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil && !o.Done() {
		return
	}
	delete(r.open, id) // done, or gone (not found: filled meanwhile)
}

func (r *runner) openIDs() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]uint64, 0, len(r.open))
	for id := range r.open {
		ids = append(ids, id)
	}
	return ids
}

func (r *runner) cancelAll(ctx context.Context) {
	for _, id := range r.openIDs() {
		r.cancel(ctx, id)
	}
}
