// Package history is the historical service's domain glue, with no gRPC
// types: the bbolt candle store (always open: cheap), the trade ingester
// (one candles.Aggregator building 1m/5m/15m/1h/1d candles, flushed to the
// store in batches), backfills of Binance kline files, and the heavy,
// lazily loaded part: the byte-bounded read cache in front of the store.
package history

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tradsys/mesh/services/historical/candles"
	"go.uber.org/zap"
)

// Options configure a History.
type Options struct {
	// DataDir holds the store file (candles.db).
	DataDir string
	// MaxCacheBytes bounds the read cache (default 100 MiB, the seed's).
	MaxCacheBytes int64
	// CacheTTL expires cached pages (0: never; writes invalidate anyway).
	CacheTTL time.Duration
	// Lateness of the aggregator (default candles.DefaultLateness).
	Lateness time.Duration
	// FlushInterval is how often final candles are written (default 100ms).
	FlushInterval time.Duration
	// NoSync skips fsync (tests and benchmarks only).
	NoSync bool
	Logger *zap.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Errors the gRPC layer maps.
var (
	ErrNoFiles       = errors.New("no kline files")
	ErrCacheNotReady = errors.New("cache not loaded")
)

// SourceError is a backfill source the service could not use; Field names
// the request field.
type SourceError struct {
	Field string
	Err   error
}

func (e *SourceError) Error() string { return fmt.Sprintf("invalid %s: %v", e.Field, e.Err) }
func (e *SourceError) Unwrap() error { return e.Err }

// History is the service's domain.
type History struct {
	o     Options
	log   *zap.Logger
	store *candles.Store

	cacheMu sync.RWMutex // writers hold R around put+invalidate; load/unload hold W
	cached  *candles.CachedStore
	loads   uint64
	last    candles.CacheStats
	// fit bounds the cache below MaxCacheBytes: its memory lease (FitCache);
	// 0 means MaxCacheBytes.
	fit int64

	aggMu   sync.Mutex
	agg     *candles.Aggregator
	pending []candles.Candle
	newest  time.Time
	kick    chan struct{}

	// invalid counts trades a source could not even convert (reported in
	// AggregatorStats().Invalid with the aggregator's own).
	invalid atomic.Uint64

	putMu   sync.Mutex // one flush at a time, in order
	written atomic.Uint64
	putErrs atomic.Uint64

	srcMu   sync.Mutex
	sources map[string]*Source

	stop chan struct{}
	done chan struct{}
}

// Open opens (creating) the store and starts the flusher.
func Open(o Options) (*History, error) {
	if o.MaxCacheBytes <= 0 {
		o.MaxCacheBytes = 100 << 20
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 100 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.DataDir == "" {
		return nil, errors.New("history: a data directory is required")
	}
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return nil, err
	}
	store, err := candles.OpenStore(filepath.Join(o.DataDir, "candles.db"), &candles.StoreOptions{NoSync: o.NoSync, Timeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	h := &History{o: o, log: o.Logger, store: store, kick: make(chan struct{}, 1), sources: map[string]*Source{},
		stop: make(chan struct{}), done: make(chan struct{})}
	h.agg, err = candles.NewAggregator(candles.AggregatorConfig{Lateness: o.Lateness, OnCandle: func(c candles.Candle) {
		h.pending = append(h.pending, c) // called under aggMu
	}})
	if err != nil {
		store.Close()
		return nil, err
	}
	go h.flusher()
	return h, nil
}

// Close flushes final candles and closes the store.
func (h *History) Close() error {
	close(h.stop)
	<-h.done
	h.Flush()
	return h.store.Close()
}

// Store is the underlying store.
func (h *History) Store() *candles.Store { return h.store }

// LoadCache builds the read cache (the component's Init).
func (h *History) LoadCache() error {
	h.cacheMu.Lock()
	defer h.cacheMu.Unlock()
	c, err := candles.NewCache(candles.CacheConfig{MaxBytes: h.cacheLimitLocked(), TTL: h.o.CacheTTL, Now: h.o.Now})
	if err != nil {
		return err
	}
	cs, err := candles.NewCachedStore(h.store, c)
	if err != nil {
		return err
	}
	h.cached = cs
	h.loads++
	return nil
}

func (h *History) cacheLimitLocked() int64 {
	if h.fit > 0 && h.fit < h.o.MaxCacheBytes {
		return h.fit
	}
	return h.o.MaxCacheBytes
}

// FitCache bounds the cache to leased bytes (never above MaxCacheBytes),
// evicting least recently used pages at once if it holds more: the cache
// lives within its memory lease. It holds for later loads too.
func (h *History) FitCache(leased int64) {
	h.cacheMu.Lock()
	defer h.cacheMu.Unlock()
	h.fit = leased
	if h.cached != nil {
		h.cached.Cache().SetMaxBytes(h.cacheLimitLocked())
	}
}

// CacheBytes is what the loaded cache holds now (0 when not loaded): the
// usage its memory lease follows.
func (h *History) CacheBytes() int64 {
	h.cacheMu.RLock()
	defer h.cacheMu.RUnlock()
	if h.cached == nil {
		return 0
	}
	return h.cached.Cache().Bytes()
}

// UnloadCache drops the read cache (the component's Shutdown).
func (h *History) UnloadCache() {
	h.cacheMu.Lock()
	if h.cached != nil {
		h.last = h.cached.Cache().Stats()
		h.cached = nil
	}
	h.cacheMu.Unlock()
}

// CacheStats reports the loaded cache's counters (or the last load's) and
// whether it is loaded, without loading anything.
func (h *History) CacheStats() (st candles.CacheStats, loaded bool, loads uint64) {
	h.cacheMu.RLock()
	defer h.cacheMu.RUnlock()
	if h.cached != nil {
		return h.cached.Cache().Stats(), true, h.loads
	}
	st = h.last
	if st.MaxBytes == 0 {
		st.MaxBytes = h.o.MaxCacheBytes
	}
	return st, false, h.loads
}

// Range reads one page through the cache (directly from the store when the
// cache is not loaded).
func (h *History) Range(symbol string, iv candles.Interval, start, end time.Time, limit int, token string) (candles.Page, error) {
	h.cacheMu.RLock()
	cs := h.cached
	h.cacheMu.RUnlock()
	if cs != nil {
		return cs.Range(symbol, iv, start, end, limit, token)
	}
	return h.store.Range(symbol, iv, start, end, limit, token)
}

// Latest is the newest final candle; with partial, the candle still being
// built from live trades wins when it is newer.
func (h *History) Latest(symbol string, iv candles.Interval, partial bool) (c candles.Candle, isPartial bool, err error) {
	if partial {
		h.aggMu.Lock()
		cur, ok := h.agg.Current(symbol, iv)
		h.aggMu.Unlock()
		if ok {
			return cur, true, nil
		}
	}
	c, err = h.store.Latest(symbol, iv)
	return c, false, err
}

// Put writes candles (upserting) and invalidates the cached series.
func (h *History) Put(cs []candles.Candle) error {
	if len(cs) == 0 {
		return nil
	}
	h.cacheMu.RLock()
	defer h.cacheMu.RUnlock()
	var err error
	if h.cached != nil {
		err = h.cached.Put(cs...)
	} else {
		err = h.store.Put(cs...)
	}
	if err == nil {
		h.written.Add(uint64(len(cs)))
	}
	return err
}

// IngestResult counts what happened to a batch of trades.
type IngestResult struct {
	Received, Accepted, Duplicates, Late, Invalid uint64
}

// Add sums r and o.
func (r *IngestResult) Add(o IngestResult) {
	r.Received += o.Received
	r.Accepted += o.Accepted
	r.Duplicates += o.Duplicates
	r.Late += o.Late
	r.Invalid += o.Invalid
}

// Ingest applies trades to the aggregator; final candles are written by the
// flusher (within FlushInterval) or by Flush.
func (h *History) Ingest(trades []candles.Trade) IngestResult {
	h.aggMu.Lock()
	before := h.agg.Stats()
	for i := range trades {
		_ = h.agg.Ingest(trades[i]) // counted in Stats
		if t := trades[i].Time; t.After(h.newest) {
			h.newest = t
		}
	}
	after := h.agg.Stats()
	big := len(h.pending) >= 4096
	h.aggMu.Unlock()
	if big {
		select {
		case h.kick <- struct{}{}:
		default:
		}
	}
	return IngestResult{Received: uint64(len(trades)), Accepted: after.Accepted - before.Accepted,
		Duplicates: after.Duplicates - before.Duplicates, Late: after.Late - before.Late, Invalid: after.Invalid - before.Invalid}
}

// AggregatorStats are the candle builder's counters.
func (h *History) AggregatorStats() candles.AggregatorStats {
	h.aggMu.Lock()
	st := h.agg.Stats()
	h.aggMu.Unlock()
	st.Invalid += h.invalid.Load()
	return st
}

// CountInvalid counts n trades a source received but could not convert
// (they never reach the aggregator).
func (h *History) CountInvalid(n int) { h.invalid.Add(uint64(n)) }

// Written is how many candles were written (all intervals, backfills too).
func (h *History) Written() uint64 { return h.written.Load() }

// Flush writes the final candles pending now.
func (h *History) Flush() {
	h.putMu.Lock()
	defer h.putMu.Unlock()
	h.aggMu.Lock()
	batch := h.pending
	h.pending = nil
	h.aggMu.Unlock()
	if err := h.Put(batch); err != nil {
		h.putErrs.Add(1)
		h.log.Error("writing candles failed", zap.Int("candles", len(batch)), zap.Error(err))
	}
}

// flusher writes pending candles every FlushInterval (or when many are
// pending), and closes candles of live data on the wall clock: when the
// newest trade is recent (live data, not a replay of the past), the
// aggregator's clock advances to now so quiet symbols' candles close.
func (h *History) flusher() {
	defer close(h.done)
	t := time.NewTicker(h.o.FlushInterval)
	defer t.Stop()
	lastAdvance := time.Time{}
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		case <-h.kick:
		}
		now := h.o.Now()
		if now.Sub(lastAdvance) >= time.Second {
			lastAdvance = now
			h.aggMu.Lock()
			if !h.newest.IsZero() && now.Sub(h.newest) < 2*time.Minute && now.After(h.newest) {
				h.agg.AdvanceTo(now)
			}
			h.aggMu.Unlock()
		}
		h.Flush()
	}
}

// BackfillResult reports a backfill.
type BackfillResult struct {
	Symbol      string
	Files       int
	Candles1m   int
	Written     int
	First, Last time.Time
}

// Backfill loads Binance 1m kline files (a file, a directory of *.csv, or
// a glob pattern) as they are, rolls them up to every interval and writes
// everything. symbol defaults to the first file's name up to '-'.
func (h *History) Backfill(path, symbol string) (BackfillResult, error) {
	pattern := path
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		pattern = filepath.Join(path, "*.csv")
	}
	files, err := filepath.Glob(pattern)
	if err != nil {
		return BackfillResult{}, &SourceError{Field: "path", Err: err}
	}
	files = slicesFilterCSV(files)
	if len(files) == 0 {
		return BackfillResult{}, &SourceError{Field: "path", Err: fmt.Errorf("%w match %q", ErrNoFiles, path)}
	}
	sort.Strings(files)
	if symbol == "" {
		base := filepath.Base(files[0])
		if i := strings.IndexAny(base, "-_."); i > 0 {
			base = base[:i]
		}
		symbol = base
	}
	if err := candles.ValidateSymbol(symbol); err != nil {
		return BackfillResult{}, &SourceError{Field: "symbol", Err: err}
	}
	var all []candles.Candle
	for _, f := range files {
		cs, err := candles.LoadBinanceKlinesGlob(globEscape(f), symbol)
		if err != nil {
			return BackfillResult{}, &SourceError{Field: "path", Err: err}
		}
		if len(all) > 0 && len(cs) > 0 && !cs[0].OpenTime.After(all[len(all)-1].OpenTime) {
			return BackfillResult{}, &SourceError{Field: "path", Err: fmt.Errorf("%s: first candle %v not after the previous file's last",
				filepath.Base(f), cs[0].OpenTime)}
		}
		all = append(all, cs...)
	}
	res := BackfillResult{Symbol: symbol, Files: len(files), Candles1m: len(all)}
	if len(all) == 0 {
		return res, nil
	}
	res.First, res.Last = all[0].OpenTime, all[len(all)-1].OpenTime
	out := append([]candles.Candle(nil), all...)
	for _, iv := range candles.Intervals[1:] {
		up, err := candles.RollUp(all, iv)
		if err != nil {
			return BackfillResult{}, &SourceError{Field: "path", Err: err}
		}
		out = append(out, up...)
	}
	if err := h.Put(out); err != nil {
		return BackfillResult{}, err
	}
	res.Written = len(out)
	return res, nil
}

