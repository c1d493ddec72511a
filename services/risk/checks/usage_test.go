package checks

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/tradsys/mesh/pkg/fixed"
)

func heapNow() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// The validators' leases follow RateBytes and LastTrades.Bytes: they must
// match what the buckets and prices really take on the heap.
func TestValidatorUsageMatchesTheHeap(t *testing.T) {
	const n = 50000
	names := make([]string, n) // the names arrive with the requests
	for i := range names {
		names[i] = fmt.Sprintf("account-%06d", i)
	}
	l := Limits{OrdersPerSecond: 10, OrderBurst: 10}
	before := heapNow()
	c := NewChecker(NewLastTrades())
	for _, a := range names {
		c.Check(OrderRate, Order{Account: string([]byte(a)), Symbol: "X", Quantity: 1}, l)
	}
	grew := heapNow() - before
	got := c.RateBytes()
	defer runtime.KeepAlive(c)
	defer runtime.KeepAlive(names)
	t.Logf("order rate: heap %d bytes, RateBytes %d (%.3f), %d per account", grew, got, float64(got)/float64(grew), grew/n)
	if r := float64(got) / float64(grew); r < 0.75 || r > 1.25 {
		t.Errorf("RateBytes %d, the heap grew %d: more than 25%% apart", got, grew)
	}

	before = heapNow()
	tr := NewLastTrades()
	for i, s := range names {
		tr.Set(string([]byte(s)), fixed.Decimal(i+1))
	}
	grew = heapNow() - before
	got = tr.Bytes()
	runtime.KeepAlive(tr)
	t.Logf("price band: heap %d bytes, Bytes %d (%.3f), %d per symbol", grew, got, float64(got)/float64(grew), grew/n)
	if r := float64(got) / float64(grew); r < 0.75 || r > 1.25 {
		t.Errorf("LastTrades.Bytes %d, the heap grew %d: more than 25%% apart", got, grew)
	}
}
