package feeds

import (
	"context"
	"reflect"
	"testing"
	"time"
)

func simCfg(seed uint64) SimulatorConfig {
	return SimulatorConfig{
		Seed:      seed,
		Symbols:   []SimSymbol{{Symbol: "btcusdt", StartPrice: MustDecimal("86780.01"), TickSize: MustDecimal("0.01")}, {Symbol: "ETHUSDT"}},
		MaxEvents: 500,
		StartTime: time.Date(2025, 11, 24, 0, 0, 0, 0, time.UTC),
		Rate:      0,
	}
}

func runSim(t *testing.T, cfg SimulatorConfig) map[string][]Event {
	t.Helper()
	sim, err := NewSimulator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := newCollector()
	if err := sim.Start(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sim.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("simulator did not finish")
	}
	if err := sim.Err(); err != nil {
		t.Fatal(err)
	}
	by := map[string][]Event{}
	for _, e := range c.snapshot() {
		by[e.EventSymbol()] = append(by[e.EventSymbol()], e)
	}
	if st := sim.Stats(); st.Events != uint64(len(cfg.Symbols)*cfg.MaxEvents) || st.Running {
		t.Fatalf("stats %+v", st)
	}
	return by
}

func TestSimulatorDeterministic(t *testing.T) {
	a := runSim(t, simCfg(42))
	b := runSim(t, simCfg(42))
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed produced different event sequences")
	}
	c := runSim(t, simCfg(43))
	if reflect.DeepEqual(a["BTCUSDT"], c["BTCUSDT"]) {
		t.Fatal("different seeds produced the same sequence")
	}
	// a symbol's sequence does not depend on the other symbols
	one := simCfg(42)
	one.Symbols = one.Symbols[:1]
	if d := runSim(t, one); !reflect.DeepEqual(a["BTCUSDT"], d["BTCUSDT"]) {
		t.Fatal("BTCUSDT sequence depends on the other symbols")
	}
	ref, err := SimulateEvents(simCfg(42), "BTCUSDT", 500)
	if err != nil || !reflect.DeepEqual(ref, a["BTCUSDT"]) {
		t.Fatalf("SimulateEvents differs from the running simulator: %v", err)
	}

	evs := a["BTCUSDT"]
	if bu, ok := evs[0].(BookUpdate); !ok || !bu.Snapshot || len(bu.Bids) != 10 || bu.Bids[0].Price >= bu.Asks[0].Price {
		t.Fatalf("first event is not a sane snapshot: %+v", evs[0])
	}
	var trades, books int
	var lastID int64
	for i, e := range evs {
		if !e.EventTime().Equal(simCfg(0).StartTime.Add(time.Duration(i) * time.Millisecond)) {
			t.Fatalf("event %d time %v", i, e.EventTime())
		}
		switch v := e.(type) {
		case Trade:
			trades++
			if v.TradeID != lastID+1 || v.Price <= 0 || v.Qty <= 0 || v.Price%MustDecimal("0.01") != 0 || v.TakerSide == SideUnknown {
				t.Fatalf("bad trade %+v", v)
			}
			lastID = v.TradeID
		case BookUpdate:
			books++
		}
	}
	if trades < 150 || books < 150 {
		t.Fatalf("trade/book mix %d/%d", trades, books)
	}
}

func TestSimulatorRateAndStop(t *testing.T) {
	sim, err := NewSimulator(SimulatorConfig{Symbols: []SimSymbol{{Symbol: "X"}}, Rate: 200, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	c := newCollector()
	if err := sim.Start(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(context.Background(), c); err != ErrAlreadyRunning {
		t.Fatalf("second Start: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	sim.Stop()
	n := len(c.snapshot())
	// 200/s for 0.5s is ~100 events; allow scheduling slack on a busy machine
	if n < 40 || n > 130 {
		t.Fatalf("rate 200/s for 500ms gave %d events", n)
	}
	time.Sleep(50 * time.Millisecond)
	if len(c.snapshot()) != n {
		t.Fatal("events after Stop")
	}
	// restart works
	if err := sim.Start(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	sim.Stop()
}
