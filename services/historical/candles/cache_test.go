package candles

import (
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func testPage(n int) Page {
	cs := make([]Candle, n)
	for i := range cs {
		cs[i] = mk(Interval1m, time.Duration(i)*time.Minute, "1", "1", "1", "1", "1", "1", 1)
	}
	return Page{Candles: cs}
}

func TestCacheEvictsByBytes(t *testing.T) {
	page := testPage(100) // 100 Candle structs
	one := entryBytes("k0", "BTCUSDT/1m", page)
	if want := 100*candleBytes + int64(len("BTCUSDT")); PageBytes(page) != want {
		t.Fatalf("PageBytes = %d, want %d", PageBytes(page), want)
	}
	c, _ := NewCache(CacheConfig{MaxBytes: 3*one + one/2})
	for i := 0; i < 3; i++ {
		c.Set(fmt.Sprintf("k%d", i), "BTCUSDT/1m", page)
	}
	st := c.Stats()
	if st.Entries != 3 || st.Bytes != 3*one || st.Evictions != 0 {
		t.Fatalf("after 3 sets: %+v (one=%d)", st, one)
	}
	c.Get("k0") // k1 is now least recently used
	c.Set("k3", "BTCUSDT/1m", page)
	if _, ok := c.Get("k1"); ok {
		t.Error("LRU entry k1 not evicted")
	}
	for _, k := range []string{"k0", "k2", "k3"} {
		if _, ok := c.Get(k); !ok {
			t.Errorf("%s evicted", k)
		}
	}
	// A big page evicts several small ones: bytes, not entries, decide.
	big := testPage(300)
	c.Set("big", "BTCUSDT/1m", big)
	st = c.Stats()
	if st.Bytes > st.MaxBytes || st.Entries != 1 || st.Evictions != 4 {
		t.Fatalf("after big set: %+v", st)
	}
	// Larger than the whole cache: not cached.
	if c.Set("huge", "BTCUSDT/1m", testPage(1000)) {
		t.Error("oversized page cached")
	}
	if st := c.Stats(); st.Rejected != 1 || st.Entries != 1 {
		t.Errorf("%+v", st)
	}
	// Replacing a key does not double count.
	c.Set("big", "BTCUSDT/1m", big)
	if st := c.Stats(); st.Bytes != entryBytes("big", "BTCUSDT/1m", big) {
		t.Errorf("replace: %+v", st)
	}
	c.InvalidateSeries("BTCUSDT", Interval1m)
	if st := c.Stats(); st.Bytes != 0 || st.Entries != 0 {
		t.Errorf("after invalidate: %+v", st)
	}
}

func TestCacheTTL(t *testing.T) {
	clk := &fakeClock{t: t0}
	c, _ := NewCache(CacheConfig{MaxBytes: 1 << 20, TTL: time.Minute, Now: clk.Now})
	c.Set("a", "s", testPage(1))
	clk.Add(59 * time.Second)
	if _, ok := c.Get("a"); !ok {
		t.Fatal("expired early")
	}
	clk.Add(time.Second)
	if _, ok := c.Get("a"); ok {
		t.Fatal("served after TTL")
	}
	st := c.Stats()
	if st.Hits != 1 || st.Misses != 1 || st.Expirations != 1 || st.Entries != 0 || st.Bytes != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestCacheBytesAreReal compares the accounted bytes with the heap growth
// of actually holding the cached pages.
func TestCacheBytesAreReal(t *testing.T) {
	if testing.Short() {
		t.Skip()
	}
	c, _ := NewCache(CacheConfig{MaxBytes: 1 << 30})
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	for i := 0; i < 200; i++ {
		p := testPage(1440)
		for j := range p.Candles {
			p.Candles[j].Symbol = "BTCUSDT" // one shared backing array
		}
		c.Set(fmt.Sprintf("BTCUSDT/1m|%d|%d|1440|", i, i+86400), "BTCUSDT/1m", p)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	heap := int64(ms1.HeapAlloc) - int64(ms0.HeapAlloc)
	acct := c.Stats().Bytes
	ratio := float64(acct) / float64(heap)
	t.Logf("accounted %d bytes, heap grew %d bytes, ratio %.3f", acct, heap, ratio)
	if ratio < 0.85 || ratio > 1.15 {
		t.Errorf("accounted bytes %d far from heap growth %d", acct, heap)
	}
	runtime.KeepAlive(c)
}

func TestCachedStoreReadThrough(t *testing.T) {
	week := weekCandles(t)
	s := openTestStore(t, filepath.Join(t.TempDir(), "c.db"))
	defer s.Close()
	if err := s.Put(week...); err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: t0}
	cache, _ := NewCache(CacheConfig{MaxBytes: 4 << 20, TTL: time.Minute, Now: clk.Now})
	cs, _ := NewCachedStore(s, cache)
	day0, day1 := week[0].OpenTime, week[1440].OpenTime
	p1, err := cs.Range("BTCUSDT", Interval1m, day0, day1, 1440, "")
	if err != nil || len(p1.Candles) != 1440 {
		t.Fatalf("%d %v", len(p1.Candles), err)
	}
	p2, _ := cs.Range("BTCUSDT", Interval1m, day0, day1, 1440, "")
	if &p1.Candles[0] != &p2.Candles[0] {
		t.Error("second read not served from cache")
	}
	if st := cache.Stats(); st.Hits != 1 || st.Misses != 1 || st.Entries != 1 {
		t.Errorf("stats %+v", st)
	}
	// A write invalidates the series: the next read sees it.
	mod := week[5]
	mod.Trades = 7
	if err := cs.Put(mod); err != nil {
		t.Fatal(err)
	}
	p3, _ := cs.Range("BTCUSDT", Interval1m, day0, day1, 1440, "")
	if p3.Candles[5].Trades != 7 {
		t.Error("stale page after Put")
	}
	clk.Add(2 * time.Minute)
	cs.Range("BTCUSDT", Interval1m, day0, day1, 1440, "")
	if st := cache.Stats(); st.Expirations != 1 {
		t.Errorf("stats %+v", st)
	}
	// Invalid arguments are rejected before the cache.
	if _, err := cs.Range("BTCUSDT", Interval1m, day1, day0, 0, ""); err == nil {
		t.Error("bad range accepted")
	}
}

// TestCachedStoreConcurrent hammers the cache from many goroutines (run
// with -race) with reads, writes and a budget that forces evictions.
func TestCachedStoreConcurrent(t *testing.T) {
	week := weekCandles(t)[:2880]
	s := openTestStore(t, filepath.Join(t.TempDir(), "cc.db"))
	defer s.Close()
	if err := s.Put(week...); err != nil {
		t.Fatal(err)
	}
	cache, _ := NewCache(CacheConfig{MaxBytes: 200 << 10, TTL: 50 * time.Millisecond})
	cs, _ := NewCachedStore(s, cache)
	var wg sync.WaitGroup
	var errs atomic.Int64
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				off := ((g + i) % 20) * 50
				n := 1 + (i%5)*60
				p, err := cs.Range("BTCUSDT", Interval1m, week[off].OpenTime, week[off+n].OpenTime, 0, "")
				if err != nil || len(p.Candles) != n || !p.Candles[0].OpenTime.Equal(week[off].OpenTime) {
					errs.Add(1)
				}
				if i%50 == 0 {
					_ = cs.Put(week[off])
				}
			}
		}(g)
	}
	wg.Wait()
	st := cache.Stats()
	if errs.Load() != 0 || st.Bytes > st.MaxBytes {
		t.Fatalf("errors %d, stats %+v", errs.Load(), st)
	}
	t.Logf("stats %+v", st)
}
