package feeds

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"time"
)

// VenueSimulator is the default Venue of simulated events.
const VenueSimulator = "sim"

// SimSymbol configures one simulated instrument.
type SimSymbol struct {
	Symbol     string
	StartPrice Decimal // default 100
	TickSize   Decimal // default 0.01
	LotSize    Decimal // default 0.0001; trade and level sizes are multiples
}

// SimulatorConfig configures a Simulator.
type SimulatorConfig struct {
	Symbols []SimSymbol
	Seed    uint64
	// Rate is events per second per symbol (0 = as fast as possible).
	Rate float64
	// TradeRatio is the fraction of events that are trades (the rest are
	// book updates); default 0.5. Use a negative value for "no trades".
	TradeRatio float64
	// BookDepth is the number of levels per side in the initial snapshot
	// (default 10); incremental updates change 1-3 levels.
	BookDepth int
	// MaxEvents stops each symbol after this many events (0 = unbounded).
	MaxEvents int
	// StartTime is the timestamp of the first event; event i of a symbol is
	// stamped StartTime + i/Rate (or + i ms when Rate is 0). Zero means
	// time.Now() at Start. Set it to make timestamps reproducible too.
	StartTime time.Time
	Venue     string // default "sim"
	Name      string // default "simulator"
}

// Simulator is a Connector generating random-walk order flow. Each symbol
// has its own PCG generator seeded from (Seed, symbol), so the event
// sequence of a symbol (prices, sizes, sides, ids, book levels and, with
// StartTime set, timestamps) depends only on Seed and that symbol's
// configuration — not on scheduling or on the other symbols.
//
// Per symbol it first publishes a book snapshot (BookDepth levels around
// StartPrice), then events: a trade (the mid moves by a random walk of
// -2..+2 ticks; the trade prints at the best bid or ask for the side) or a
// book update (1-3 levels of either side get a new size, 0 deleting
// levels beyond the top).
type Simulator struct {
	cfg SimulatorConfig
	c   counters
	lc  lifecycle
}

// NewSimulator validates cfg and returns a Simulator.
func NewSimulator(cfg SimulatorConfig) (*Simulator, error) {
	if len(cfg.Symbols) == 0 {
		return nil, errors.New("feeds: simulator: no symbols")
	}
	seen := map[string]bool{}
	for i := range cfg.Symbols {
		s := &cfg.Symbols[i]
		if s.Symbol == "" {
			return nil, fmt.Errorf("feeds: simulator: symbol %d has no name", i)
		}
		s.Symbol = normSymbol(s.Symbol)
		if seen[s.Symbol] {
			return nil, fmt.Errorf("feeds: simulator: duplicate symbol %s", s.Symbol)
		}
		seen[s.Symbol] = true
		if s.StartPrice == 0 {
			s.StartPrice = DecimalFromInt(100)
		}
		if s.TickSize == 0 {
			s.TickSize = MustDecimal("0.01")
		}
		if s.LotSize == 0 {
			s.LotSize = MustDecimal("0.0001")
		}
		if s.StartPrice < 0 || s.TickSize < 0 || s.LotSize < 0 {
			return nil, fmt.Errorf("feeds: simulator: %s: negative price, tick or lot", s.Symbol)
		}
	}
	if cfg.Rate < 0 {
		return nil, errors.New("feeds: simulator: negative rate")
	}
	if cfg.TradeRatio == 0 {
		cfg.TradeRatio = 0.5
	}
	if cfg.BookDepth <= 0 {
		cfg.BookDepth = 10
	}
	if cfg.Venue == "" {
		cfg.Venue = VenueSimulator
	}
	if cfg.Name == "" {
		cfg.Name = "simulator"
	}
	return &Simulator{cfg: cfg}, nil
}

func (s *Simulator) Name() string { return s.cfg.Name }

func (s *Simulator) Stats() Stats {
	st := s.c.snapshot()
	st.Running = s.lc.running()
	return st
}

// Start begins generating in the background, one goroutine per symbol.
func (s *Simulator) Start(ctx context.Context, out Publisher) error {
	start := s.cfg.StartTime
	if start.IsZero() {
		start = time.Now()
	}
	return s.lc.start(ctx, func(ctx context.Context) error {
		errc := make(chan error, len(s.cfg.Symbols))
		for _, sym := range s.cfg.Symbols {
			g := newSimGen(s.cfg, sym, start)
			go func() { errc <- s.runSymbol(ctx, g, out) }()
		}
		var first error
		for range s.cfg.Symbols {
			if err := <-errc; err != nil && first == nil {
				first = err
			}
		}
		return first
	})
}

func (s *Simulator) Stop()                 { s.lc.stop() }
func (s *Simulator) Done() <-chan struct{} { return s.lc.doneChan() }
func (s *Simulator) Err() error            { return s.lc.result() }

