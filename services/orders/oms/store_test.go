package oms

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/fixed"
)

// createOrders records n orders concurrently (sharing group commits), the
// odd ones accepted by a second commit, as a submit does.
func createOrders(t *testing.T, s *Store, from, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := from; i < from+n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := Order{Account: fmt.Sprint("acct", i%7), ClientOrderID: fmt.Sprint("c", i), Symbol: "S", Side: Buy, Type: Limit,
				Price: fixed.Must("10"), Quantity: fixed.Must("1")}
			if err := s.commit(func(tx *txn) error { tx.create(&o); tx.account(o.Account); return nil }); err != nil {
				errs <- err
				return
			}
			if i%2 == 1 {
				errs <- s.commit(func(tx *txn) error { return tx.move(tx.st.orders[o.ID], Accepted, "") })
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// checkOrders asserts the store holds orders c0..c(n-1), each once, with
// the odd ones ACCEPTED, and the next ids and sequences after them.
func checkOrders(t *testing.T, s *Store, n int) {
	t.Helper()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.st.orders) != n || len(s.st.byClient) != n {
		t.Fatalf("%d orders (%d client ids), want %d", len(s.st.orders), len(s.st.byClient), n)
	}
	for i := range n {
		id, ok := s.st.byClient[clientKey{fmt.Sprint("acct", i%7), fmt.Sprint("c", i)}]
		if !ok {
			t.Fatalf("order c%d lost", i)
		}
		want := New
		if i%2 == 1 {
			want = Accepted
		}
		if o := s.st.orders[id]; o.Status != want || len(o.History) != int(want) {
			t.Fatalf("order c%d: %v with %d events, want %v", i, o.Status, len(o.History), want)
		}
	}
	if s.st.nextOrderID != uint64(n)+1 || len(s.st.accounts) != min(n, 7) {
		t.Fatalf("next order id %d, %d accounts", s.st.nextOrderID, len(s.st.accounts))
	}
	// Every event is in the update log once, in ascending sequence (a
	// crash may skip sequences, never reuse one), and the next sequence
	// is after them all.
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if s.log.n != n+n/2 {
		t.Fatalf("%d updates in the log, want %d", s.log.n, n+n/2)
	}
	for i := 1; i < s.log.n; i++ {
		if s.log.at(i).Seq <= s.log.at(i-1).Seq {
			t.Fatalf("update %d has sequence %d after %d", i, s.log.at(i).Seq, s.log.at(i-1).Seq)
		}
	}
	if last := s.log.at(s.log.n - 1).Seq; s.st.nextSeq <= last {
		t.Fatalf("next sequence %d, but the log reaches %d", s.st.nextSeq, last)
	}
}

func walCount(t *testing.T, dir string) int {
	t.Helper()
	ns, err := walFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(ns)
}

// Acknowledged commits survive a restart from the log alone (no
// checkpoint ran), a torn record at the log's end is ignored, and
// checkpoints move the log into bbolt and delete it, whatever they
// interleave with.
func TestStoreLogReplayAndCheckpoint(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	createOrders(t, s, 0, 40)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A torn record: the process died while writing it (never synced,
	// never acknowledged).
	ns, _ := walFiles(dir)
	f, err := os.OpenFile(walPath(dir, ns[len(ns)-1]), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{200, 0, 0, 0, 1, 2, 3, 4, 1, 3}); err != nil {
		t.Fatal(err)
	}
	f.Close()

	s, err = OpenStore(dir, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkOrders(t, s, 40)
	if s.st.nextSeq != 61 {
		t.Fatalf("next sequence %d after a clean stop, want 61 (no gap)", s.st.nextSeq)
	}
	if n := walCount(t, dir); n != 1 {
		t.Fatalf("%d log files after the replay, want the new one", n)
	}
	// A small limit: many checkpoints while commits go on.
	s.walLimit = 4 << 10
	createOrders(t, s, 40, 400)
	checkOrders(t, s, 440)
	deadline := time.Now().Add(20 * time.Second)
	for walCount(t, dir) > 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d log files left: checkpoints do not delete them", walCount(t, dir))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenStore(dir, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkOrders(t, s, 440)
	if _, err := os.Stat(filepath.Join(dir, "orders.db")); err != nil {
		t.Fatal(err)
	}
}

// A failed fsync fails the operations waiting for it and every one after
// it (a later fsync would not prove the lost writeback durable), and
// nothing of theirs reaches the update stream.
func TestStoreSyncFailureFailsEverythingAfter(t *testing.T) {
	s, err := OpenStore(t.TempDir(), false, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	createOrders(t, s, 0, 3)
	before := s.lastSeq()
	// The log's file becomes a pipe: writes succeed, fsync fails (EINVAL).
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() { _, _ = io.Copy(io.Discard, r) }()
	err = s.commit(func(tx *txn) error {
		s.wal.f = w
		o := Order{Account: "a", ClientOrderID: "lost", Symbol: "S", Side: Buy, Type: Limit, Price: fixed.Must("1"), Quantity: fixed.Must("1")}
		tx.create(&o)
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "restart the service") {
		t.Fatalf("commit over a failed fsync: %v, want the store's failure", err)
	}
	if err := s.commit(func(*txn) error { return nil }); err == nil {
		t.Fatal("a commit after a failed fsync succeeded")
	}
	if got := s.lastSeq(); got != before {
		t.Fatalf("update stream at %d after the failure, want %d (nothing unsynced published)", got, before)
	}
}

// An early answer (commitApplied) shows update sequences before its record
// is durable; when a crash takes the record back, the restarted store
// never hands those sequences out again.
func TestStoreEarlyAnswerSequencesAreNeverReused(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	createOrders(t, s, 0, 2) // durable, and a durable reservation ahead
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() { _, _ = io.Copy(io.Discard, r) }()
	var shown uint64
	err = s.commitApplied(func(tx *txn) error {
		s.wal.f = w // this record never reaches the log file: as if the process died before its fsync
		o := tx.create(&Order{Account: "a", ClientOrderID: "early", Symbol: "S", Side: Buy, Type: Limit,
			Price: fixed.Must("1"), Quantity: fixed.Must("1")})
		shown = o.History[len(o.History)-1].Seq
		return nil
	})
	if err != nil {
		t.Fatalf("early answer: %v", err)
	}
	_ = s.Close()

	s, err = OpenStore(dir, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.st.byClient[clientKey{"a", "early"}]; ok {
		t.Fatal("the order whose record never reached the log is there")
	}
	var next uint64
	if err := s.commit(func(tx *txn) error {
		o := tx.create(&Order{Account: "a", ClientOrderID: "after", Symbol: "S", Side: Buy, Type: Limit,
			Price: fixed.Must("1"), Quantity: fixed.Must("1")})
		next = o.History[0].Seq
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if next <= shown {
		t.Fatalf("after the restart an update got sequence %d; %d was shown before the crash", next, shown)
	}
}

// A batch answered when applied is synced with the next batch that has a
// waiter, or on its own shortly after when none comes: its updates reach
// the stream either way, and a commit that waits is never held up by it.
func TestStoreAnsweredBatchesAreSyncedSoon(t *testing.T) {
	s, err := OpenStore(t.TempDir(), false, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	createOrders(t, s, 0, 1) // a durable reservation, so the next answer is early
	before := s.lastSeq()
	if err := s.commitApplied(func(tx *txn) error { return tx.move(tx.st.orders[1], Accepted, "") }); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.lastSeq() == before {
		if time.Now().After(deadline) {
			t.Fatal("an answered batch was never synced: its update never reached the stream")
		}
		time.Sleep(time.Millisecond)
	}
	// And one that waits goes through at once (not after a held batch).
	if err := s.commitApplied(func(*txn) error { return nil }); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	createOrders(t, s, 1, 1)
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("a waiting commit took %v", d)
	}
}
