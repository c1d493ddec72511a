package feeds

import (
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// Usage is what a connector's lease follows: it must match what the
// stream's rings and retained events really take on the heap.
func TestUsageMatchesTheHeap(t *testing.T) {
	heap := func() int64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	venue := "sim"
	syms := make([]string, 40)
	for i := range syms {
		syms[i] = fmt.Sprintf("SYM%02d", i)
	}
	before := heap()
	s := NewStream(StreamConfig{RingSize: 2048})
	now := time.Now()
	for i := 0; i < 3000; i++ { // laps the rings: evicted events leave the count
		for j, sym := range syms {
			var ev Event = Trade{Venue: venue, Symbol: sym, TradeID: int64(i), Time: now, Price: 1, Qty: 2}
			if (i+j)%3 == 0 {
				ev = BookUpdate{Venue: venue, Symbol: sym, Seq: int64(i), Time: now,
					Bids: make([]Level, 1+i%10), Asks: make([]Level, 1+j%10)}
			}
			if err := s.Publish(ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	used := heap() - before
	got := s.Usage()
	runtime.KeepAlive(s)
	t.Logf("heap %d bytes, Usage %d bytes (%.3f)", used, got, float64(got)/float64(used))
	if r := float64(got) / float64(used); r < 0.9 || r > 1.1 {
		t.Fatalf("Usage %d bytes, the heap grew %d bytes: more than 10%% apart", got, used)
	}
}

// A stream that refuses new symbols keeps the ones it has flowing,
// refuses subscriptions to new ones with the cause, and drops their events.
func TestRefuseNewSymbols(t *testing.T) {
	s := NewStream(StreamConfig{RingSize: 16})
	if err := s.Publish(Trade{Symbol: "OLD", Price: 1}); err != nil {
		t.Fatal(err)
	}
	sub, err := s.Subscribe("OLD", 1)
	if err != nil {
		t.Fatal(err)
	}
	cause := errors.New("lease full")
	s.RefuseNewSymbols(cause)
	if _, err := s.Subscribe("NEW", 0); !errors.Is(err, cause) {
		t.Fatalf("subscribe to a new symbol: %v, want the cause", err)
	} else if r := (*NewSymbolRefusedError)(nil); !errors.As(err, &r) || r.Symbol != "NEW" {
		t.Fatalf("subscribe to a new symbol: %v, want a NewSymbolRefusedError naming NEW", err)
	}
	if err := s.Publish(Trade{Symbol: "NEW", Price: 1}); err != nil || s.Dropped() != 1 {
		t.Fatalf("publish of a new symbol: %v, dropped %d", err, s.Dropped())
	}
	if err := s.Publish(Trade{Symbol: "OLD", Price: 2}); err != nil {
		t.Fatal(err)
	}
	for want := uint64(1); want <= 2; want++ {
		ev, err := sub.Next(t.Context())
		if err != nil || ev.Seq != want {
			t.Fatalf("old symbol's event %d: %v %v", want, ev, err)
		}
	}
	if len(s.Symbols()) != 1 {
		t.Fatalf("symbols %v", s.Symbols())
	}
	s.RefuseNewSymbols(nil)
	if _, err := s.Subscribe("NEW", 0); err != nil {
		t.Fatalf("accepting again: %v", err)
	}
}
