// Package matching is the matching service's domain (no gRPC types): the
// engine behind a journal (every accepted input is journaled and
// acknowledged only once fsynced, with group commit), recovery from the
// last snapshot plus the journal, per-symbol trade rings for resumable trade
// streams, and the fence that guards algorithm changes.
package matching

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tradsys/mesh/pkg/locks"
	"github.com/tradsys/mesh/services/matching/engine"
	"github.com/tradsys/mesh/services/matching/engine/journal"
	"go.uber.org/zap"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// AlgorithmsLock is the coordinator lock that guards algorithm changes.
const AlgorithmsLock = "matching/algorithms"

// Files in the data directory.
const (
	JournalFile  = "journal.log"
	SnapshotFile = "snapshot.bin"
	TradesFile   = "trades.bin"
	MemoryFile   = "memory"
)

// Config configures a Matcher.
type Config struct {
	Dir string // data directory (journal, snapshot, trade ring, fence)
	// NoSync skips fsync (benchmarks of the network path only).
	NoSync bool
	// CommitDelay makes each committer wait this long before forcing an
	// fsync, so more inputs share one (0: fsync as soon as one is needed;
	// group commit still batches whatever arrived during the last fsync).
	CommitDelay time.Duration
	// TradeRing is how many trades per symbol stay available to
	// StreamTrades resumption (default 16384).
	TradeRing int
	// DefaultAlgorithm for new books (default fifo).
	DefaultAlgorithm string
	// DoneOrders is how many finished (filled or cancelled) orders GetOrder
	// still answers for (default 100000; negative: none), each for at most
	// DoneOrderTTL (default 1h; negative: no time bound). In memory only.
	DoneOrders   int
	DoneOrderTTL time.Duration
	Logger       *zap.Logger
}

// Matcher is the durable engine. Open loads it, Close snapshots and unloads
// it; in between it is safe for concurrent use.
type Matcher struct {
	cfg   Config
	log   *zap.Logger
	fence *fence
	algo  string // canonical default algorithm
	done  *doneOrders

	mu    sync.Mutex // serialises apply+enqueue: journal order == apply order
	st    atomic.Pointer[state]
	algMu sync.Mutex // serialises fenced changes
}

type state struct {
	eng    *engine.Engine
	w      *journal.Writer
	sink   *sink
	trades *tradeLog
	broken error // set (under Matcher.mu) when the journal failed
	// lastTime is the newest acceptance time journaled (Unix ns, under
	// Matcher.mu): new inputs never get an older one, so trade times never
	// decrease along a symbol's sequence even if the wall clock steps back.
	lastTime int64
}

// sink feeds the trade ring and collects the events of the call in
// progress (Matcher.mu is held while the engine runs).
type sink struct {
	trades  *tradeLog
	collect bool
	now     int64 // acceptance time of the input being applied (Unix ns)
	tr      []engine.Trade
	cn      []engine.Cancel
}

func (s *sink) OnTrade(t engine.Trade) {
	t.Time = s.now
	s.trades.push(t)
	if s.collect {
		s.tr = append(s.tr, t)
	}
}

func (s *sink) OnCancel(c engine.Cancel) {
	if s.collect {
		s.cn = append(s.cn, c)
	}
}

