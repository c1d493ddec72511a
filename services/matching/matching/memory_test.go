package matching

import (
	"context"
	"runtime"
	"testing"

	"github.com/tradsys/mesh/services/matching/engine"
)

// heapNow is the live heap after a full collection.
func heapNow() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// Issue 13: the books' memory estimate (the Usage the engine's lease
// follows) is honest. Resting orders at distinct prices across symbols
// (the shape of the lease trace and of a growing book); the live heap they
// add, measured with runtime.MemStats after GC, against what MemoryBytes
// says they add. The estimate must cover at least 90% of what is measured
// and not claim more than twice it.
func TestMemoryEstimatePerRestingOrderIsHonest(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates ~100 MiB")
	}
	heapBase := heapNow()
	m, err := New(Config{Dir: t.TempDir(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	symbols := []string{"BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD"}
	submit := func(from, n uint64) {
		var last *Pending
		for id := from; id < from+n; id++ {
			p, err := m.Submit(symbols[id%uint64(len(symbols))], engine.Order{ID: id, Account: 1 + id%50, Side: engine.Buy,
				Type: engine.Limit, Price: int64(1 + id%100000), Qty: 1})
			if err != nil {
				t.Fatal(err)
			}
			last = p
			if id%1000 == 0 { // a client waits for its acknowledgements
				if err := last.Wait(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := last.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	submit(1, 1000) // warm: books, pools and rings exist
	heap0, est0 := heapNow(), m.MemoryBytes()
	const n = 300000
	submit(1001, n)
	heap1, est1 := heapNow(), m.MemoryBytes()
	measured, estimated := float64(heap1-heap0)/n, float64(est1-est0)/n
	t.Logf("per resting order: %.0f bytes measured (live heap after GC), %.0f estimated; total estimate %d MiB, heap %d MiB",
		measured, estimated, est1>>20, heap1>>20)
	if estimated < 0.9*measured || estimated > 2*measured {
		t.Fatalf("estimate %.0f bytes per resting order against %.0f measured: not within [0.9x, 2x]", estimated, measured)
	}
	if float64(est1) < 0.9*float64(heap1-heapBase) {
		t.Fatalf("the estimate of everything loaded, %d bytes, misses more than a tenth of the heap it added, %d", est1, heap1-heapBase)
	}
}

// The same for fills: each pair (a resting sell, a buy that takes it)
// leaves a trade in its symbol's ring and two finished orders in the
// table GetOrder answers from, and nothing in the books.
func TestMemoryEstimatePerFillIsHonest(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates ~50 MiB")
	}
	m, err := New(Config{Dir: t.TempDir(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	symbols := []string{"BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD"}
	id := uint64(0)
	pairs := func(n int) {
		var last *Pending
		for i := 0; i < n; i++ {
			sym := string([]byte(symbols[i%len(symbols)])) // a request's own string, as from the wire
			for _, side := range []engine.Side{engine.Sell, engine.Buy} {
				id++
				p, err := m.Submit(sym, engine.Order{ID: id, Account: 1 + id%50, Side: side, Type: engine.Limit, Price: int64(100 + i%1000), Qty: 1})
				if err != nil {
					t.Fatal(err)
				}
				last = p
			}
			if i%500 == 0 {
				if err := last.Wait(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := last.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	pairs(1000)
	heap0, est0 := heapNow(), m.MemoryBytes()
	const n = 45000 // within the trade rings (4 x 16384) and the finished-orders table (100,000)
	pairs(n)
	heap1, est1 := heapNow(), m.MemoryBytes()
	measured, estimated := float64(heap1-heap0)/n, float64(est1-est0)/n
	t.Logf("per fill (a trade, two finished orders): %.0f bytes measured (live heap after GC), %.0f estimated", measured, estimated)
	if estimated < 0.9*measured || estimated > 2*measured {
		t.Fatalf("estimate %.0f bytes per fill against %.0f measured: not within [0.9x, 2x]", estimated, measured)
	}
}
