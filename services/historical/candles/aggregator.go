package candles

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Defaults of AggregatorConfig.
const (
	DefaultLateness    = 5 * time.Second
	DefaultDedupWindow = 4096
	MaxLateness        = 24 * time.Hour
)

const minuteNs = int64(time.Minute)

// maxTradeUnix bounds accepted trade times: [1970-01-01, 2200-01-01).
const maxTradeUnix = 7258118400

// AggregatorConfig configures an Aggregator. The zero value is usable.
type AggregatorConfig struct {
	// Lateness is how far (in event time) a trade may lag behind the newest
	// trade already seen for its symbol and still be applied. Trades later
	// than that are dropped with a *LateTradeError. 0 means DefaultLateness
	// (5s); at most MaxLateness.
	Lateness time.Duration
	// DedupWindow is how many of the most recent distinct trade ids are
	// remembered per symbol; a repeated id inside the window is ignored.
	// 0 means DefaultDedupWindow. Costs 24 bytes per id per symbol. It
	// should cover the number of trades a symbol sees within Lateness.
	DedupWindow int
	// OnCandle, if set, receives every final candle synchronously from
	// Ingest/AdvanceTo/Flush. If nil, final candles are buffered and
	// collected with Drain.
	OnCandle func(Candle)
}

// AggregatorStats are counters since construction.
type AggregatorStats struct {
	Accepted   uint64 // trades applied
	Duplicates uint64 // trades ignored: id seen within the dedup window
	Late       uint64 // trades dropped: later than the lateness bound
	Invalid    uint64 // trades rejected: bad symbol, price, qty or time
	Emitted    uint64 // final candles emitted (all intervals)
	Overflows  uint64 // roll-up volume sums that saturated at MaxFixed
	Symbols    int    // symbols seen
}

// ErrLateTrade is matched (errors.Is) by every *LateTradeError.
var ErrLateTrade = errors.New("late trade")

// ErrInvalidTrade is matched (errors.Is) by errors for malformed trades.
var ErrInvalidTrade = errors.New("invalid trade")

// ErrFlushed is returned by Ingest after Flush.
var ErrFlushed = errors.New("aggregator already flushed")

// LateTradeError reports a trade dropped because it arrived later than the
// lateness bound: TradeTime < NewestTime - Lateness.
type LateTradeError struct {
	Symbol     string
	TradeID    int64
	TradeTime  time.Time // event time of the dropped trade
	NewestTime time.Time // newest event time seen for the symbol
	Lateness   time.Duration
}

func (e *LateTradeError) Error() string {
	return fmt.Sprintf("late trade %s #%d at %s: %v behind the newest trade (%s), bound %v",
		e.Symbol, e.TradeID, e.TradeTime.UTC().Format(time.RFC3339Nano),
		e.NewestTime.Sub(e.TradeTime), e.NewestTime.UTC().Format(time.RFC3339Nano), e.Lateness)
}

// Is makes errors.Is(err, ErrLateTrade) true.
func (e *LateTradeError) Is(target error) bool { return target == ErrLateTrade }

// Aggregator builds 1m, 5m, 15m, 1h and 1d candles from a stream of trades.
//
// Semantics:
//   - Event time: a candle's bucket is chosen by the trade's time, aligned on
//     UTC boundaries. Within a bucket open is the trade with the earliest
//     (time, id) and close the one with the latest (time, id), whatever the
//     arrival order; high/low are max/min; volume, quote volume (price*qty,
//     each product truncated to 8 decimals) and trade count are sums.
//   - Lateness: per symbol the watermark is newest trade time - Lateness.
//     A trade older than the watermark is counted and dropped
//     (*LateTradeError); otherwise it is applied exactly.
//   - A candle is final, and emitted once, when the watermark reaches its
//     end. 1m candles are built from trades; 5m/15m/1h/1d candles are rolled
//     up from final 1m candles, so every interval is consistent.
//   - Duplicates: a trade id seen among the last DedupWindow distinct ids
//     of the symbol is ignored (Ingest returns nil, Stats().Duplicates
//     counts it).
//   - Gaps: an interval with no trades produces no candle at all (no
//     zero-volume or carried-forward candle); consumers that need a dense
//     series fill gaps themselves.
//
// An Aggregator is not safe for concurrent use; shard symbols across
// aggregators for parallelism. In steady state Ingest does not allocate.
type Aggregator struct {
	lateness int64
	dedupCap int
	onCandle func(Candle)
	out      []Candle
	syms     map[string]*symState
	last     *symState
	stats    AggregatorStats
	flushed  bool
}

