package checks

import (
	"fmt"
	"runtime"
	"testing"
	"time"

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

// A bucket that has refilled is what a new one would be: forgetting it
// (the order rate's shedding when its lease may not grow) changes no
// verdict, and frees its memory; a bucket still short of its burst stays.
func TestForgetFullBuckets(t *testing.T) {
	now := time.Unix(1000, 0)
	c := NewChecker(NewLastTrades())
	c.now = func() time.Time { return now }
	l := Limits{OrdersPerSecond: 1, OrderBurst: 2}
	for i := 0; i < 100; i++ {
		if r := c.Check(OrderRate, Order{Account: fmt.Sprintf("idle-%d", i), Quantity: 1}, l); !r.Passed {
			t.Fatal(r)
		}
	}
	now = now.Add(time.Second) // the idle accounts' buckets are full again
	for range 2 {
		if r := c.Check(OrderRate, Order{Account: "busy", Quantity: 1}, l); !r.Passed {
			t.Fatal(r)
		}
	}
	before := c.RateBytes()
	if n := c.ForgetFullBuckets(); n != 100 {
		t.Fatalf("forgot %d buckets, want the 100 full ones", n)
	}
	if after := c.RateBytes(); after >= before/50 {
		t.Fatalf("RateBytes %d after forgetting, %d before", after, before)
	}
	// The busy account's bucket is kept: still empty, its next order is limited.
	if r := c.Check(OrderRate, Order{Account: "busy", Quantity: 1}, l); r.Passed || r.Code != CodeRateLimited {
		t.Fatalf("busy account after forgetting: %v, want RATE_LIMITED", r)
	}
	// A forgotten account starts a full bucket: its burst passes, as it would have.
	for range 2 {
		if r := c.Check(OrderRate, Order{Account: "idle-7", Quantity: 1}, l); !r.Passed {
			t.Fatalf("forgotten account: %v", r)
		}
	}
}
