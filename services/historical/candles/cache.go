package candles

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
	"unsafe"
)

// CacheConfig configures a Cache.
type CacheConfig struct {
	// MaxBytes bounds the estimated memory held by cached pages (entry
	// bookkeeping + key + candle slices + strings). Required, > 0.
	MaxBytes int64
	// TTL is how long an entry is served after it was loaded; 0 = no expiry.
	TTL time.Duration
	// Now is the clock (default time.Now); for tests.
	Now func() time.Time
}

// CacheStats are the cache's counters and current size.
type CacheStats struct {
	Hits        uint64
	Misses      uint64 // includes expired lookups
	Evictions   uint64 // entries removed to stay within MaxBytes
	Expirations uint64 // entries removed because their TTL passed
	Rejected    uint64 // pages larger than MaxBytes, not cached
	Bytes       int64  // current estimated bytes
	Entries     int
	MaxBytes    int64
}

// Cache is a concurrency-safe LRU cache of Range pages, bounded in bytes,
// with an optional TTL. Cached pages are shared: callers must treat the
// returned Candles slice as read-only (its capacity is clipped, so append
// copies).
type Cache struct {
	mu       sync.Mutex
	maxBytes int64
	ttl      time.Duration
	now      func() time.Time
	items    map[string]*cacheEntry
	series   map[string]map[*cacheEntry]struct{} // "SYMBOL/iv" -> entries
	gen      map[string]uint64                   // series invalidation generation
	head     cacheEntry                          // LRU sentinel: head.next = most recent
	bytes    int64
	stats    CacheStats
}

type cacheEntry struct {
	key        string
	seriesKey  string
	page       Page
	size       int64
	expires    time.Time
	prev, next *cacheEntry
}

// Size accounting constants (64-bit): the entry struct itself, plus an
// estimate of the per-element overhead of the two Go maps that index it
// (key header + pointer + tophash/overflow share, rounded up).
const (
	entryStructBytes = int64(unsafe.Sizeof(cacheEntry{}))
	candleBytes      = int64(unsafe.Sizeof(Candle{}))
	mapSlotBytes     = 48
)

// PageBytes is the accounted size of a page: the Candle structs of the
// slice's full capacity (rounded up to whole pages when large), the bytes of each distinct symbol string backing
// array, and the token string.
func PageBytes(p Page) int64 {
	n := allocBytes(int64(cap(p.Candles))*candleBytes) + int64(len(p.NextPageToken))
	var last *byte
	for i := range p.Candles {
		s := p.Candles[i].Symbol
		if d := unsafe.StringData(s); d != last {
			n += int64(len(s))
			last = d
		}
	}
	return n
}

// allocBytes rounds a large allocation up to the runtime's 8 KiB pages
// (objects over 32 KiB get whole pages); small ones are counted as is.
func allocBytes(n int64) int64 {
	if n > 32<<10 {
		return (n + 8191) &^ 8191
	}
	return n
}

func entryBytes(key, seriesKey string, p Page) int64 {
	return entryStructBytes + 2*mapSlotBytes + int64(len(key)) + int64(len(seriesKey)) + PageBytes(p)
}

// NewCache returns an empty cache.
func NewCache(cfg CacheConfig) (*Cache, error) {
	if cfg.MaxBytes <= 0 {
		return nil, fmt.Errorf("cache: field max_bytes %d must be > 0", cfg.MaxBytes)
	}
	if cfg.TTL < 0 {
		return nil, fmt.Errorf("cache: field ttl %v is negative", cfg.TTL)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Cache{
		maxBytes: cfg.MaxBytes, ttl: cfg.TTL, now: cfg.Now,
		items:  make(map[string]*cacheEntry),
		series: make(map[string]map[*cacheEntry]struct{}),
		gen:    make(map[string]uint64),
	}
	c.head.next, c.head.prev = &c.head, &c.head
	return c, nil
}

func (c *Cache) unlink(e *cacheEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (c *Cache) pushFront(e *cacheEntry) {
	e.prev, e.next = &c.head, c.head.next
	c.head.next.prev = e
	c.head.next = e
}

func (c *Cache) removeLocked(e *cacheEntry) {
	c.unlink(e)
	delete(c.items, e.key)
	if set := c.series[e.seriesKey]; set != nil {
		delete(set, e)
		if len(set) == 0 {
			delete(c.series, e.seriesKey)
		}
	}
	c.bytes -= e.size
}

// Get returns the cached page for key.
func (c *Cache) Get(key string) (Page, bool) { return c.get([]byte(key)) }

// get looks key up without converting it to a string (no allocation).
func (c *Cache) get(key []byte) (Page, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.items[string(key)]
	if e == nil {
		c.stats.Misses++
		return Page{}, false
	}
	if c.ttl > 0 && !c.now().Before(e.expires) {
		c.removeLocked(e)
		c.stats.Expirations++
		c.stats.Misses++
		return Page{}, false
	}
	if c.head.next != e {
		c.unlink(e)
		c.pushFront(e)
	}
	c.stats.Hits++
	return e.page, true
}

// Set stores page under key, tagged with seriesKey for invalidation, and
// evicts least recently used entries until the cache fits MaxBytes. A page
// that alone exceeds MaxBytes is not cached. It returns whether the page
// was stored.
func (c *Cache) Set(key, seriesKey string, page Page) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.setLocked(key, seriesKey, page)
}

func (c *Cache) setLocked(key, seriesKey string, page Page) bool {
	page.Candles = slices.Clip(page.Candles)
	size := entryBytes(key, seriesKey, page)
	if old := c.items[key]; old != nil {
		c.removeLocked(old)
	}
	if size > c.maxBytes {
		c.stats.Rejected++
		return false
	}
	for c.bytes+size > c.maxBytes && c.head.prev != &c.head {
		c.evictOldestLocked()
	}
	e := &cacheEntry{key: key, seriesKey: seriesKey, page: page, size: size}
	if c.ttl > 0 {
		e.expires = c.now().Add(c.ttl)
	}
	c.items[key] = e
	set := c.series[seriesKey]
	if set == nil {
		set = make(map[*cacheEntry]struct{})
		c.series[seriesKey] = set
	}
	set[e] = struct{}{}
	c.pushFront(e)
	c.bytes += size
	return true
}

func (c *Cache) evictOldestLocked() {
	e := c.head.prev
	if e == &c.head {
		return
	}
	c.removeLocked(e)
	c.stats.Evictions++
}

// SetMaxBytes bounds the cache to n bytes (> 0) from now on, evicting
// least recently used entries at once until it fits.
func (c *Cache) SetMaxBytes(n int64) {
	if n <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.maxBytes = n
	for c.bytes > n && c.head.prev != &c.head {
		c.evictOldestLocked()
	}
}

// Bytes is the cache's estimated size now.
func (c *Cache) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// InvalidateSeries drops every cached page of symbol/iv (call after writes).
func (c *Cache) InvalidateSeries(symbol string, iv Interval) {
	sk := seriesKey(symbol, iv)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen[sk]++
	for e := range c.series[sk] {
		c.removeLocked(e)
	}
}

// Purge drops every entry.
func (c *Cache) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.items {
		c.removeLocked(e)
	}
	for k := range c.gen {
		c.gen[k]++
	}
}

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Bytes = c.bytes
	s.Entries = len(c.items)
	s.MaxBytes = c.maxBytes
	return s
}