// New prepares a matcher over dir (created if needed) without loading it.
func New(cfg Config) (*Matcher, error) {
	if cfg.Dir == "" {
		return nil, errors.New("matching: no data directory")
	}
	if cfg.TradeRing <= 0 {
		cfg.TradeRing = 16384
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.DoneOrders == 0 {
		cfg.DoneOrders = 100000
	}
	if cfg.DoneOrderTTL == 0 {
		cfg.DoneOrderTTL = time.Hour
	}
	a, err := engine.AlgorithmByName(cfg.DefaultAlgorithm)
	if err != nil {
		return nil, &AlgorithmError{Name: cfg.DefaultAlgorithm}
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	f, err := openFence(cfg.Dir, AlgorithmsLock)
	if err != nil {
		return nil, fmt.Errorf("fence: %w", err)
	}
	return &Matcher{cfg: cfg, log: cfg.Logger, fence: f, algo: a.Name(), done: newDoneOrders(cfg.DoneOrders, cfg.DoneOrderTTL)}, nil
}

func (m *Matcher) path(name string) string { return filepath.Join(m.cfg.Dir, name) }

// Active reports whether the engine is loaded.
func (m *Matcher) Active() bool { return m.st.Load() != nil }

// RecoveryStats is what Open found.
type RecoveryStats struct {
	SnapshotOffset int64
	Journal        journal.Stats
	Symbols        int
	Took           time.Duration
}

// Open loads the engine: the last snapshot (if any), then every journal
// record after it, re-emitting their trades into the trade rings.
func (m *Matcher) Open(ctx context.Context) (RecoveryStats, error) {
	start := time.Now()
	var rs RecoveryStats
	if m.Active() {
		return rs, errors.New("matching: already open")
	}
	sk := &sink{}
	cfg := engine.Config{Algorithm: m.algo, Sink: sk}
	eng, from, err := journal.LoadSnapshot(m.path(SnapshotFile), cfg)
	switch {
	case os.IsNotExist(err):
		if eng, err = engine.New(cfg); err != nil {
			return rs, err
		}
		from = 0
	case err != nil:
		return rs, fmt.Errorf("snapshot %s: %w", m.path(SnapshotFile), err)
	}
	sk.trades = loadTradeLog(m.path(TradesFile), from, m.cfg.TradeRing)
	if err := ctx.Err(); err != nil {
		return rs, err
	}
	// Replayed trades get the acceptance time journaled with their input,
	// the same time they were first streamed with (0 for records written
	// before times were journaled).
	var lastTime int64
	st, err := journal.ReplayFunc(m.path(JournalFile), from, eng, func(rec *journal.Record) {
		sk.now = rec.Time
		lastTime = max(lastTime, rec.Time)
	})
	sk.now = 0
	if err != nil && !os.IsNotExist(err) {
		return rs, fmt.Errorf("journal replay: %w", err)
	}
	if from > st.ValidBytes {
		return rs, journal.ErrSnapshotAhead
	}
	w, err := journal.Open(m.path(JournalFile), journal.Options{NoSync: m.cfg.NoSync})
	if err != nil {
		return rs, fmt.Errorf("journal open: %w", err)
	}
	syms := eng.Symbols()
	for _, s := range syms {
		_, _ = eng.View(s, func(b *engine.Book) { sk.trades.ensure(s, b.TradeSeq()) })
	}
	sk.collect = true
	m.mu.Lock()
	m.st.Store(&state{eng: eng, w: w, sink: sk, trades: sk.trades, lastTime: max(lastTime, sk.trades.newestTime())})
	m.mu.Unlock()
	rs = RecoveryStats{SnapshotOffset: from, Journal: st, Symbols: len(syms), Took: time.Since(start)}
	m.log.Info("matching engine loaded", zap.Int64("snapshot_offset", from), zap.Int("journal_records", st.Records),
		zap.Int("replayed", st.Applied), zap.Int("rejected_on_replay", st.Rejected),
		zap.Int64("truncated_bytes", st.TruncatedBytes), zap.Int("symbols", len(syms)), zap.Duration("took", rs.Took))
	return rs, nil
}

// Close snapshots the engine (with the trade rings and the memory it used)
// and closes the journal. Inputs after Close fail with ErrNotActive.
func (m *Matcher) Close(ctx context.Context) error {
	m.mu.Lock()
	st := m.st.Swap(nil)
	if st == nil {
		m.mu.Unlock()
		return nil
	}
	var snap []byte
	var err error
	var off int64
	if st.broken == nil {
		snap, err = st.eng.MarshalBinary()
		off = st.w.Offset()
	}
	m.mu.Unlock()
	mem := st.eng.MemoryBytes()
	if serr := st.w.Sync(); serr != nil && err == nil {
		err = serr
	}
	if err == nil && snap != nil {
		// The ring first: a crash between the two leaves an old snapshot
		// whose offset no longer matches the ring, and the ring is ignored.
		if err = writeFileAtomic(m.path(TradesFile), st.trades.marshal(off)); err == nil {
			err = journal.WriteSnapshot(m.path(SnapshotFile), snap, off)
		}
	}
	_ = writeFileAtomic(m.path(MemoryFile), []byte(strconv.FormatInt(mem, 10)+"\n"))
	if cerr := st.w.Close(); err == nil {
		err = cerr
	}
	m.log.Info("matching engine unloaded", zap.Int64("snapshot_offset", off), zap.Int64("memory_bytes", mem), zap.Error(err))
	return err
}

// LastMemoryBytes is the books' memory when the engine was last unloaded
// (0 if unknown): the basis of the next memory estimate.
func (m *Matcher) LastMemoryBytes() int64 {
	b, err := os.ReadFile(m.path(MemoryFile))
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return max(v, 0)
}

// MemoryBytes is what the loaded engine holds (0 when not loaded), counted
// structure by structure: the books (order and level pools, index, level
// arrays), the finished-orders table GetOrder answers from, and the trade
// rings streams resume from. memory_test.go holds it to the live heap
// measured per resting order and per fill.
func (m *Matcher) MemoryBytes() int64 {
	if st := m.st.Load(); st != nil {
		return st.eng.MemoryBytes() + m.done.memBytes() + st.trades.memBytes()
	}
	return 0
}

// Execution is what an accepted input did.
type Execution struct {
	Symbol  string
	OrderID uint64
	Qty     int64 // the order's (or the replace's new) quantity
	Result  engine.Result
	Trades  []engine.Trade
	Cancels []engine.Cancel
}

// Pending is an accepted input waiting to be durable.
type Pending struct {
	Execution
	m      *Matcher
	st     *state
	ticket uint64
}

// Wait returns once the input is durable (group commit): only then may it
// be acknowledged. Its trades become visible to trade streams at that point.
func (p *Pending) Wait() error {
	if p.m.cfg.CommitDelay > 0 {
		time.Sleep(p.m.cfg.CommitDelay)
	}
	if err := p.st.w.Wait(p.ticket); err != nil {
		p.m.fail(p.st, err)
		return &JournalError{Err: err}
	}
	if n := len(p.Trades); n > 0 {
		p.st.trades.markDurable(p.Symbol, p.Trades[n-1].Seq)
	}
	return nil
}

func (m *Matcher) fail(st *state, err error) {
	m.mu.Lock()
	if st.broken == nil {
		st.broken = err
		m.log.Error("journal failed: refusing further inputs until restart", zap.Error(err))
	}
	m.mu.Unlock()
}

// apply runs op on the engine and, if accepted, journals rec, both under
// m.mu. The caller waits for durability with Pending.Wait.
func (m *Matcher) apply(rec journal.Record, id uint64, qty int64, op func(*engine.Engine) (engine.Result, error)) (*Pending, error) {
	m.mu.Lock()
	st := m.st.Load()
	if st == nil {
		m.mu.Unlock()
		return nil, ErrNotActive
	}
	if st.broken != nil {
		m.mu.Unlock()
		return nil, &JournalError{Err: st.broken}
	}
	st.sink.tr, st.sink.cn = st.sink.tr[:0], st.sink.cn[:0]
	if rec.Op == journal.OpSubmit || rec.Op == journal.OpReplace {
		// The acceptance time, journaled with the input: the execution
		// time of its trades, live and on replay alike.
		rec.Time = max(time.Now().UnixNano(), st.lastTime)
		st.lastTime = rec.Time
	}
	st.sink.now = rec.Time
	res, err := op(st.eng)
	if err != nil {
		m.mu.Unlock()
		return nil, wrapEngine(rec.Symbol, id, err)
	}
	ticket, jerr := st.w.Enqueue(&rec)
	if jerr != nil {
		// Applied but not journaled: the engine is now ahead of the journal.
		st.broken = jerr
		m.mu.Unlock()
		return nil, &JournalError{Err: jerr}
	}
	p := &Pending{m: m, st: st, ticket: ticket, Execution: Execution{Symbol: rec.Symbol, OrderID: id, Qty: qty, Result: res}}
	if len(st.sink.tr) > 0 {
		p.Trades = append([]engine.Trade(nil), st.sink.tr...)
	}
	if len(st.sink.cn) > 0 {
		p.Cancels = append([]engine.Cancel(nil), st.sink.cn...)
	}
	m.done.record(rec.Symbol, id, res, st.sink.tr, st.sink.cn, time.Unix(0, max(rec.Time, time.Now().UnixNano())))
	m.mu.Unlock()
	return p, nil
}

func wrapEngine(symbol string, id uint64, err error) error {
	switch {
	case errors.Is(err, engine.ErrUnknownAlgorithm):
		return err
	case errors.Is(err, engine.ErrInvalidSymbol):
		return err
	}
	return &OrderError{Symbol: symbol, ID: id, Err: err}
}

// Submit applies and journals a new order.
func (m *Matcher) Submit(symbol string, o engine.Order) (*Pending, error) {
	return m.apply(journal.Record{Op: journal.OpSubmit, Symbol: symbol, Order: o}, o.ID, o.Qty,
		func(e *engine.Engine) (engine.Result, error) { return e.Submit(symbol, o) })
}

// Cancel applies and journals a cancel.
func (m *Matcher) Cancel(symbol string, id uint64) (*Pending, error) {
	return m.apply(journal.Record{Op: journal.OpCancel, Symbol: symbol, ID: id}, id, 0,
		func(e *engine.Engine) (engine.Result, error) { return engine.Result{}, e.Cancel(symbol, id) })
}

// Replace applies and journals a replace.
func (m *Matcher) Replace(symbol string, id uint64, price, qty int64) (*Pending, error) {
	return m.apply(journal.Record{Op: journal.OpReplace, Symbol: symbol, ID: id, Price: price, Qty: qty}, id, qty,
		func(e *engine.Engine) (engine.Result, error) { return e.Replace(symbol, id, price, qty) })
}

// CanonicalAlgorithm returns the engine's name for an algorithm.
func CanonicalAlgorithm(name string) (string, error) {
	a, err := engine.AlgorithmByName(name)
	if err != nil || name == "" {
		return "", &AlgorithmError{Name: name}
	}
	return a.Name(), nil
}

// Algorithms are the built-in algorithm names.
func Algorithms() []string { return []string{engine.FIFO{}.Name(), engine.ProRata{}.Name()} }

// SetAlgorithm applies and journals a symbol's algorithm change and returns
// the previous algorithm. The caller has passed the fence (Fenced).
func (m *Matcher) SetAlgorithm(symbol, name string) (previous string, p *Pending, err error) {
	canon, err := CanonicalAlgorithm(name)
	if err != nil {
		return "", nil, err
	}
	p, err = m.apply(journal.Record{Op: journal.OpSetAlgorithm, Symbol: symbol, Algorithm: canon}, 0, 0,
		func(e *engine.Engine) (engine.Result, error) {
			previous = m.algo
			_, _ = e.View(symbol, func(b *engine.Book) { previous = b.Algorithm().Name() })
			return engine.Result{}, e.SetAlgorithm(symbol, canon)
		})
	return previous, p, err
}

// AlgorithmOf is the algorithm symbol's book uses (the default for a symbol
// with no book yet).
func (m *Matcher) AlgorithmOf(symbol string) string {
	name := m.algo
	if st := m.st.Load(); st != nil {
		_, _ = st.eng.View(symbol, func(b *engine.Book) { name = b.Algorithm().Name() })
	}
	return name
}

// SymbolsByAlgorithm maps algorithm names to the symbols using them (empty
// when the engine is not loaded).
func (m *Matcher) SymbolsByAlgorithm() map[string][]string {
	out := map[string][]string{}
	st := m.st.Load()
	if st == nil {
		return out
	}
	for _, s := range st.eng.Symbols() {
		_, _ = st.eng.View(s, func(b *engine.Book) { out[b.Algorithm().Name()] = append(out[b.Algorithm().Name()], s) })
	}
	return out
}

// Fenced runs a change to the algorithms under the fence: with a non-zero
// token (the caller holds the coordinator lock AlgorithmsLock) the token
// must not be older than one already seen; with 0 the matcher takes the
// lock itself through locker for the duration of fn. It returns the token
// the change ran under.
func (m *Matcher) Fenced(ctx context.Context, locker locks.Locker, token uint64, wait time.Duration, fn func() error) (uint64, error) {
	run := func(tok uint64) error {
		m.algMu.Lock()
		defer m.algMu.Unlock()
		if err := m.fence.check(tok); err != nil {
			return err
		}
		return fn()
	}
	if token != 0 {
		return token, run(token)
	}
	var used uint64
	err := locks.With(ctx, locker, AlgorithmsLock, wait, func(tok uint64) error {
		used = tok
		return run(tok)
	})
	return used, err
}

// NewestFencingToken is the newest token the fence accepted.
func (m *Matcher) NewestFencingToken() uint64 { return m.fence.newest() }

// Book is a view of one book.
type Book struct {
	Symbol    string
	Bids      []engine.LevelInfo
	Asks      []engine.LevelInfo
	LastTrade uint64
	Algorithm string
	Orders    int
}

func (m *Matcher) view(symbol string, fn func(*engine.Book)) error {
	st := m.st.Load()
	if st == nil {
		return ErrNotActive
	}
	ok, err := st.eng.View(symbol, fn)
	if err != nil {
		return err
	}
	if !ok {
		return &UnknownSymbolError{Symbol: symbol}
	}
	return nil
}

// OrderBook returns up to depth levels per side.
func (m *Matcher) OrderBook(symbol string, depth int) (Book, error) {
	bk := Book{Symbol: symbol}
	err := m.view(symbol, func(b *engine.Book) {
		bk.Bids = b.Depth(engine.Buy, depth, nil)
		bk.Asks = b.Depth(engine.Sell, depth, nil)
		bk.LastTrade, bk.Algorithm, bk.Orders = b.TradeSeq(), b.Algorithm().Name(), b.Len()
	})
	return bk, err
}

// Books summarises every book (its best level of each side), by symbol.
func (m *Matcher) Books() ([]Book, error) {
	st := m.st.Load()
	if st == nil {
		return nil, ErrNotActive
	}
	var out []Book
	for _, sym := range st.eng.Symbols() {
		bk, err := m.OrderBook(sym, 1)
		if err != nil {
			continue // unloaded meanwhile: what was listed so far is still true
		}
		out = append(out, bk)
	}
	return out, nil
}

// Order looks up an order: resting (done is nil), or finished not long ago
// (filled or cancelled; done says how and when).
func (m *Matcher) Order(symbol string, id uint64) (engine.OrderInfo, *DoneOrder, error) {
	var info engine.OrderInfo
	var ok bool
	if err := m.view(symbol, func(b *engine.Book) { info, ok = b.Order(id) }); err != nil {
		return info, nil, err
	}
	if ok {
		return info, nil, nil
	}
	if d, ok := m.done.get(symbol, id, time.Now()); ok {
		return engine.OrderInfo{ID: d.ID, Account: d.Account, Side: d.Side, Price: d.Price}, &d, nil
	}
	return info, nil, &OrderError{Symbol: symbol, ID: id, Err: engine.ErrUnknownOrder}
}

// ReadTrades appends up to max durable trades of symbol starting at from
// (0: the next one) to dst. It returns the next sequence to read and a
// channel closed when more trades become durable (nil for a symbol with no
// book yet: poll). A sequence older than the ring is an OutOfRangeError
// naming the oldest available.
func (m *Matcher) ReadTrades(symbol string, from uint64, max int, dst []engine.Trade) ([]engine.Trade, uint64, <-chan struct{}, error) {
	st := m.st.Load()
	if st == nil {
		return dst, from, nil, ErrNotActive
	}
	if ok, err := st.eng.View(symbol, func(*engine.Book) {}); err != nil {
		return dst, from, nil, err
	} else if !ok {
		// No book yet: nothing to read, and no ring made for a name that
		// may never trade (the caller polls until the book exists).
		if from == 0 {
			from = 1
		}
		return dst, from, nil, nil
	}
	return st.trades.read(symbol, from, max, dst)
}

// DurableTradeSeq is symbol's last durable trade sequence.
func (m *Matcher) DurableTradeSeq(symbol string) uint64 {
	if st := m.st.Load(); st != nil {
		return st.trades.durableSeq(symbol)
	}
	return 0
}
