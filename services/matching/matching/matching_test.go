package matching

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/tradsys/mesh/pkg/locks"
	"github.com/tradsys/mesh/services/matching/engine"
)

func TestTradeRingWrapsDurabilityAndFile(t *testing.T) {
	l := newTradeLog(3)
	for s := uint64(1); s <= 5; s++ {
		l.push(engine.Trade{Symbol: "A", Seq: s, Price: int64(s), Qty: 1})
	}
	// Nothing is durable yet: readers see nothing.
	got, next, _, err := l.read("A", 3, 10, nil)
	if err != nil || len(got) != 0 || next != 3 {
		t.Fatalf("before durable: %v %d %v", got, next, err)
	}
	l.markDurable("A", 4)
	got, next, _, err = l.read("A", 3, 10, nil)
	if err != nil || len(got) != 2 || got[0].Seq != 3 || got[1].Seq != 4 || next != 5 {
		t.Fatalf("durable to 4: %v %d %v", got, next, err)
	}
	var oor *OutOfRangeError
	if _, _, _, err := l.read("A", 2, 10, nil); !errors.As(err, &oor) || oor.Oldest != 3 {
		t.Fatalf("seq 2: %v", err)
	}
	// from 0 means "after the last durable trade".
	if _, next, _, _ := l.read("A", 0, 10, nil); next != 5 {
		t.Fatalf("from 0: next %d", next)
	}
	l.markDurable("A", 5)
	path := filepath.Join(t.TempDir(), "trades.bin")
	if err := writeFileAtomic(path, l.marshal(42)); err != nil {
		t.Fatal(err)
	}
	// A file written for another journal offset is ignored.
	if l2 := loadTradeLog(path, 41, 3); len(l2.syms) != 0 {
		t.Fatal("mismatched offset accepted")
	}
	l2 := loadTradeLog(path, 42, 3)
	got, _, _, err = l2.read("A", 3, 10, nil)
	if err != nil || len(got) != 3 || got[2].Seq != 5 || got[2].Price != 5 || got[2].Symbol != "A" {
		t.Fatalf("reloaded: %v %v", got, err)
	}
	// Recovery continues the ring after the book's last trade.
	l2.ensure("A", 5)
	l2.push(engine.Trade{Symbol: "A", Seq: 6})
	l2.markDurable("A", 6)
	if got, _, _, _ = l2.read("A", 6, 10, nil); len(got) != 1 {
		t.Fatalf("after reload: %v", got)
	}
	// An empty ring after a snapshot without a ring file: older sequences are out of range.
	l3 := newTradeLog(3)
	l3.ensure("B", 10)
	if _, _, _, err := l3.read("B", 1, 10, nil); !errors.As(err, &oor) || oor.Oldest != 11 {
		t.Fatalf("empty ring: %v", err)
	}
}

func TestMatcherRecoversAndFenceSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	open := func() *Matcher {
		m, err := New(Config{Dir: dir, NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := open()
	submit := func(id uint64, side engine.Side, price, qty int64) *Pending {
		p, err := m.Submit("X", engine.Order{ID: id, Account: id, Side: side, Type: engine.Limit, Price: price, Qty: qty})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
		return p
	}
	submit(1, engine.Sell, 10, 5)
	if p := submit(2, engine.Buy, 10, 3); len(p.Trades) != 1 || p.Trades[0].Seq != 1 {
		t.Fatalf("trade: %+v", p.Execution)
	}
	if err := m.fence.check(0); err == nil {
		t.Fatal("zero token accepted")
	}
	if _, err := m.Fenced(context.Background(), nil, 100, 0, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Submit("X", engine.Order{ID: 9, Side: engine.Buy, Type: engine.Limit, Price: 1, Qty: 1}); !errors.Is(err, ErrNotActive) {
		t.Fatalf("after close: %v", err)
	}
	m = open()
	o, err := m.Order("X", 1)
	if err != nil || o.Qty != 2 {
		t.Fatalf("order 1 after restart: %+v %v", o, err)
	}
	var stale *locks.StaleTokenError
	if _, err := m.Fenced(context.Background(), nil, 99, 0, func() error { return nil }); !errors.As(err, &stale) {
		t.Fatalf("stale token after restart: %v", err)
	}
	if got, _, _, err := m.ReadTrades("X", 1, 10, nil); err != nil || len(got) != 1 {
		t.Fatalf("trades after restart: %v %v", got, err)
	}
	if m.LastMemoryBytes() <= 0 {
		t.Fatal("no memory recorded at unload")
	}
	_ = m.Close(context.Background())
}