func (s *Simulator) runSymbol(ctx context.Context, g *simGen, out Publisher) error {
	wall0 := time.Now()
	var tm *time.Timer
	for i := 0; s.cfg.MaxEvents == 0 || i < s.cfg.MaxEvents; i++ {
		if s.cfg.Rate > 0 && i > 0 {
			due := wall0.Add(time.Duration(float64(i) / s.cfg.Rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				if tm == nil {
					tm = time.NewTimer(d)
				} else {
					tm.Reset(d)
				}
				select {
				case <-tm.C:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		s.c.messages.Add(1)
		if err := publish(&s.c, out, g.next()); err != nil {
			return err
		}
	}
	return nil
}

// simGen is the deterministic per-symbol generator.
type simGen struct {
	cfg     SimulatorConfig
	sym     SimSymbol
	rng     *rand.Rand
	start   time.Time
	step    time.Duration
	i       int64
	mid     int64 // in ticks
	tradeID int64
	bookSeq int64
}

// SimulateEvents returns the first n events the Simulator would publish
// for sym (including the initial snapshot), without timing: the reference
// sequence for determinism checks. With a zero StartTime the timestamps
// start at the zero time.
func SimulateEvents(cfg SimulatorConfig, sym string, n int) ([]Event, error) {
	sim, err := NewSimulator(cfg)
	if err != nil {
		return nil, err
	}
	sym = normSymbol(sym)
	start := sim.cfg.StartTime
	for _, s := range sim.cfg.Symbols {
		if s.Symbol == sym {
			g := newSimGen(sim.cfg, s, start)
			out := make([]Event, n)
			for i := range out {
				out[i] = g.next()
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("feeds: simulator: unknown symbol %s", sym)
}

func newSimGen(cfg SimulatorConfig, sym SimSymbol, start time.Time) *simGen {
	h := fnv.New64a()
	h.Write([]byte(sym.Symbol))
	step := time.Millisecond
	if cfg.Rate > 0 {
		step = time.Duration(float64(time.Second) / cfg.Rate)
	}
	tick := int64(sym.TickSize)
	if tick == 0 {
		tick = 1
	}
	return &simGen{
		cfg: cfg, sym: sym, start: start, step: step,
		rng: rand.New(rand.NewPCG(cfg.Seed, h.Sum64())),
		mid: int64(sym.StartPrice) / tick,
	}
}

func (g *simGen) price(ticks int64) Decimal {
	if ticks < 1 {
		ticks = 1
	}
	return Decimal(ticks * int64(g.sym.TickSize))
}

func (g *simGen) size() Decimal {
	return Decimal((1 + g.rng.Int64N(1000)) * int64(g.sym.LotSize))
}

func (g *simGen) next() Event {
	t := g.start.Add(time.Duration(g.i) * g.step)
	g.i++
	g.bookSeq++
	if g.i == 1 { // initial snapshot
		b := BookUpdate{Venue: g.cfg.Venue, Symbol: g.sym.Symbol, Seq: g.bookSeq, FirstSeq: g.bookSeq, Time: t, Snapshot: true,
			Bids: make([]Level, g.cfg.BookDepth), Asks: make([]Level, g.cfg.BookDepth)}
		for k := range g.cfg.BookDepth {
			b.Bids[k] = Level{Price: g.price(g.mid - 1 - int64(k)), Qty: g.size()}
			b.Asks[k] = Level{Price: g.price(g.mid + 1 + int64(k)), Qty: g.size()}
		}
		return b
	}
	if g.rng.Float64() < g.cfg.TradeRatio {
		g.mid += g.rng.Int64N(5) - 2
		if g.mid < 2 {
			g.mid = 2
		}
		g.tradeID++
		tr := Trade{Venue: g.cfg.Venue, Symbol: g.sym.Symbol, TradeID: g.tradeID, Time: t, Qty: g.size()}
		if g.rng.IntN(2) == 0 {
			tr.TakerSide, tr.Price = SideBuy, g.price(g.mid+1)
		} else {
			tr.TakerSide, tr.Price = SideSell, g.price(g.mid-1)
		}
		return tr
	}
	b := BookUpdate{Venue: g.cfg.Venue, Symbol: g.sym.Symbol, Seq: g.bookSeq, FirstSeq: g.bookSeq, Time: t}
	n := 1 + g.rng.IntN(3)
	for range n {
		lvl := int64(g.rng.IntN(g.cfg.BookDepth))
		var q Decimal
		if lvl == 0 || g.rng.IntN(4) != 0 {
			q = g.size()
		}
		if g.rng.IntN(2) == 0 {
			b.Bids = append(b.Bids, Level{Price: g.price(g.mid - 1 - lvl), Qty: q})
		} else {
			b.Asks = append(b.Asks, Level{Price: g.price(g.mid + 1 + lvl), Qty: q})
		}
	}
	return b
}