func seriesKey(symbol string, iv Interval) string { return symbol + "/" + iv.String() }

func appendRangeKey(b []byte, symbol string, iv Interval, start, end time.Time, limit int, token string) []byte {
	b = append(b, symbol...)
	b = append(b, '/')
	b = append(b, iv.String()...)
	b = append(b, '|')
	b = strconv.AppendInt(b, start.UnixNano(), 10)
	b = append(b, '|')
	b = strconv.AppendInt(b, end.UnixNano(), 10)
	b = append(b, '|')
	b = strconv.AppendInt(b, int64(limit), 10)
	b = append(b, '|')
	return append(b, token...)
}

// CachedStore is a read-through cache in front of a Store: Range answers
// are cached by their full argument list; Put writes through to the store
// and invalidates the cached pages of the written series. Concurrent
// misses for the same key share one store read.
type CachedStore struct {
	store  *Store
	cache  *Cache
	mu     sync.Mutex
	flight map[string]*flightCall
}

type flightCall struct {
	wg   sync.WaitGroup
	page Page
	err  error
}

// NewCachedStore wraps store with cache.
func NewCachedStore(store *Store, cache *Cache) (*CachedStore, error) {
	if store == nil || cache == nil {
		return nil, errors.New("cached store: store and cache are required")
	}
	return &CachedStore{store: store, cache: cache, flight: make(map[string]*flightCall)}, nil
}

// Cache returns the underlying cache (for stats).
func (cs *CachedStore) Cache() *Cache { return cs.cache }

// Range is Store.Range through the cache. The returned Candles are shared
// with the cache and must not be modified.
func (cs *CachedStore) Range(symbol string, iv Interval, start, end time.Time, limit int, pageToken string) (Page, error) {
	if _, _, _, err := rangeArgs(symbol, iv, start, end, limit); err != nil {
		return Page{}, err
	}
	var kbuf [128]byte
	kb := appendRangeKey(kbuf[:0], symbol, iv, start, end, limit, pageToken)
	if p, ok := cs.cache.get(kb); ok {
		return p, nil
	}
	key := string(kb)
	cs.mu.Lock()
	if f := cs.flight[key]; f != nil {
		cs.mu.Unlock()
		f.wg.Wait()
		return f.page, f.err
	}
	f := &flightCall{}
	f.wg.Add(1)
	cs.flight[key] = f
	cs.mu.Unlock()

	sk := seriesKey(symbol, iv)
	cs.cache.mu.Lock()
	gen := cs.cache.gen[sk]
	cs.cache.mu.Unlock()

	f.page, f.err = cs.store.Range(symbol, iv, start, end, limit, pageToken)
	if f.err == nil {
		f.page.Candles = slices.Clip(f.page.Candles)
		cs.cache.mu.Lock()
		if cs.cache.gen[sk] == gen { // no write to the series meanwhile
			cs.cache.setLocked(key, sk, f.page)
		}
		cs.cache.mu.Unlock()
	}
	cs.mu.Lock()
	delete(cs.flight, key)
	cs.mu.Unlock()
	f.wg.Done()
	return f.page, f.err
}

// Put writes through to the store, then invalidates the written series.
func (cs *CachedStore) Put(candles ...Candle) error {
	err := cs.store.Put(candles...)
	seen := map[string]bool{}
	for i := range candles {
		c := &candles[i]
		k := seriesKey(c.Symbol, c.Interval)
		if !seen[k] {
			seen[k] = true
			cs.cache.InvalidateSeries(c.Symbol, c.Interval)
		}
	}
	return err
}

// Latest is Store.Latest (not cached: it changes with every write).
func (cs *CachedStore) Latest(symbol string, iv Interval) (Candle, error) {
	return cs.store.Latest(symbol, iv)
}