func slicesFilterCSV(files []string) []string {
	out := files[:0]
	for _, f := range files {
		if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() {
			out = append(out, f)
		}
	}
	return out
}

// globEscape makes a literal file name safe to pass as a glob pattern.
func globEscape(p string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	return r.Replace(p)
}

// Source is one trade source (a followed connector, a matching stream).
type Source struct {
	Name      string
	connected atomic.Bool
	trades    atomic.Uint64
	mu        sync.Mutex
	lastErr   string
}

// SetConnected records the source's connection state.
func (s *Source) SetConnected(v bool) { s.connected.Store(v) }

// AddTrades counts received trades.
func (s *Source) AddTrades(n int) { s.trades.Add(uint64(n)) }

// SetError records the latest error.
func (s *Source) SetError(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.lastErr = ""
		return
	}
	s.lastErr = err.Error()
}

// SourceStatus is a snapshot of a Source.
type SourceStatus struct {
	Name      string
	Connected bool
	Trades    uint64
	LastError string
}

// Source returns (creating) the source called name; created reports
// whether it is new.
func (h *History) Source(name string) (src *Source, created bool) {
	h.srcMu.Lock()
	defer h.srcMu.Unlock()
	if s := h.sources[name]; s != nil {
		return s, false
	}
	s := &Source{Name: name}
	h.sources[name] = s
	return s, true
}

// Sources lists the sources by name.
func (h *History) Sources() []SourceStatus {
	h.srcMu.Lock()
	defer h.srcMu.Unlock()
	out := make([]SourceStatus, 0, len(h.sources))
	for _, s := range h.sources {
		s.mu.Lock()
		out = append(out, SourceStatus{Name: s.Name, Connected: s.connected.Load(), Trades: s.trades.Load(), LastError: s.lastErr})
		s.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Connected reports the source's connection state.
func (s *Source) Connected() bool { return s.connected.Load() }