type symState struct {
	symbol string
	hasT   bool
	maxT   int64 // newest event time, Unix ns
	open1m []acc // non-final 1m buckets, ascending start
	higher [4]acc
	dedup  *dedupSet
}

// higherIntervals are the rolled-up intervals, index-aligned with symState.higher.
var higherIntervals = [4]Interval{Interval5m, Interval15m, Interval1h, Interval1d}

// NewAggregator returns an Aggregator, validating cfg.
func NewAggregator(cfg AggregatorConfig) (*Aggregator, error) {
	if cfg.Lateness == 0 {
		cfg.Lateness = DefaultLateness
	}
	if cfg.Lateness < 0 || cfg.Lateness > MaxLateness {
		return nil, fmt.Errorf("aggregator: field lateness %v out of range (0, %v]", cfg.Lateness, MaxLateness)
	}
	if cfg.DedupWindow == 0 {
		cfg.DedupWindow = DefaultDedupWindow
	}
	if cfg.DedupWindow < 0 || cfg.DedupWindow > 1<<24 {
		return nil, fmt.Errorf("aggregator: field dedup_window %d out of range [1, %d]", cfg.DedupWindow, 1<<24)
	}
	return &Aggregator{
		lateness: int64(cfg.Lateness),
		dedupCap: cfg.DedupWindow,
		onCandle: cfg.OnCandle,
		syms:     make(map[string]*symState),
	}, nil
}

func (a *Aggregator) invalid(t *Trade, format string, args ...any) error {
	a.stats.Invalid++
	return fmt.Errorf("%w %s #%d: %s", ErrInvalidTrade, t.Symbol, t.ID, fmt.Sprintf(format, args...))
}

// Ingest applies one trade. It returns nil for applied and for duplicate
// trades, a *LateTradeError for a trade beyond the lateness bound, and an
// error wrapping ErrInvalidTrade for a malformed trade (non-positive price
// or qty, bad symbol, time outside [1970, 2200), arithmetic overflow).
// Candles that become final are emitted before Ingest returns.
func (a *Aggregator) Ingest(t Trade) error {
	if a.flushed {
		return ErrFlushed
	}
	if t.Price <= 0 || t.Qty <= 0 {
		return a.invalid(&t, "price %s and qty %s must be > 0", t.Price, t.Qty)
	}
	sec := t.Time.Unix()
	if sec < 0 || sec >= maxTradeUnix {
		return a.invalid(&t, "time %v outside [1970, 2200)", t.Time)
	}
	ns := sec*1e9 + int64(t.Time.Nanosecond())

	st := a.last
	if st == nil || st.symbol != t.Symbol {
		st = a.syms[t.Symbol]
		if st == nil {
			if err := ValidateSymbol(t.Symbol); err != nil {
				return a.invalid(&t, "%v", err)
			}
			st = &symState{symbol: t.Symbol, open1m: make([]acc, 0, 4), dedup: newDedupSet(a.dedupCap)}
			a.syms[t.Symbol] = st
			a.stats.Symbols++
		}
		a.last = st
	}

	if st.hasT && ns < st.maxT-a.lateness {
		a.stats.Late++
		return &LateTradeError{
			Symbol: st.symbol, TradeID: t.ID, TradeTime: t.Time,
			NewestTime: time.Unix(0, st.maxT).UTC(), Lateness: time.Duration(a.lateness),
		}
	}
	qv, ok := MulFixed(t.Price, t.Qty)
	if !ok {
		return a.invalid(&t, "price*qty overflows")
	}

	// Locate the 1m bucket (usually the last one) without creating it yet.
	start := alignNanos(ns, minuteNs)
	buckets := st.open1m
	i := len(buckets) - 1
	for i >= 0 && buckets[i].start > start {
		i--
	}
	found := i >= 0 && buckets[i].start == start
	if found {
		b := &buckets[i]
		if b.vol > MaxFixed-t.Qty || b.qvol > MaxFixed-qv {
			return a.invalid(&t, "1m volume overflows")
		}
	}
	if !st.dedup.insert(uint64(t.ID)) {
		a.stats.Duplicates++
		return nil
	}
	if !found { // insert a new bucket after position i
		i++
		buckets = append(buckets, acc{})
		copy(buckets[i+1:], buckets[i:])
		buckets[i] = acc{start: start}
		st.open1m = buckets
	}
	buckets[i].addTrade(ns, t.ID, t.Price, t.Qty, qv)
	a.stats.Accepted++

	if !st.hasT || ns > st.maxT {
		st.hasT = true
		st.maxT = ns
		a.advance(st)
	}
	return nil
}

