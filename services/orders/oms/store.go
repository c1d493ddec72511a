package oms

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tradsys/mesh/pkg/fixed"
	bolt "go.etcd.io/bbolt"
)

// Buckets of the store.
var (
	bInstruments = []byte("instruments") // symbol -> Instrument
	bOrders      = []byte("orders")      // id (8 bytes BE) -> Order
	bClientIDs   = []byte("client_ids")  // unused (older stores wrote it); the index is rebuilt from bOrders at load
	bPositions   = []byte("positions")   // account \x00 symbol -> Position
	bAccounts    = []byte("accounts")    // account -> matching account number (8 bytes BE)
	bTrades      = []byte("trades")      // symbol -> tradeMark (applied trade sequences)
	bUpdates     = []byte("updates")     // seq (8 bytes BE) -> Update
	bMeta        = []byte("meta")        // next_order_id, next_seq, next_account
)

type clientKey struct{ account, clientOrderID string }
type posKey struct{ account, symbol string }
type openKey struct {
	account, symbol string
	side            Side
}

// tradeMark is which of a symbol's trade sequences are applied: all up to
// Through, and those in Above (applied out of order, from submit answers,
// before the trade stream got there). A trade is applied at most once.
type tradeMark struct {
	Through uint64          `json:"through"`
	Above   map[uint64]bool `json:"above,omitempty"`
}

func (m *tradeMark) seen(seq uint64) bool { return seq <= m.Through || m.Above[seq] }

func (m *tradeMark) add(seq uint64) {
	if m.Above == nil {
		m.Above = map[uint64]bool{}
	}
	m.Above[seq] = true
	for m.Above[m.Through+1] {
		delete(m.Above, m.Through+1)
		m.Through++
	}
}

// state is the whole domain state, in memory; the store holds the durable
// copy. Guarded by Store.mu; mutated only by the committer.
type state struct {
	instruments map[string]*Instrument
	orders      map[uint64]*Order
	byClient    map[clientKey]uint64
	positions   map[posKey]*Position
	accounts    map[string]uint64
	trades      map[string]*tradeMark
	open        map[openKey]fixed.Decimal // open quantity per account, symbol, side
	nextOrderID uint64
	nextSeq     uint64
	nextAccount uint64
	// seqReserved bounds the update sequences handed out: a sequence is
	// answered before its record is durable only if it is below a
	// reservation that is (Store.durableReserved), and a restart goes on
	// from the last reservation. So a crash can leave a gap in the
	// sequences, never reuse one a client has seen.
	seqReserved uint64
}

// seqReserveAhead is how far ahead of the next sequence reservations go
// (renewed when half is used): the largest gap a crash leaves.
const seqReserveAhead = 4096

// txn is one operation's view while the committer runs it: it reads and
// mutates the state and records what to write.
type txn struct {
	st          *state
	now         time.Time
	orders      map[uint64]bool
	instruments map[string]bool
	positions   map[posKey]bool
	accounts    map[string]bool
	trades      map[string]bool
	updates     []Update
	fills       int
}

type op struct {
	fn   func(*txn) error
	done chan error
	// early: answer once fn has run in memory, before its record is
	// durable (commitApplied). answered: it was.
	early, answered bool
}

// Store is the durable state: bbolt behind a write-ahead log (wal.go),
// with a group-committing writer so concurrent operations share one log
// record and its fsync. An operation's changes are durable when commit
// returns nil.
//
// Committing is a two-stage pipeline, as in etcd's raft loop (append, then
// fsync while the next entries are prepared) or PostgreSQL's WAL writer:
// the committer applies a batch in memory and writes its record; the
// syncer fsyncs everything written so far and answers those batches. So
// the next batch is applied, encoded and written while the previous one's
// fsync is in flight, instead of waiting for it: the fsync is no longer in
// the committer's cycle. An answer still waits for an fsync that began
// after its record was written.
type Store struct {
	db   *bolt.DB
	dir  string
	keep int // updates kept for resumption

	// Owned by the committer: the log file, the buffer a commit's values
	// are encoded in, and the checkpoint in flight (its result).
	wal          *wal
	walLimit     int64
	encBuf       []byte
	checkpointed chan error // nil: no checkpoint in flight

	// Batches written to the log and waiting for the syncer (closed by
	// the committer when it returns), and the syncer's end.
	toSync     chan written
	syncerDone chan struct{}
	// durableReserved is the newest synced state.seqReserved.
	durableReserved atomic.Uint64

	mu     sync.RWMutex
	st     state
	failed error // set once a write or sync failed: everything is refused after

	ops    chan op
	closed chan struct{}
	exited chan struct{} // the committer has returned
	wg     sync.WaitGroup

	// The update log: the newest `keep` updates, and a channel closed (and
	// replaced) on every append to wake streams.
	logMu sync.Mutex
	log   updateRing
	wake  chan struct{}

	metrics *Metrics
}

