package strategies

import (
	"context"
	"time"
	"unsafe"

	"github.com/tradsys/mesh/pkg/fixed"
)

func logicFor(c Config) logic {
	switch c.Type {
	case MarketMaking:
		return &marketMaker{p: *c.MarketMaking}
	case TrendFollowing:
		return &trendFollower{p: *c.TrendFollowing}
	default:
		return &twap{p: *c.TWAP}
	}
}

// marketMaker quotes one bid and one ask around the last trade price and
// requotes when the price moves past the threshold or the quotes are old.
// It does not quote the side that would take its position beyond
// MaxInventory.
type marketMaker struct {
	p        MarketMakingParams
	quotedAt fixed.Decimal // reference of the live quotes (0: none)
	when     time.Time
	bid, ask uint64
}

func (m *marketMaker) tick() time.Duration { return min(m.p.RequoteInterval, time.Second) }

func (m *marketMaker) onPrice(ctx context.Context, r *runner) { m.maybeQuote(ctx, r, false) }

func (m *marketMaker) onTick(ctx context.Context, r *runner) {
	m.maybeQuote(ctx, r, time.Since(m.when) >= m.p.RequoteInterval)
}

func (m *marketMaker) maybeQuote(ctx context.Context, r *runner, stale bool) {
	ref, ok := r.price()
	if !ok {
		return
	}
	open := map[uint64]bool{}
	for _, id := range r.openIDs() {
		open[id] = true
	}
	filled := m.quotedAt != 0 && (!open[m.bid] && m.bid != 0 || !open[m.ask] && m.ask != 0)
	moved := m.quotedAt == 0
	if !moved {
		diff := ref - m.quotedAt
		if diff < 0 {
			diff = -diff
		}
		limit, _ := m.quotedAt.Mul(m.p.RequoteThreshold)
		moved = diff > limit
	}
	if !moved && !stale && !filled {
		return
	}
	r.cancelAll(ctx)
	m.bid, m.ask = 0, 0
	half := m.p.Spread / 2
	pos := r.position()
	if pos+m.p.Quantity <= m.p.MaxInventory {
		if o, ok := r.submit(ctx, true, false, scaleBy(ref, -half), m.p.Quantity); ok && !o.Done() {
			m.bid = o.ID
		}
	}
	if pos-m.p.Quantity >= -m.p.MaxInventory {
		if o, ok := r.submit(ctx, false, false, scaleBy(ref, half), m.p.Quantity); ok && !o.Done() {
			m.ask = o.ID
		}
	}
	m.quotedAt, m.when = ref, time.Now()
}

// trendFollower samples the last price every SampleInterval and holds
// +Quantity while the fast SMA is above the slow one, -Quantity (or
// nothing) while below, trading the difference with IOC orders.
type trendFollower struct {
	p       TrendFollowingParams
	samples []fixed.Decimal
	// held is its position as its orders' answers tell it (the update
	// stream may lag a tick); it starts from the metrics' position.
	held    fixed.Decimal
	started bool
}

func (t *trendFollower) tick() time.Duration { return t.p.SampleInterval }

// stateBytes is its window of samples.
func (t *trendFollower) stateBytes() int64 {
	return int64(cap(t.samples)) * int64(unsafe.Sizeof(fixed.Decimal(0)))
}

func (t *trendFollower) onPrice(context.Context, *runner) {}

func sma(xs []fixed.Decimal) fixed.Decimal {
	var sum fixed.Decimal
	for _, x := range xs {
		sum += x
	}
	return sum / fixed.Decimal(len(xs))
}

func (t *trendFollower) onTick(ctx context.Context, r *runner) {
	p, ok := r.price()
	if !ok {
		return
	}
	t.samples = append(t.samples, p)
	if len(t.samples) > t.p.SlowPeriod {
		t.samples = t.samples[len(t.samples)-t.p.SlowPeriod:]
	}
	if len(t.samples) < t.p.SlowPeriod {
		return
	}
	fast, slow := sma(t.samples[len(t.samples)-t.p.FastPeriod:]), sma(t.samples)
	var target fixed.Decimal
	switch {
	case fast > slow:
		target = t.p.Quantity
	case fast < slow && t.p.AllowShort:
		target = -t.p.Quantity
	case fast == slow:
		return
	}
	if !t.started {
		t.held, t.started = r.position(), true
	}
	diff := target - t.held
	if diff == 0 || len(r.openIDs()) > 0 {
		return
	}
	slip := fixed.Must("0.01")
	if diff > 0 {
		if o, ok := r.submit(ctx, true, true, scaleBy(p, slip), diff); ok {
			t.held += o.Filled
		}
	} else if o, ok := r.submit(ctx, false, true, scaleBy(p, -slip), -diff); ok {
		t.held -= o.Filled
	}
}

// twap sends the parent quantity in Slices IOC children, one every
// Duration/Slices; each child asks for what keeps the executed quantity on
// the schedule (a child that did not fill is made up by the next), and
// after the last slice it keeps sweeping what is left for up to Slices
// more ticks. Executed quantity is counted from the children's answers
// (not the update stream, which may lag), so it never sends twice for one
// fill.
type twap struct {
	p        TWAPParams
	sent     int
	executed fixed.Decimal
}

func (t *twap) tick() time.Duration {
	return max(t.p.Duration/time.Duration(t.p.Slices), 10*time.Millisecond)
}

func (t *twap) onPrice(ctx context.Context, r *runner) {
	if t.sent == 0 {
		t.onTick(ctx, r) // the first slice as soon as there is a price
	}
}

func (t *twap) onTick(ctx context.Context, r *runner) {
	if t.sent >= 2*t.p.Slices || t.executed >= t.p.TotalQuantity {
		return
	}
	p, ok := r.price()
	if !ok {
		return
	}
	t.sent++
	target := t.p.TotalQuantity / fixed.Decimal(t.p.Slices) * fixed.Decimal(t.sent)
	if t.sent >= t.p.Slices {
		target = t.p.TotalQuantity
	}
	want := target - t.executed
	if want <= 0 {
		return
	}
	limit := scaleBy(p, t.p.MaxSlippage)
	if !t.p.Buy {
		limit = scaleBy(p, -t.p.MaxSlippage)
	}
	if o, ok := r.submit(ctx, t.p.Buy, true, limit, want); ok {
		t.executed += o.Filled
	}
}
