package matching

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"

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
	o, _, err := m.Order("X", 1)
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

// Trades carry the acceptance time of their taker input; a restart gives
// them the same time, whether they come back from the trade ring file or
// from replaying the journal.
func TestTradeTimesSurviveRingAndJournalReplay(t *testing.T) {
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
	before := time.Now().UnixNano()
	for i, o := range []engine.Order{
		{ID: 1, Account: 1, Side: engine.Sell, Type: engine.Limit, Price: 10, Qty: 5},
		{ID: 2, Account: 1, Side: engine.Sell, Type: engine.Limit, Price: 11, Qty: 5},
		{ID: 3, Account: 2, Side: engine.Buy, Type: engine.Limit, Price: 11, Qty: 7}, // two trades
		{ID: 4, Account: 2, Side: engine.Buy, Type: engine.Market, Qty: 1},
	} {
		p, err := m.Submit("X", o)
		if err == nil {
			err = p.Wait()
		}
		if err != nil {
			t.Fatal(i, err)
		}
	}
	want, _, _, err := m.ReadTrades("X", 1, 10, nil)
	if err != nil || len(want) != 3 {
		t.Fatalf("trades: %v %v", want, err)
	}
	if want[0].Time < before || want[0].Time != want[1].Time || want[2].Time < want[1].Time {
		t.Fatalf("times %d %d %d (test started %d)", want[0].Time, want[1].Time, want[2].Time, before)
	}
	check := func(how string) {
		t.Helper()
		got, _, _, err := m.ReadTrades("X", 1, 10, nil)
		if err != nil || len(got) != len(want) {
			t.Fatalf("%s: %v %v", how, got, err)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: trade %d = %+v, want %+v", how, i, got[i], want[i])
			}
		}
	}
	// Clean restart: the ring file.
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	m = open()
	check("from the ring file")
	// Without snapshot and ring: everything replayed from the journal.
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{SnapshotFile, TradesFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	m = open()
	check("from the journal")
	// New inputs never get an older time than journaled ones.
	p, err := m.Submit("X", engine.Order{ID: 5, Account: 3, Side: engine.Buy, Type: engine.Market, Qty: 1})
	if err == nil {
		err = p.Wait()
	}
	if err != nil || len(p.Trades) != 1 || p.Trades[0].Time < want[2].Time {
		t.Fatalf("after restart: %+v %v", p.Trades, err)
	}
	_ = m.Close(context.Background())
}

// A trade ring file of the first layout (no times) still loads.
func TestTradeRingLoadsFirstLayout(t *testing.T) {
	le := binary.LittleEndian
	b := append([]byte(nil), "TSTR"...)
	b = le.AppendUint64(b, 7)
	b = le.AppendUint32(b, 1)
	b = append(b, 1, 'A')
	b = le.AppendUint64(b, 3) // first
	b = le.AppendUint32(b, 2)
	for i := 0; i < 2; i++ {
		for _, v := range []uint64{100 + uint64(i), 2, 10, 11, 1, 2} {
			b = le.AppendUint64(b, v)
		}
		b = append(b, byte(engine.Buy))
		b = le.AppendUint64(b, 0)
	}
	b = le.AppendUint32(b, crc32.Checksum(b, castagnoli))
	path := filepath.Join(t.TempDir(), "trades.bin")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	l := loadTradeLog(path, 7, 10)
	got, _, _, err := l.read("A", 3, 10, nil)
	if err != nil || len(got) != 2 || got[1].Seq != 4 || got[1].Price != 101 || got[1].Time != 0 || got[1].TakerSide != engine.Buy {
		t.Fatalf("first layout: %+v %v", got, err)
	}
}