// OpenStore opens (creating) the store in dir. noSync is for benchmarks
// only: acknowledged orders may then be lost.
func OpenStore(dir string, noSync bool, keepUpdates int) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	db, err := bolt.Open(filepath.Join(dir, "orders.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second, NoSync: noSync,
		NoFreelistSync: true, FreelistType: bolt.FreelistMapType, // the freelist is rebuilt at open: less to write per checkpoint
		InitialMmapSize: 1 << 30}) // address space only: no remapping (which copies every value out of the map) as the file grows
	if err != nil {
		return nil, fmt.Errorf("open order store: %w", err)
	}
	if keepUpdates <= 0 {
		keepUpdates = 100_000
	}
	s := &Store{db: db, dir: dir, keep: keepUpdates, ops: make(chan op, 1024), closed: make(chan struct{}),
		exited: make(chan struct{}), wake: make(chan struct{}), walLimit: defaultWALLimit,
		toSync: make(chan written, syncDepth), syncerDone: make(chan struct{})}
	if err := s.createBuckets(); err != nil {
		db.Close()
		return nil, err
	}
	next, err := replayWAL(db, dir, keepUpdates)
	if err == nil {
		err = s.load()
	}
	if err == nil {
		s.wal, err = openWAL(dir, next, noSync)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	s.wg.Add(1)
	go s.committer()
	go s.syncer()
	return s, nil
}

// syncDepth is how many written batches may wait for the syncer before
// the committer waits: it bounds how far memory runs ahead of the disk.
const syncDepth = 8

// defaultWALLimit is the log's size that starts a checkpoint.
const defaultWALLimit = 16 << 20

