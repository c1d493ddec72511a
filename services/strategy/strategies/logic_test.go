package strategies

import (
	"context"
	"sync"
	"testing"

	"github.com/tradsys/mesh/pkg/fixed"
	"go.uber.org/zap"
)

// paper is an in-memory stand-in for orders in these unit tests of the
// strategies' decisions (the services' tests run them against the real
// orders, risk and matching): IOC orders fill completely unless refuse is
// set, limit orders rest.
type paper struct {
	mu     sync.Mutex
	r      *runner
	sent   []OrderRequest
	refuse bool
	next   uint64
	seq    uint64
}

func (p *paper) Instrument(context.Context, string) (Instrument, error) {
	return Instrument{Tick: fixed.Must("0.01"), Lot: fixed.Must("0.001")}, nil
}

func (p *paper) Submit(_ context.Context, o OrderRequest) (Order, error) {
	p.mu.Lock()
	p.sent = append(p.sent, o)
	p.next++
	p.seq++
	id, seq, refuse := p.next, p.seq, p.refuse
	p.mu.Unlock()
	if !o.IOC {
		return Order{ID: id, Status: "accepted", Open: o.Quantity, ClientID: o.ClientOrderID}, nil
	}
	if refuse {
		return Order{ID: id, Status: "canceled", ClientID: o.ClientOrderID}, nil
	}
	done := Order{ID: id, Status: "filled", Filled: o.Quantity, ClientID: o.ClientOrderID}
	p.r.apply(Update{Sequence: seq, Order: done, Buy: o.Buy, FillPrice: o.Price, FillQuantity: o.Quantity})
	return done, nil
}

func (p *paper) Cancel(_ context.Context, _ string, id uint64) (Order, error) {
	return Order{ID: id, Status: "canceled"}, nil
}

func (p *paper) Updates(ctx context.Context, _, _ string, _ uint64, _ func(Update)) error {
	<-ctx.Done()
	return ctx.Err()
}

func testRunner(t *testing.T, cfg Config) (*runner, *paper) {
	t.Helper()
	cfg.Defaults()
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	p := &paper{}
	r := newRunner(cfg, nil, p, zap.NewNop(), Metrics{})
	r.inst, _ = p.Instrument(context.Background(), cfg.Symbol)
	p.r = r
	return r, p
}

func (r *runner) see(price string) {
	r.mu.Lock()
	r.last, r.haveMkt = fixed.Must(price), true
	r.m.LastPrice = r.last
	r.mu.Unlock()
}

var ctx = context.Background()

func TestTrendFollowerFollowsTheCross(t *testing.T) {
	r, p := testRunner(t, Config{Name: "sma", Type: TrendFollowing, Account: "a", Symbol: "X", Connector: "c",
		TrendFollowing: &TrendFollowingParams{FastPeriod: 2, SlowPeriod: 4, Quantity: fixed.Must("1"), AllowShort: true}})
	l := logicFor(r.cfg)
	step := func(price string) { r.see(price); l.onTick(ctx, r) }
	for _, px := range []string{"100", "100", "100", "100"} {
		step(px)
	}
	if len(p.sent) != 0 {
		t.Fatalf("flat prices sent %v", p.sent)
	}
	step("101") // fast 100.5 > slow 100.25: long 1
	if r.position() != fixed.Must("1") || len(p.sent) != 1 || !p.sent[0].Buy || !p.sent[0].IOC {
		t.Fatalf("up-cross: position %s, sent %+v", r.position().Text(), p.sent)
	}
	if p.sent[0].Price != fixed.Must("102.01") { // 101 + the 1% slippage bound, on the tick grid
		t.Fatalf("buy limit %s, want 102.01", p.sent[0].Price.Text())
	}
	step("102") // still above: nothing more
	if len(p.sent) != 1 {
		t.Fatalf("held position re-traded: %+v", p.sent)
	}
	for _, px := range []string{"98", "97"} {
		step(px)
	}
	if r.position() != fixed.Must("-1") || len(p.sent) != 2 || p.sent[1].Buy || p.sent[1].Quantity != fixed.Must("2") {
		t.Fatalf("down-cross: position %s, sent %+v", r.position().Text(), p.sent)
	}
	m := r.metrics()
	if m.OrdersSent != 2 || m.Fills != 2 || m.Bought != fixed.Must("1") || m.Sold != fixed.Must("2") {
		t.Fatalf("metrics %+v", m)
	}
}

