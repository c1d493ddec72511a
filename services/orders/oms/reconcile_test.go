package oms

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/fixed"
)

// matchingState answers State from a table, as the matching service's
// GetOrder would, Submit with a given execution, and records cancels. The reconciler's decisions are
// what this test is about; the real services' side of it (GetOrder, the
// trade stream, kill -9) is in crash_test.go.
type matchingState struct {
	mu      sync.Mutex
	states  map[uint64]MatchState // absent: ErrNotFound
	cancels []uint64
	// exec answers Submit (nil: not sent).
	exec func(MatchOrder) Execution
}

func (m *matchingState) Submit(_ context.Context, o MatchOrder) (Execution, error) {
	if m.exec == nil {
		return Execution{}, ErrNotSent
	}
	return m.exec(o), nil
}
func (m *matchingState) Cancel(_ context.Context, _ string, id uint64) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cancels = append(m.cancels, id)
	return 0, ErrNotFound
}
func (m *matchingState) Replace(context.Context, string, uint64, int64, int64) (Execution, error) {
	return Execution{}, ErrNotSent
}
func (m *matchingState) State(_ context.Context, _ string, id uint64) (MatchState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.states[id]
	if !ok {
		return MatchState{}, ErrNotFound
	}
	return st, nil
}
func (m *matchingState) LastTradeSeq(context.Context, string) (uint64, error) { return 0, nil }
func (m *matchingState) Trades(ctx context.Context, _ string, _ uint64, _ func(Trade) error) error {
	<-ctx.Done()
	return ctx.Err()
}

// Orders whose submit outcome a restart took back (recorded NEW, then the
// process died before the outcome was durable) are settled from what
// matching knows: a resting order is ACCEPTED and left in the book (it may
// have been acknowledged so), one matching cancelled is CANCELED with
// matching's cause, and only one matching never had is cancelled there
// (so a submit still on its way cannot rest) and rejected.
func TestReconcileReadsTheOutcomeBackFromMatching(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenStore(dir, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]uint64{}
	for _, coid := range []string{"resting", "ioc", "never"} {
		if err := st.commit(func(tx *txn) error {
			o := tx.create(&Order{Account: "a", ClientOrderID: coid, Symbol: "S", Side: Buy, Type: Limit,
				Price: fixed.Must("10"), Quantity: fixed.Must("1")})
			ids[coid] = o.ID
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	mt := &matchingState{states: map[uint64]MatchState{
		ids["resting"]: {Resting: true},
		ids["ioc"]:     {Cancelled: true, Cause: CancelUnfilled},
	}}
	m, err := Open(Config{Dir: dir, Matching: mt, ReconcileEvery: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	deadline := time.Now().Add(10 * time.Second)
	for m.Unresolved() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d orders still unresolved", m.Unresolved())
		}
		time.Sleep(10 * time.Millisecond)
	}
	want := map[string]struct {
		status Status
		reason string
	}{"resting": {Accepted, ""}, "ioc": {Canceled, "unfilled remainder cancelled"}, "never": {Rejected, "not in the book"}}
	for coid, w := range want {
		o := m.mustGet(ids[coid])
		last := o.History[len(o.History)-1]
		if o.Status != w.status || !strings.Contains(last.Reason, w.reason) {
			t.Errorf("%s: %v (%q), want %v (%q)", coid, o.Status, last.Reason, w.status, w.reason)
		}
	}
	mt.mu.Lock()
	defer mt.mu.Unlock()
	if len(mt.cancels) != 1 || mt.cancels[0] != ids["never"] {
		t.Errorf("cancelled in matching: %v, want only the order matching never had (%d)", mt.cancels, ids["never"])
	}
}

type approveAll struct{}

func (approveAll) Validate(context.Context, RiskCheck) ([]string, error) { return nil, nil }

// A submit's outcome is answered before it is durable only when matching's
// durable state holds it (the order rests, or it traded): an order that
// ended with neither (an IOC with nothing to match) is answered once its
// outcome is synced, because matching remembers it only in memory.
func TestSubmitAnswersBeforeDurableOnlyWhatMatchingKeeps(t *testing.T) {
	for _, tc := range []struct {
		name    string
		exec    func(MatchOrder) Execution
		durable bool
	}{
		{"ioc without a match", func(o MatchOrder) Execution {
			return Execution{Cancellations: []Cancellation{{OrderID: o.ID, Lots: o.Lots, Cause: CancelUnfilled}}}
		}, true},
		{"self-trade prevention cancelled another order", func(o MatchOrder) Execution {
			return Execution{RestingLots: o.Lots, Cancellations: []Cancellation{{OrderID: o.ID + 1000, Lots: 1, Cause: CancelSelfTrade}}}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Open(Config{Dir: t.TempDir(), Risk: approveAll{}, Matching: &matchingState{exec: tc.exec}})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if _, err := m.CreateInstrument(Instrument{Symbol: "S", TickSize: fixed.Must("0.01"), LotSize: fixed.Must("0.001")}); err != nil {
				t.Fatal(err)
			}
			o, _, err := m.Submit(context.Background(), SubmitRequest{Account: "a", ClientOrderID: "c", Symbol: "S", Side: Buy,
				Type: Limit, Price: "1", Quantity: "1"})
			if err != nil {
				t.Fatal(err)
			}
			// Updates reach the stream only once synced: the answer's last
			// one is there the moment Submit returns iff it was durable.
			last := o.History[len(o.History)-1].Seq
			if got := m.store.lastSeq(); (got >= last) != tc.durable {
				t.Fatalf("answered %v (sequence %d) with the stream at %d; durable before the answer: want %v", o.Status, last, got, tc.durable)
			}
		})
	}
}

// An order matching has under the same id but for another account (a tool
// that submits to matching directly chose the id) says nothing of ours:
// ours is not cancelled there (that would cancel theirs) and, with no
// fills, it is rejected saying why.
func TestReconcileIgnoresAnotherClientsOrderUnderTheSameID(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenStore(dir, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	var id uint64
	if err := st.commit(func(tx *txn) error {
		o := tx.create(&Order{Account: "a", ClientOrderID: "c", Symbol: "S", Side: Buy, Type: Limit,
			Price: fixed.Must("10"), Quantity: fixed.Must("1")})
		tx.account("a") // matching account 1
		id = o.ID
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	mt := &matchingState{states: map[uint64]MatchState{id: {Resting: true, Account: 999}}}
	m, err := Open(Config{Dir: dir, Matching: mt, ReconcileEvery: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	deadline := time.Now().Add(10 * time.Second)
	for m.Unresolved() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("still unresolved")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if o := m.mustGet(id); o.Status != Rejected || !strings.Contains(strings.Join(o.RejectReasons, " "), "another client's order") {
		t.Fatalf("%v %v, want REJECTED naming the other client's order", o.Status, o.RejectReasons)
	}
	mt.mu.Lock()
	defer mt.mu.Unlock()
	if len(mt.cancels) != 0 {
		t.Fatalf("cancelled %v in matching: the other client's order", mt.cancels)
	}
}