func be(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func (s *Store) createBuckets() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range walBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) load() error {
	st := state{instruments: map[string]*Instrument{}, orders: map[uint64]*Order{}, byClient: map[clientKey]uint64{},
		positions: map[posKey]*Position{}, accounts: map[string]uint64{}, trades: map[string]*tradeMark{},
		open: map[openKey]fixed.Decimal{}, nextOrderID: 1, nextSeq: 1, nextAccount: 1}
	err := s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		for k, p := range map[string]*uint64{"next_order_id": &st.nextOrderID, "next_seq": &st.nextSeq, "next_account": &st.nextAccount,
			"seq_reserved": &st.seqReserved} {
			if v := meta.Get([]byte(k)); len(v) == 8 {
				*p = binary.BigEndian.Uint64(v)
			}
		}
		if err := tx.Bucket(bInstruments).ForEach(func(k, v []byte) error {
			in := new(Instrument)
			st.instruments[string(k)] = in
			return json.Unmarshal(v, in)
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bOrders).ForEach(func(k, v []byte) error {
			o := new(Order)
			if err := json.Unmarshal(v, o); err != nil {
				return err
			}
			st.orders[o.ID] = o
			st.byClient[clientKey{o.Account, o.ClientOrderID}] = o.ID
			st.open[openKey{o.Account, o.Symbol, o.Side}] += o.Open()
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bPositions).ForEach(func(k, v []byte) error {
			p := new(Position)
			if err := json.Unmarshal(v, p); err != nil {
				return err
			}
			st.positions[posKey{p.Account, p.Symbol}] = p
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bAccounts).ForEach(func(k, v []byte) error {
			st.accounts[string(k)] = binary.BigEndian.Uint64(v)
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bTrades).ForEach(func(k, v []byte) error {
			m := new(tradeMark)
			st.trades[string(k)] = m
			return json.Unmarshal(v, m)
		}); err != nil {
			return err
		}
		var newest []Update
		c := tx.Bucket(bUpdates).Cursor()
		for k, v := c.Last(); k != nil && len(newest) < s.keep; k, v = c.Prev() {
			var u Update
			if err := json.Unmarshal(v, &u); err != nil {
				return err
			}
			newest = append(newest, u)
		}
		for i := len(newest) - 1; i >= 0; i-- {
			s.log.push(newest[i], s.keep)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load order store: %w", err)
	}
	// Sequences below the reservation may have been answered by a process
	// that died before writing them: go on after them.
	st.nextSeq = max(st.nextSeq, st.seqReserved)
	st.seqReserved = st.nextSeq
	s.durableReserved.Store(st.nextSeq)
	s.st = st
	return nil
}

// Close stops the committer (after the queued operations and the
// checkpoint in flight) and closes the log and the database. The log's
// puts that bbolt does not have are written into it at the next open.
func (s *Store) Close() error {
	close(s.closed)
	s.wg.Wait()
	// Everything answered is synced: no sequence at or past nextSeq was
	// shown, so a clean stop leaves no gap in the sequences.
	var werr error
	if s.failed == nil {
		werr = s.wal.write([]put{{walBucket(bMeta), []byte("seq_reserved"), be(s.st.nextSeq)}})
		if werr == nil {
			werr = s.wal.sync()
		}
	}
	werr = errors.Join(werr, s.wal.close())
	return errors.Join(werr, s.db.Close())
}

// commit runs fn in the committer and returns once its changes are durable
// (or fn's error: then fn must have changed nothing).
func (s *Store) commit(fn func(*txn) error) error { return s.commitAsync(fn)() }

// commitAsync queues fn and returns the wait for its answer (commit's):
// the caller does other work meanwhile (a submit asks risk) without a
// goroutine of its own.
func (s *Store) commitAsync(fn func(*txn) error) (wait func() error) {
	return s.enqueue(op{fn: fn, done: make(chan error, 1)})
}

// commitApplied is commit that returns as soon as fn's changes are applied
// in memory (readers see them), while the record is written and synced
// as usual. For changes that a crash may take back because they can be
// rebuilt from elsewhere: a submit's outcome, which the reconciler reads
// back from matching (OMS.Submit). The update sequences fn assigns are
// safe to show: a restart never hands them out again (seqReserved).
func (s *Store) commitApplied(fn func(*txn) error) error {
	return s.enqueue(op{fn: fn, done: make(chan error, 1), early: true})()
}

// enqueue hands o to the committer and returns the wait for its answer.
func (s *Store) enqueue(o op) (wait func() error) {
	select {
	case s.ops <- o:
	case <-s.closed:
		return func() error { return ErrClosed }
	}
	return func() error { return s.wait(o) }
}

func (s *Store) wait(o op) error {
	select {
	case err := <-o.done:
		return err
	case <-s.exited:
		// The committer answered everything it took before returning; an
		// operation queued after that was never run.
		select {
		case err := <-o.done:
			return err
		default:
			return ErrClosed
		}
	}
}

func (s *Store) committer() {
	defer s.wg.Done()
	defer close(s.exited)
	defer func() {
		close(s.toSync)
		<-s.syncerDone // every written batch answered
		if s.checkpointed != nil {
			<-s.checkpointed // a failed one leaves its log files: the next open replays them
		}
	}()
	for {
		// A new slice per batch: the syncer answers it while the next one
		// fills.
		batch := make([]op, 0, 16)
		select {
		case o := <-s.ops:
			batch = append(batch, o)
		case <-s.closed:
			for {
				select {
				case o := <-s.ops:
					o.done <- ErrClosed
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case o := <-s.ops:
				batch = append(batch, o)
			default:
				break fill
			}
		}
		s.run(batch)
	}
}

// maxBatch bounds the operations of one log record.
const maxBatch = 256

// written is a batch whose record is in the log file, waiting for an
// fsync; or, with barrier set, a request to say when every batch before
// it is answered.
type written struct {
	batch    []op
	errs     []error
	updates  []Update
	fills    int
	start    time.Time
	reserved uint64 // state.seqReserved as written
	barrier  chan struct{}
	answered bool // every operation was answered when applied
}

// run applies a batch in memory, writes its puts to the log as one record
// and hands it to the syncer, which answers each operation once the
// record is durable.
func (s *Store) run(batch []op) {
	t := &txn{st: &s.st, now: time.Now().UTC(), orders: map[uint64]bool{}, instruments: map[string]bool{},
		positions: map[posKey]bool{}, accounts: map[string]bool{}, trades: map[string]bool{}}
	errs := make([]error, len(batch))
	s.mu.Lock()
	if s.failed != nil {
		s.mu.Unlock()
		for _, o := range batch {
			o.done <- s.failed
		}
		return
	}
	for i := range batch {
		o := &batch[i]
		errs[i] = o.fn(t)
		if o.early && (errs[i] != nil || t.st.nextSeq <= s.durableReserved.Load()) {
			o.done <- errs[i]
			o.answered = true
		}
	}
	if t.st.nextSeq+seqReserveAhead/2 > t.st.seqReserved {
		t.st.seqReserved = t.st.nextSeq + seqReserveAhead
	}
	s.mu.Unlock()
	// Encode outside the lock: only this goroutine mutates the state, so
	// it reads it safely while readers (RLock) go on; holding the write
	// lock across the encoding kept every submit's reads waiting.
	var puts []put
	enc := func(b, k []byte, v any) {
		data, err := json.Marshal(v)
		if err != nil {
			panic(fmt.Sprintf("orders: encode %T: %v", v, err)) // plain structs: cannot fail
		}
		puts = append(puts, put{walBucket(b), k, data})
	}
	// Orders and updates are encoded by hand (encode.go) into one buffer
	// that the puts share, reused from commit to commit (the log record
	// is a copy).
	buf := s.encBuf[:0]
	var spans [][2]int
	appendPut := func(b, k []byte, add func([]byte) []byte) {
		start := len(buf)
		buf = add(buf)
		puts = append(puts, put{b: walBucket(b), k: k})
		spans = append(spans, [2]int{len(puts) - 1, start})
	}
	for id := range t.orders {
		o := t.st.orders[id]
		appendPut(bOrders, be(id), func(b []byte) []byte { return appendOrder(b, o) }) // the client-id index is rebuilt from the orders at load
	}
	for sym := range t.instruments {
		enc(bInstruments, []byte(sym), t.st.instruments[sym])
	}
	for k := range t.positions {
		enc(bPositions, []byte(k.account+"\x00"+k.symbol), t.st.positions[k])
	}
	for a := range t.accounts {
		puts = append(puts, put{walBucket(bAccounts), []byte(a), be(t.st.accounts[a])})
	}
	for sym := range t.trades {
		enc(bTrades, []byte(sym), t.st.trades[sym])
	}
	for i := range t.updates {
		u := &t.updates[i]
		appendPut(bUpdates, be(u.Seq), func(b []byte) []byte { return appendUpdate(b, u) })
	}
	// The buffer may have moved as it grew: slice the values at the end.
	for i, sp := range spans {
		end := len(buf)
		if i+1 < len(spans) {
			end = spans[i+1][1]
		}
		puts[sp[0]].v = buf[sp[1]:end]
	}
	s.encBuf = buf
	meta := walBucket(bMeta)
	puts = append(puts, put{meta, []byte("seq_reserved"), be(t.st.seqReserved)},
		put{meta, []byte("next_order_id"), be(t.st.nextOrderID)}, put{meta, []byte("next_seq"), be(t.st.nextSeq)},
		put{meta, []byte("next_account"), be(t.st.nextAccount)})

	start := time.Now()
	if err := s.wal.write(puts); err != nil {
		failed := s.fail(err)
		for _, o := range batch {
			o.done <- failed
		}
		return
	}
	answered := true
	for _, o := range batch {
		answered = answered && o.answered
	}
	s.toSync <- written{batch: batch, errs: errs, updates: t.updates, fills: t.fills, start: start, reserved: t.st.seqReserved,
		answered: answered}
	if err := s.maybeCheckpoint(); err != nil {
		s.fail(err) // the batches written before are answered by their own sync
	}
}

// fail records the store's first write or sync failure and returns the
// error every operation gets from then on. Memory may be ahead of the disk
// now: everything is refused until a restart reloads the durable state.
// (A later fsync that succeeds would not prove the earlier writes durable:
// the kernel may have dropped the pages whose writeback failed.)
func (s *Store) fail(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed == nil {
		s.failed = fmt.Errorf("order store write failed (restart the service): %w", err)
	}
	return s.failed
}

// syncer fsyncs the log for the batches the committer has written (all
// that are waiting share one fsync) and answers them in order, publishing
// their updates to streams only then: a stream never shows an update that
// a crash could take back. A batch whose operations were all answered
// when applied (commitApplied: nobody waits for its fsync) is held for
// the next batch that has a waiter, or for lazySyncDelay, and synced with
// it: under load a submit's outcome then costs no fsync of its own.
func (s *Store) syncer() {
	defer close(s.syncerDone)
	var group []written
	var timer *time.Timer
	var expired <-chan time.Time
	for {
		select {
		case w, ok := <-s.toSync:
			if !ok {
				s.syncAndAnswer(group)
				return
			}
			group = append(group, w)
		case <-expired:
			expired = nil
		}
	more:
		for range syncDepth {
			select {
			case w, ok := <-s.toSync:
				if !ok {
					break more
				}
				group = append(group, w)
			default:
				break more
			}
		}
		// Held while nobody waits and the timer has not fired (expired is
		// nil once it has): the next batch with a waiter, or the timer,
		// syncs the group.
		if allAnswered(group) && (timer == nil || expired != nil) {
			if timer == nil {
				timer = time.NewTimer(lazySyncDelay)
				expired = timer.C
			}
			continue
		}
		if timer != nil {
			timer.Stop()
			timer, expired = nil, nil
		}
		s.syncAndAnswer(group)
		group = group[:0]
	}
}

// lazySyncDelay bounds how long a batch nobody waits for stays unsynced
// (its updates unpublished) when no other batch comes.
const lazySyncDelay = 2 * time.Millisecond

// allAnswered says whether every batch of group was answered when applied.
func allAnswered(group []written) bool {
	for _, w := range group {
		if !w.answered {
			return false
		}
	}
	return len(group) > 0
}

// syncAndAnswer fsyncs the log and answers group's batches in order.
func (s *Store) syncAndAnswer(group []written) {
	if len(group) == 0 {
		return
	}
	s.mu.RLock()
	err := s.failed
	s.mu.RUnlock()
	if err == nil {
		// Every batch in the group went to the current file: the
		// committer drains the syncer before it rotates the log.
		if serr := s.wal.sync(); serr != nil {
			err = s.fail(serr)
		}
		if m := s.metrics; m != nil {
			m.syncs.Inc()
		}
	}
	s.answer(group, err)
}

// answer answers the operations of synced batches (err: the sync failed).
func (s *Store) answer(group []written, err error) {
	for _, w := range group {
		if w.barrier != nil {
			close(w.barrier)
			continue
		}
		if err == nil {
			s.durableReserved.Store(w.reserved)
			if m := s.metrics; m != nil {
				m.commits.Observe(time.Since(w.start).Seconds())
				m.batchOps.Observe(float64(len(w.batch)))
				m.fills.Add(float64(w.fills))
			}
			if len(w.updates) > 0 {
				s.logMu.Lock()
				for i := range w.updates {
					s.log.push(w.updates[i], s.keep)
				}
				close(s.wake)
				s.wake = make(chan struct{})
				s.logMu.Unlock()
			}
		}
		for i, o := range w.batch {
			if o.answered {
				continue
			}
			if err != nil {
				o.done <- err
			} else {
				o.done <- w.errs[i]
			}
		}
	}
}

// drainSyncer waits until every batch written so far is answered.
func (s *Store) drainSyncer() {
	b := make(chan struct{})
	s.toSync <- written{barrier: b}
	<-b
}

// maybeCheckpoint collects a finished checkpoint and, once the log has
// grown past its limit, starts the next: a new log file takes the
// appends, and the puts of the ones before go into bbolt in the
// background; those files are deleted once bbolt has them (synced).
func (s *Store) maybeCheckpoint() error {
	if s.checkpointed != nil {
		select {
		case err := <-s.checkpointed:
			s.checkpointed = nil
			if err != nil {
				return err
			}
		default:
			return nil // one at a time; the log grows meanwhile
		}
	}
	if s.wal.size < s.walLimit {
		return nil
	}
	// The file is closed below: every batch written to it must be synced
	// first (and the syncer must not touch s.wal while it changes).
	s.drainSyncer()
	next, err := openWAL(s.dir, s.wal.n+1, s.wal.noSync)
	if err != nil {
		return err
	}
	old := s.wal
	s.wal = next
	if err := old.close(); err != nil {
		return err
	}
	done := make(chan error, 1)
	s.checkpointed = done
	go func() {
		start := time.Now()
		err := checkpointWAL(s.db, s.dir, old.n, s.keep)
		if m := s.metrics; m != nil && err == nil {
			m.checkpoints.Observe(time.Since(start).Seconds())
		}
		done <- err
	}()
	return nil
}

// event appends an event to an order: the update sequence, the new status,
// the history entry and the update log entry. The transition must be legal
// (checked by the caller with CanMove, or a fill on an open order).
func (t *txn) event(o *Order, ev Event) {
	prevOpen := o.Open()
	ev.Seq = t.st.nextSeq
	t.st.nextSeq++
	if ev.Time.IsZero() {
		ev.Time = t.now
	}
	o.Status = ev.Status
	o.Seq = ev.Seq
	o.UpdatedAt = ev.Time
	o.History = append(o.History, ev)
	t.st.open[openKey{o.Account, o.Symbol, o.Side}] += o.Open() - prevOpen
	t.orders[o.ID] = true
	snap := *o
	snap.History = nil
	t.updates = append(t.updates, Update{Seq: ev.Seq, OrderID: o.ID, Event: ev, Order: snap})
}

// move is a checked transition.
func (t *txn) move(o *Order, to Status, reason string) error {
	if !CanMove(o.Status, to) {
		return fmt.Errorf("%w: order %d %s -> %s", ErrBadTransition, o.ID, o.Status, to)
	}
	t.event(o, Event{Status: to, Reason: reason})
	return nil
}

// updatesFrom returns up to max updates with Seq >= from, and a channel
// closed when more arrive.
func (s *Store) updatesFrom(from uint64, max int, buf []Update) ([]Update, <-chan struct{}, error) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if s.log.n == 0 || from > s.log.at(s.log.n-1).Seq {
		return buf, s.wake, nil
	}
	oldest := s.log.at(0).Seq
	if from < oldest {
		return buf, nil, &TrimmedError{Requested: from, Oldest: oldest}
	}
	// Sequences ascend but may skip (after a crash: seqReserved).
	i := sort.Search(s.log.n, func(i int) bool { return s.log.at(i).Seq >= from })
	for ; i < s.log.n && len(buf) < max; i++ {
		buf = append(buf, *s.log.at(i))
	}
	return buf, s.wake, nil
}

// lastSeq is the newest durable update sequence (0: none).
func (s *Store) lastSeq() uint64 {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if s.log.n == 0 {
		return 0
	}
	return s.log.at(s.log.n - 1).Seq
}

// updateRing is the newest updates, oldest first: it grows to keep
// entries, then each new one takes the oldest's place (no copying, no
// allocation per update once full).
type updateRing struct {
	buf   []Update
	start int // index of the oldest
	n     int
}

func (r *updateRing) push(u Update, keep int) {
	if len(r.buf) < keep {
		r.buf = append(r.buf, u)
		r.n++
		return
	}
	r.buf[r.start] = u
	r.start = (r.start + 1) % len(r.buf)
}

// at is the i-th oldest (0 <= i < n).
func (r *updateRing) at(i int) *Update { return &r.buf[(r.start+i)%len(r.buf)] }