// AdvanceTo moves every symbol's event clock to at least now (typically
// wall-clock time from a ticker), so that candles close even when a symbol
// stops trading. Afterwards trades older than now - Lateness are late.
func (a *Aggregator) AdvanceTo(now time.Time) {
	ns := now.UnixNano()
	for _, st := range a.syms {
		if !st.hasT || ns > st.maxT {
			st.hasT = true
			st.maxT = ns
			a.advance(st)
		}
	}
}

func (a *Aggregator) advance(st *symState) {
	w := st.maxT - a.lateness
	for len(st.open1m) > 0 && st.open1m[0].start+minuteNs <= w {
		a.finalize1m(st, &st.open1m[0])
		n := copy(st.open1m, st.open1m[1:])
		st.open1m = st.open1m[:n]
	}
	for i := range st.higher {
		h := &st.higher[i]
		if h.trades > 0 && h.start+higherIntervals[i].nanos() <= w {
			a.emit(h.candle(st.symbol, higherIntervals[i]))
			h.trades = 0
		}
	}
}

func (a *Aggregator) finalize1m(st *symState, b *acc) {
	a.emit(b.candle(st.symbol, Interval1m))
	for i := range st.higher {
		h := &st.higher[i]
		hs := alignNanos(b.start, higherIntervals[i].nanos())
		if h.trades > 0 && h.start != hs {
			a.emit(h.candle(st.symbol, higherIntervals[i]))
			h.trades = 0
		}
		if h.trades == 0 {
			h.start = hs
		}
		if h.foldLater(b) {
			a.stats.Overflows++
		}
	}
}

func (a *Aggregator) emit(c Candle) {
	a.stats.Emitted++
	if a.onCandle != nil {
		a.onCandle(c)
		return
	}
	a.out = append(a.out, c)
}

// Drain appends the buffered final candles (when OnCandle is nil) to dst,
// clears the buffer and returns dst. Candles of one symbol and interval
// come in increasing OpenTime order.
func (a *Aggregator) Drain(dst []Candle) []Candle {
	dst = append(dst, a.out...)
	clear(a.out)
	a.out = a.out[:0]
	return dst
}

// Flush ends the stream: it emits every pending candle, partial ones
// included, for all symbols (sorted by symbol). Ingest returns ErrFlushed
// afterwards, because a later trade could only produce a second, partial
// candle for an already emitted bucket.
func (a *Aggregator) Flush() {
	if a.flushed {
		return
	}
	a.flushed = true
	syms := make([]string, 0, len(a.syms))
	for s := range a.syms {
		syms = append(syms, s)
	}
	sort.Strings(syms)
	for _, s := range syms {
		st := a.syms[s]
		for i := range st.open1m {
			a.finalize1m(st, &st.open1m[i])
		}
		st.open1m = st.open1m[:0]
		for i := range st.higher {
			h := &st.higher[i]
			if h.trades > 0 {
				a.emit(h.candle(st.symbol, higherIntervals[i]))
				h.trades = 0
			}
		}
	}
}

// Current returns the newest not-yet-final candle of symbol at interval iv,
// built from everything applied so far; ok is false if there is none.
func (a *Aggregator) Current(symbol string, iv Interval) (c Candle, ok bool) {
	st := a.syms[symbol]
	if st == nil || !iv.Valid() {
		return Candle{}, false
	}
	if iv == Interval1m {
		if n := len(st.open1m); n > 0 {
			return st.open1m[n-1].candle(symbol, iv), true
		}
		return Candle{}, false
	}
	hi := int(iv - Interval5m)
	width := iv.nanos()
	h := st.higher[hi]
	target := int64(-1 << 63)
	if h.trades > 0 {
		target = h.start
	}
	if n := len(st.open1m); n > 0 {
		if s := alignNanos(st.open1m[n-1].start, width); s > target {
			target = s
		}
	}
	var r acc
	r.start = target
	if h.trades > 0 && h.start == target {
		r = h
	}
	for i := range st.open1m {
		if alignNanos(st.open1m[i].start, width) == target {
			r.foldLater(&st.open1m[i])
		}
	}
	if r.trades == 0 {
		return Candle{}, false
	}
	return r.candle(symbol, iv), true
}

// Stats returns the counters.
func (a *Aggregator) Stats() AggregatorStats { return a.stats }
