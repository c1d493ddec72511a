package feeds

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func trade(sym string, id int64) Trade {
	return Trade{Venue: "t", Symbol: sym, TradeID: id, Price: Scale, Qty: Scale, Time: time.Unix(id, 0)}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestStreamSequencesPerSymbol(t *testing.T) {
	s := NewStream(StreamConfig{RingSize: 8})
	for i := 1; i <= 5; i++ {
		if seq, _ := s.Append(trade("A", int64(i))); seq != uint64(i) {
			t.Fatalf("A seq %d, want %d", seq, i)
		}
	}
	if seq, _ := s.Append(trade("B", 1)); seq != 1 {
		t.Fatalf("B seq %d, want 1 (sequences are per symbol)", seq)
	}
	if o, l := s.Bounds("A"); o != 1 || l != 5 {
		t.Fatalf("bounds %d %d", o, l)
	}
}

func TestStreamResume(t *testing.T) {
	ctx := ctxT(t)
	s := NewStream(StreamConfig{RingSize: 8})
	for i := 1; i <= 20; i++ {
		s.Publish(trade("A", int64(i)))
	}
	if o, l := s.Bounds("A"); o != 13 || l != 20 {
		t.Fatalf("bounds %d..%d, want 13..20", o, l)
	}
	// resume from a retained sequence: backlog then live
	sub, err := s.Subscribe("A", 15)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for want := uint64(15); want <= 23; want++ {
		if want == 21 {
			// Live events once the backlog is read: published earlier, they
			// would push 15 out of the 8-slot ring before it is read (a slow
			// consumer, dropped by design).
			go func() {
				for i := 21; i <= 23; i++ {
					s.Publish(trade("A", int64(i)))
				}
			}()
		}
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Seq != want || ev.Event.(Trade).TradeID != int64(want) {
			t.Fatalf("got seq %d id %d, want %d", ev.Seq, ev.Event.(Trade).TradeID, want)
		}
	}
	if sub.NextSeq() != 24 {
		t.Fatalf("NextSeq %d", sub.NextSeq())
	}

	// too old
	_, err = s.Subscribe("A", 3)
	var gone *SequenceGoneError
	if !errors.Is(err, ErrSequenceGone) || !errors.As(err, &gone) || gone.Oldest != 16 || gone.Requested != 3 {
		t.Fatalf("old resume: %v", err)
	}
	// in the future
	if _, err := s.Subscribe("A", 99); !errors.Is(err, ErrSequenceAhead) {
		t.Fatalf("future resume: %v", err)
	}
	// exactly next: allowed, waits for live data
	live, err := s.Subscribe("A", 24)
	if err != nil {
		t.Fatal(err)
	}
	live0, _ := s.Subscribe("A", 0)
	s.Publish(trade("A", 24))
	for _, sb := range []*Subscription{live, live0} {
		if ev, err := sb.Next(ctx); err != nil || ev.Seq != 24 {
			t.Fatalf("live: %+v %v", ev, err)
		}
	}
	// a symbol never published: live subscription works, then data
	z, err := s.Subscribe("Z", 1)
	if err != nil {
		t.Fatal(err)
	}
	go s.Publish(trade("Z", 1))
	if ev, err := z.Next(ctx); err != nil || ev.Seq != 1 {
		t.Fatalf("new symbol: %+v %v", ev, err)
	}
}

func TestStreamSlowConsumerDoesNotBlockPublisher(t *testing.T) {
	ctx := ctxT(t)
	s := NewStream(StreamConfig{RingSize: 16})
	slow, _ := s.Subscribe("A", 0)
	fast, _ := s.Subscribe("A", 0)
	var wg sync.WaitGroup
	wg.Add(1)
	var fastGot uint64
	go func() {
		defer wg.Done()
		for ev, err := range fast.All(ctx) {
			if err != nil {
				t.Errorf("fast consumer: %v", err)
				return
			}
			fastGot = ev.Seq
			if ev.Seq == 1000 {
				return
			}
		}
	}()
	// the publisher runs to completion although "slow" never reads
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= 1000; i++ {
			s.Publish(trade("A", int64(i)))
			for fast.Lag() > 8 && fast.Err() == nil { // keep the fast one within the ring
				time.Sleep(10 * time.Microsecond)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("publisher blocked")
	}
	wg.Wait()
	if fastGot != 1000 {
		t.Fatalf("fast consumer stopped at %d", fastGot)
	}
	_, err := slow.Next(ctx)
	var sc *SlowConsumerError
	if !errors.Is(err, ErrSlowConsumer) || !errors.As(err, &sc) || sc.Next != 1 || sc.Oldest != 985 {
		t.Fatalf("slow consumer: %v", err)
	}
	if _, err2 := slow.Next(ctx); !errors.Is(err2, ErrSlowConsumer) || slow.Err() == nil {
		t.Fatalf("terminal error not sticky: %v", err2)
	}
	// resubscribing from the lost position says the sequence is gone
	if _, err := s.Subscribe("A", sc.Next); !errors.Is(err, ErrSequenceGone) {
		t.Fatalf("resubscribe: %v", err)
	}
}

func TestStreamChannelAndClose(t *testing.T) {
	s := NewStream(StreamConfig{RingSize: 4})
	sub, _ := s.Subscribe("A", 0)
	ch := sub.C()
	s.Publish(trade("A", 1))
	s.Publish(trade("A", 2))
	if ev := <-ch; ev.Seq != 1 {
		t.Fatal(ev)
	}
	s.Close()
	if ev, ok := <-ch; !ok || ev.Seq != 2 {
		t.Fatalf("retained event after close: %+v %v", ev, ok)
	}
	if _, ok := <-ch; ok {
		t.Fatal("channel not closed")
	}
	if !errors.Is(sub.Err(), ErrStreamClosed) {
		t.Fatalf("Err = %v", sub.Err())
	}
	if err := s.Publish(trade("A", 3)); !errors.Is(err, ErrStreamClosed) {
		t.Fatalf("publish after close: %v", err)
	}
	if err := s.Publish(trade("NEW", 3)); !errors.Is(err, ErrStreamClosed) {
		t.Fatalf("publish new symbol after close: %v", err)
	}

	// Close of a waiting subscription wakes it
	s2 := NewStream(StreamConfig{})
	sub2, _ := s2.Subscribe("A", 0)
	go func() { time.Sleep(20 * time.Millisecond); sub2.Close() }()
	if _, err := sub2.Next(context.Background()); !errors.Is(err, ErrSubscriptionClosed) {
		t.Fatalf("closed subscription: %v", err)
	}
	// context cancellation is not terminal
	sub3, _ := s2.Subscribe("A", 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := sub3.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	s2.Publish(trade("A", 1))
	if ev, err := sub3.Next(context.Background()); err != nil || ev.Seq != 1 {
		t.Fatal(ev, err)
	}
}

func TestStreamConcurrent(t *testing.T) {
	ctx := ctxT(t)
	s := NewStream(StreamConfig{RingSize: 1 << 14})
	syms := []string{"A", "B", "C"}
	var wg sync.WaitGroup
	for _, sym := range syms {
		sub, _ := s.Subscribe(sym, 1)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 1; i <= 2000; i++ {
				s.Publish(trade(sym, int64(i)))
			}
		}()
		go func() {
			defer wg.Done()
			for want := uint64(1); want <= 2000; want++ {
				ev, err := sub.Next(ctx)
				if err != nil || ev.Seq != want || ev.Event.EventSymbol() != sym {
					t.Errorf("%s: %+v %v want %d", sym, ev, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}