func TestTWAPSweepsWhatIsLeftAfterTheLastSlice(t *testing.T) {
	r, p := testRunner(t, Config{Name: "tw", Type: TWAP, Account: "a", Symbol: "X", Connector: "c",
		TWAP: &TWAPParams{Buy: true, TotalQuantity: fixed.Must("1"), Slices: 2}})
	l := logicFor(r.cfg)
	r.see("10")
	p.refuse = true
	l.onPrice(ctx, r)
	l.onTick(ctx, r) // both slices miss
	p.refuse = false
	l.onTick(ctx, r) // the sweep takes it all
	l.onTick(ctx, r)
	if len(p.sent) != 3 || p.sent[2].Quantity != fixed.Must("1") || r.position() != fixed.Must("1") {
		t.Fatalf("children %+v, position %s", p.sent, r.position().Text())
	}
}

func TestTWAPSlicesAddUpToTheTotalAndMakeUpMisses(t *testing.T) {
	r, p := testRunner(t, Config{Name: "tw", Type: TWAP, Account: "a", Symbol: "X", Connector: "c",
		TWAP: &TWAPParams{Buy: false, TotalQuantity: fixed.Must("1"), Slices: 4}})
	l := logicFor(r.cfg)
	r.see("50")
	l.onPrice(ctx, r) // the first slice at the first price
	p.refuse = true
	l.onTick(ctx, r) // the second finds no liquidity
	p.refuse = false
	if len(p.sent) != 2 {
		t.Fatalf("sent %d children, want 2", len(p.sent))
	}
	l.onTick(ctx, r) // the third makes it up
	l.onTick(ctx, r)
	l.onTick(ctx, r) // done: nothing more
	l.onTick(ctx, r)
	var want []string
	for _, o := range p.sent {
		if o.Buy || !o.IOC || o.Price != fixed.Must("49.5") {
			t.Fatalf("child %+v: want IOC sells at 50 - 1%%", o)
		}
		want = append(want, o.Quantity.Text())
	}
	if got := want; len(got) != 4 || got[0] != "0.25" || got[1] != "0.25" || got[2] != "0.5" || got[3] != "0.25" {
		t.Fatalf("children %v, want 0.25 0.25(unfilled) 0.5 0.25", got)
	}
	if r.position() != fixed.Must("-1") {
		t.Fatalf("executed %s, want the whole 1 sold", r.position().Text())
	}
}

func TestMarketMakerKeepsWithinItsInventory(t *testing.T) {
	r, p := testRunner(t, Config{Name: "mm", Type: MarketMaking, Account: "a", Symbol: "X", Connector: "c",
		MarketMaking: &MarketMakingParams{Spread: fixed.Must("0.02"), Quantity: fixed.Must("1"), MaxInventory: fixed.Must("2")}})
	l := logicFor(r.cfg)
	r.see("100")
	l.onPrice(ctx, r)
	if len(p.sent) != 2 || !p.sent[0].Buy || p.sent[0].Price != fixed.Must("99") || p.sent[1].Buy || p.sent[1].Price != fixed.Must("101") {
		t.Fatalf("quotes %+v, want a bid at 99 and an ask at 101", p.sent)
	}
	// Long 2 (its limit): it quotes only the ask when it requotes.
	r.apply(Update{Sequence: 10, Order: Order{ID: 1, Status: "filled", ClientID: r.prefix + "1"}, Buy: true,
		FillPrice: fixed.Must("99"), FillQuantity: fixed.Must("2")})
	r.see("105") // moved past the threshold
	l.onPrice(ctx, r)
	last := p.sent[2:]
	if len(last) != 1 || last[0].Buy || last[0].Price != fixed.Must("106.05") {
		t.Fatalf("requote at the limit %+v, want only an ask at 106.05", last)
	}
}
