package journal

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tradsys/mesh/services/matching/engine"
)

func TestRecordRoundTrip(t *testing.T) {
	recs := []Record{
		{Op: OpSubmit, Symbol: "AAPL", Order: engine.Order{ID: 7, Account: 3, Side: engine.Sell, Type: engine.FOK, Price: 12345, Qty: 99}},
		{Op: OpCancel, Symbol: "X", ID: 1 << 60},
		{Op: OpReplace, Symbol: "Y", ID: 5, Price: 10, Qty: 20},
		{Op: OpSetAlgorithm, Symbol: "Z", Algorithm: "pro-rata"},
		{Op: OpSubmit, Symbol: "AAPL", Order: engine.Order{ID: 8, Side: engine.Buy, Type: engine.Limit, Price: 1, Qty: 2}, Time: 1_700_000_000_123_456_789},
		{Op: OpReplace, Symbol: "Y", ID: 5, Price: 10, Qty: 20, Time: 42},
	}
	for _, r := range recs {
		got, err := DecodeRecord(AppendRecord(nil, &r))
		if err != nil || got != r {
			t.Fatalf("%+v -> %+v %v", r, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {1}, {9, 0}, {1, 5, 'a'}, {2, 0, 1, 2, 3}} {
		if _, err := DecodeRecord(bad); err == nil {
			t.Fatalf("decoded garbage %v", bad)
		}
	}
}

func TestGroupCommitConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const G, N = 8, 100
	var wg sync.WaitGroup
	for g := 0; g < G; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < N; i++ {
				r := Record{Op: OpCancel, Symbol: "S", ID: uint64(g*N + i + 1)}
				if err := w.Append(&r); err != nil {
					t.Error(err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	batches := w.Batches()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(path)
	defer f.Close()
	seen := map[uint64]bool{}
	st, err := Scan(f, func(_ int64, r Record) error { seen[r.ID] = true; return nil })
	if err != nil || st.Records != G*N || len(seen) != G*N || st.CorruptRecords != 0 {
		t.Fatalf("%+v %v %d", st, err, len(seen))
	}
	t.Logf("%d records in %d fsync batches", G*N, batches)
	if batches >= G*N {
		t.Errorf("no group commit: %d batches for %d records", batches, G*N)
	}
}

func writeN(t *testing.T, path string, n int) {
	w, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		r := Record{Op: OpReplace, Symbol: "S", ID: uint64(i + 1), Price: 100, Qty: 5}
		if _, err := w.Enqueue(&r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptTailTruncated(t *testing.T) {
	dir := t.TempDir()
	mutations := map[string]func([]byte) []byte{
		"torn payload":   func(b []byte) []byte { return b[:len(b)-3] },
		"torn header":    func(b []byte) []byte { return append(b, 1, 2, 3) },
		"crc mismatch":   func(b []byte) []byte { b[len(b)-1] ^= 0xFF; return b },
		"garbage length": func(b []byte) []byte { return append(b, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 1) },
		"zero fill":      func(b []byte) []byte { return append(b, make([]byte, 64)...) },
	}
	for name, mut := range mutations {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			writeN(t, path, 50)
			data, _ := os.ReadFile(path)
			os.WriteFile(path, mut(append([]byte(nil), data...)), 0o644)
			w, err := Open(path, Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			st := w.OpenStats()
			if st.CorruptRecords != 1 || (st.Records != 50 && st.Records != 49) {
				t.Fatalf("%+v", st)
			}
			// the journal keeps working after truncation
			w.Append(&Record{Op: OpCancel, Symbol: "S", ID: 999})
			w.Close()
			f, _ := os.Open(path)
			st2, err := Scan(f, nil)
			f.Close()
			if err != nil || st2.CorruptRecords != 0 || st2.Records != st.Records+1 {
				t.Fatalf("after reopen: %+v %v", st2, err)
			}
		})
	}
}

// tradeLog is an engine sink recording every event.
type tradeLog struct{ engine.SliceSink }

func randomInputs(r *rand.Rand, n int) []Record {
	syms := []string{"AAA", "BBB"}
	out := make([]Record, 0, n+1)
	out = append(out, Record{Op: OpSetAlgorithm, Symbol: "BBB", Algorithm: "pro-rata"})
	var next uint64
	for i := 0; i < n; i++ {
		sym := syms[r.Intn(2)]
		side := engine.Side(1 + r.Intn(2))
		p := int64(990 + r.Intn(14))
		if side == engine.Sell {
			p = 2000 - p
		}
		q := int64(1 + r.Intn(10))
		switch x := r.Intn(100); {
		case x < 45:
			next++
			out = append(out, Record{Op: OpSubmit, Symbol: sym, Order: engine.Order{ID: next, Account: uint64(r.Intn(3)), Side: side, Type: engine.Limit, Price: p, Qty: q}})
		case x < 60:
			next++
			out = append(out, Record{Op: OpSubmit, Symbol: sym, Order: engine.Order{ID: next, Account: uint64(r.Intn(3)), Side: side, Type: engine.OrderType(2 + r.Intn(4)), Price: p, Qty: q}})
		case x < 75:
			out = append(out, Record{Op: OpCancel, Symbol: sym, ID: uint64(1 + r.Intn(int(next)+1))})
		default:
			out = append(out, Record{Op: OpReplace, Symbol: sym, ID: uint64(1 + r.Intn(int(next)+1)), Price: p, Qty: q})
		}
	}
	return out
}

func TestReplayAndSnapshotEquivalence(t *testing.T) {
	for seed := int64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			dir := t.TempDir()
			jpath, spath := filepath.Join(dir, "journal"), filepath.Join(dir, "snap")
			live := &tradeLog{}
			eng, _ := engine.New(engine.Config{Sink: live})
			w, err := Open(jpath, Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			rec := NewRecorder(eng, w)
			inputs := randomInputs(rand.New(rand.NewSource(seed)), 5000)
			accepted, cut := 0, 0
			for i, in := range inputs {
				var err error
				switch in.Op {
				case OpSubmit:
					_, err = rec.Submit(in.Symbol, in.Order)
				case OpCancel:
					err = rec.Cancel(in.Symbol, in.ID)
				case OpReplace:
					_, err = rec.Replace(in.Symbol, in.ID, in.Price, in.Qty)
				case OpSetAlgorithm:
					err = rec.SetAlgorithm(in.Symbol, in.Algorithm)
				}
				if err == nil {
					accepted++
				}
				if i == len(inputs)/2 {
					if _, err := rec.Snapshot(spath); err != nil {
						t.Fatal(err)
					}
					cut = len(live.Trades)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			want, _ := eng.MarshalBinary()
			if len(live.Trades) < 100 {
				t.Fatalf("only %d trades", len(live.Trades))
			}

			// straight replay
			straight := &tradeLog{}
			e2, st, err := Recover("", jpath, engine.Config{Sink: straight})
			if err != nil || st.Applied != accepted || st.Rejected != 0 || st.CorruptRecords != 0 {
				t.Fatalf("%+v %v (accepted %d)", st, err, accepted)
			}
			got, _ := e2.MarshalBinary()
			if !bytes.Equal(got, want) {
				t.Fatal("straight replay: engine state differs")
			}
			if fmt.Sprint(straight.Trades) != fmt.Sprint(live.Trades) || fmt.Sprint(straight.Cancels) != fmt.Sprint(live.Cancels) {
				t.Fatal("straight replay: events differ")
			}

			// snapshot + replay of the tail
			fromSnap := &tradeLog{}
			e3, st3, err := Recover(spath, jpath, engine.Config{Sink: fromSnap})
			if err != nil || st3.Rejected != 0 || st3.Applied >= accepted {
				t.Fatalf("%+v %v", st3, err)
			}
			got3, _ := e3.MarshalBinary()
			if !bytes.Equal(got3, want) {
				t.Fatal("snapshot+replay: engine state differs from straight replay")
			}
			if fmt.Sprint(fromSnap.Trades) != fmt.Sprint(live.Trades[cut:]) {
				t.Fatal("snapshot+replay: trades differ")
			}
			t.Logf("accepted %d inputs, %d trades, snapshot at trade %d, tail %d records",
				accepted, len(live.Trades), cut, st3.Applied)
		})
	}
}

func TestLoadSnapshotCorrupt(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s")
	eng, _ := engine.New(engine.Config{})
	eng.Submit("A", engine.Order{ID: 1, Side: engine.Buy, Type: engine.Limit, Price: 5, Qty: 5})
	data, _ := eng.MarshalBinary()
	if err := WriteSnapshot(p, data, 0); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(p)
	for i := range raw {
		c := append([]byte(nil), raw...)
		c[i] ^= 0x10
		os.WriteFile(p, c, 0o644)
		if _, _, err := LoadSnapshot(p, engine.Config{}); err == nil {
			t.Fatalf("corruption at %d not detected", i)
		}
	}
}

// Records journaled before the acceptance time existed (no trailing time)
// still decode, with time 0; records without a time keep that layout.
func TestRecordWithoutTimeKeepsOldLayout(t *testing.T) {
	sub := Record{Op: OpSubmit, Symbol: "A", Order: engine.Order{ID: 1, Side: engine.Sell, Type: engine.Limit, Price: 5, Qty: 1}}
	if n := len(AppendRecord(nil, &sub)); n != 2+1+34 {
		t.Fatalf("submit without time: %d bytes", n)
	}
	rep := Record{Op: OpReplace, Symbol: "A", ID: 1, Price: 5, Qty: 2}
	if n := len(AppendRecord(nil, &rep)); n != 2+1+24 {
		t.Fatalf("replace without time: %d bytes", n)
	}
	timed := sub
	timed.Time = 99
	p := AppendRecord(nil, &timed)
	if len(p) != 2+1+42 {
		t.Fatalf("submit with time: %d bytes", len(p))
	}
	if _, err := DecodeRecord(p[:len(p)-1]); err == nil {
		t.Fatal("decoded a torn time")
	}
}
