package coord

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// writer commits the leader's decisions to etcd, batching the decisions that
// queue up into transactions (group commit) and keeping several
// transactions in flight at once (pipelining), so etcd can put many of them
// behind one fsync. Every transaction is fenced:
//
//   - by the leader's election key: it commits only while this replica still
//     leads, so a deposed leader can never write;
//   - for memory grants, by the memory epoch key: it commits only while the
//     epoch still names this leader's term. The leader claims the epoch when
//     its term starts, on condition that no grant was written since the state
//     it loaded (every grant rewrites the epoch key, so its revision moves),
//     and a later claim by another leader makes every grant of this one
//     fail. So the sum of granted bytes in etcd never exceeds the budget,
//     whatever the replicas do.
//
// The epoch fence names the term, not a revision, so grant transactions in
// flight together do not fence each other out, whatever order etcd applies
// them in. Any order is safe for the budget: a grant's bytes count as used
// from the decision on, and a release frees them only once committed. Two
// transactions in flight never write the same key (the later waits), and a
// budget change is committed alone, with nothing else in flight.
//
// Callbacks run on one goroutine, in the order the transactions were sent.
type writer struct {
	cli      *clientv3.Client
	log      *zap.Logger
	m        *Metrics
	leaderOK clientv3.Cmp // the election key still has our create revision
	epochKey string
	term     string // this term's name in the epoch key (see claimEpoch)
	epochOK  clientv3.Cmp
	maxBatch int
	maxOps   int // etcd's --max-txn-ops, for operations and for comparisons
	maxBytes int // below etcd's --max-request-bytes, with room for framing
	depth    int // transactions in flight at most
	// minPipelined is how many decisions must be waiting to send a
	// transaction while another is in flight: fewer wait for it to land
	// and go in the next one, so a light load is not cut into many small
	// transactions (each costs etcd a proposal and an apply).
	minPipelined int
	onLost       func(error) // leadership or state lost: resync

	compactRetain int64 // see Config.CompactRetain
	compactedTo   int64 // the last revision compacted to; under qmu
	compacting    bool  // a compaction is running; under qmu
	// watched is the revision up to which the leader's own watch has
	// delivered everything (its events, or a progress notification);
	// askProgress asks etcd for a progress notification on that watch, at
	// most once a second (askedAt, unix nanoseconds).
	watched     atomic.Int64
	askProgress func()
	askedAt     atomic.Int64

	qmu     sync.Mutex
	q       []*wop
	stopped bool
	notify  chan struct{}

	// The transactions in flight, oldest first, and the keys they write.
	fmu      sync.Mutex
	fcond    *sync.Cond // signalled when a flight has finished
	flights  []*flight
	inflight map[string]int
}

// flight is one transaction on its way to etcd.
type flight struct {
	batch []*wop
	res   []opResult
	done  chan struct{} // closed when res is set
}

type opResult struct {
	rev int64
	idx int
	err error
}

// wop is one decision's writes.
type wop struct {
	cmps []clientv3.Cmp
	// build returns the writes, given the op's index in its transaction
	// (stored in records, so a fencing token can be recomputed on load).
	build func(idx int) []clientv3.Op
	keys  []string // keys written, to keep one key per transaction
	grant bool     // a memory grant: fence with the epoch
	// alone commits the op in a transaction of its own, with nothing else
	// in flight, so no decision shares its revision or commits around it
	// (a budget change: every grant in etcd's history is then judged
	// against one budget).
	alone bool
	// done gets the revision of the commit and the op's index in its batch
	// (together they make the fencing token), or an error.
	done func(rev int64, idx int, err error)

	nops, ncmps, size int           // measured once by measure
	built             []clientv3.Op // what measure built (for index 0), reused at index 0
}

// measure sizes the op's writes (as built for index 0; the index changes a
// record by a few digits at most).
func (op *wop) measure() {
	if op.nops > 0 || op.ncmps > 0 {
		return
	}
	ops := op.build(0)
	op.built = ops
	op.nops, op.ncmps = len(ops), len(op.cmps)
	for _, o := range ops {
		op.size += len(o.KeyBytes()) + len(o.ValueBytes()) + opOverhead
	}
	op.size += len(op.cmps) * opOverhead
}

// opOverhead is a generous bound on the framing etcd adds around one
// operation or comparison in a raft proposal (lease, revisions, tags).
const opOverhead = 64

// txnReserve is what every transaction adds besides its ops: the leader
// comparison, the epoch comparison and the epoch put.
const txnReserve = 1

var errLeaseGone = errors.New("session's etcd lease not found")

// newWriter returns a writer for one term; claimEpoch must succeed before
// it runs.
func newWriter(cli *clientv3.Client, log *zap.Logger, m *Metrics, leaderOK clientv3.Cmp, epochKey, term string) *writer {
	w := &writer{cli: cli, log: log, m: m, leaderOK: leaderOK, epochKey: epochKey, term: term,
		epochOK: clientv3.Compare(clientv3.Value(epochKey), "=", term),
		notify:  make(chan struct{}, 1), inflight: map[string]int{}}
	w.fcond = sync.NewCond(&w.fmu)
	return w
}

// claimEpoch makes the memory epoch name this term, on condition that this
// replica still leads and that the epoch key has not changed since the
// state was loaded (epochRev is its mod revision then, 0 if absent): no
// grant was written since. From then on, another leader's grants fail.
func (w *writer) claimEpoch(ctx context.Context, epochRev int64) error {
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := w.cli.Txn(tctx).If(w.leaderOK, clientv3.Compare(clientv3.ModRevision(w.epochKey), "=", epochRev)).
		Then(clientv3.OpPut(w.epochKey, w.term)).Commit()
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return errors.New("the memory epoch or the leadership changed since the state was loaded")
	}
	return nil
}

// submit queues a decision without blocking: callers hold the
// coordinator's mutex, which the writer's callbacks take too.
func (w *writer) submit(op *wop) {
	w.qmu.Lock()
	if w.stopped {
		w.qmu.Unlock()
		go op.done(0, 0, ErrNotLeader)
		return
	}
	w.q = append(w.q, op)
	w.qmu.Unlock()
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

func (w *writer) run(ctx context.Context) {
	if w.depth <= 0 {
		w.depth = 1
	}
	w.minPipelined = max(w.minPipelined, 1)
	finished := make(chan struct{})
	go w.complete(ctx, finished)
	defer func() {
		w.qmu.Lock()
		w.stopped = true
		rest := w.q
		w.q = nil
		w.qmu.Unlock()
		// Flights end soon: their transactions are bound to ctx.
		w.fmu.Lock()
		for len(w.flights) > 0 {
			w.fcond.Wait()
		}
		w.fcond.Broadcast() // complete sees ctx ended
		w.fmu.Unlock()
		<-finished
		for _, op := range rest {
			op.done(0, 0, ErrNotLeader)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.notify:
		}
		for ctx.Err() == nil {
			w.qmu.Lock()
			pending := w.q
			if len(pending) == 0 || len(pending) < w.minPipelined && w.flying() > 0 {
				// Too few to be worth a transaction of their own while
				// another is in flight: they ride the next one, sent when
				// that lands (complete notifies) or more queue up.
				w.qmu.Unlock()
				break
			}
			w.q = nil
			w.qmu.Unlock()
			// Cut the queue into batches within etcd's limits (operations,
			// comparisons, request bytes) and at most maxBatch decisions,
			// each writing a key at most once (etcd refuses duplicates in a
			// txn) and none a key still in flight. A batch that broke a limit
			// would fail as a whole, and the leader would have to give up its
			// term over it.
			var batch []*wop
			seen := map[string]bool{}
			nops, ncmps, size := txnReserve, 2*txnReserve, 0
			flush := func() {
				w.launch(ctx, batch)
				batch, seen = nil, map[string]bool{}
				nops, ncmps, size = txnReserve, 2*txnReserve, 0
			}
			for _, op := range pending {
				op.measure()
				if op.nops+txnReserve > w.maxOps || op.ncmps+2*txnReserve > w.maxOps || op.size > w.maxBytes {
					// Refused before submission as a rule; this is the guard.
					op.done(0, 0, &InvalidError{Field: "request", Reason: "too large for one etcd transaction"})
					continue
				}
				if op.alone {
					flush()
					w.drain()
					batch = []*wop{op}
					flush()
					w.drain()
					continue
				}
				dup := false
				for _, k := range op.keys {
					dup = dup || seen[k]
				}
				if dup || len(batch) == w.maxBatch || nops+op.nops > w.maxOps || ncmps+op.ncmps > w.maxOps || size+op.size > w.maxBytes {
					flush()
				}
				if w.busy(op.keys) {
					// An earlier decision on one of its keys is in flight:
					// send what precedes, then wait for that one to land.
					flush()
					w.waitKeys(op.keys)
				}
				batch = append(batch, op)
				nops, ncmps, size = nops+op.nops, ncmps+op.ncmps, size+op.size
				for _, k := range op.keys {
					seen[k] = true
				}
			}
			flush()
		}
	}
}

// flying is the number of transactions in flight.
func (w *writer) flying() int {
	w.fmu.Lock()
	defer w.fmu.Unlock()
	return len(w.flights)
}

// busy reports whether a transaction in flight writes one of keys.
func (w *writer) busy(keys []string) bool {
	w.fmu.Lock()
	defer w.fmu.Unlock()
	return w.busyLocked(keys)
}

func (w *writer) busyLocked(keys []string) bool {
	for _, k := range keys {
		if w.inflight[k] > 0 {
			return true
		}
	}
	return false
}

func (w *writer) waitKeys(keys []string) {
	w.fmu.Lock()
	for w.busyLocked(keys) {
		w.fcond.Wait()
	}
	w.fmu.Unlock()
}

// drain waits until nothing is in flight.
func (w *writer) drain() {
	w.fmu.Lock()
	for len(w.flights) > 0 {
		w.fcond.Wait()
	}
	w.fmu.Unlock()
}

// launch sends batch as one transaction once fewer than depth are in
// flight; its outcome is delivered by complete, in launch order.
func (w *writer) launch(ctx context.Context, batch []*wop) {
	if len(batch) == 0 {
		return
	}
	f := &flight{batch: batch, done: make(chan struct{})}
	w.fmu.Lock()
	for len(w.flights) >= w.depth {
		w.fcond.Wait()
	}
	for _, op := range batch {
		for _, k := range op.keys {
			w.inflight[k]++
		}
	}
	w.flights = append(w.flights, f)
	w.fcond.Broadcast() // complete waits for one
	w.fmu.Unlock()
	w.m.batchSize.Observe(float64(len(batch)))
	go func() {
		f.res = w.commit(ctx, batch)
		close(f.done)
	}()
}

// complete runs the callbacks of each flight in launch order, then lets
// its keys and its slot go.
func (w *writer) complete(ctx context.Context, finished chan<- struct{}) {
	defer close(finished)
	for {
		w.fmu.Lock()
		for len(w.flights) == 0 {
			if ctx.Err() != nil {
				w.fmu.Unlock()
				return
			}
			w.fcond.Wait()
		}
		f := w.flights[0]
		w.fmu.Unlock()
		<-f.done
		var top int64
		for i, op := range f.batch {
			op.done(f.res[i].rev, f.res[i].idx, f.res[i].err)
			top = max(top, f.res[i].rev)
		}
		if top > 0 {
			w.maybeCompact(ctx, top)
		}
		w.fmu.Lock()
		w.flights = w.flights[1:]
		for _, op := range f.batch {
			for _, k := range op.keys {
				if w.inflight[k]--; w.inflight[k] <= 0 {
					delete(w.inflight, k)
				}
			}
		}
		w.fcond.Broadcast()
		w.fmu.Unlock()
		select { // what waited for this one to land may go now
		case w.notify <- struct{}{}:
		default:
		}
	}
}

// commit commits batch and returns each op's outcome.
func (w *writer) commit(ctx context.Context, batch []*wop) []opResult {
	res := make([]opResult, len(batch))
	rev, err := w.txn(ctx, batch)
	if err == nil {
		for i := range batch {
			res[i] = opResult{rev: rev, idx: i}
		}
		return res
	}
	if len(batch) > 1 && (errors.Is(err, errLeaseGone) || errors.Is(err, errCompare) || errors.Is(err, errTooLarge)) {
		// One decision spoiled the batch (a session expired under it, or its
		// own comparison failed): commit each alone so only it fails.
		for i, op := range batch {
			rev, err := w.txn(ctx, []*wop{op})
			res[i] = opResult{rev: rev, err: err}
		}
		return res
	}
	for i := range batch {
		res[i] = opResult{err: err}
	}
	return res
}

var errCompare = errors.New("state changed under the decision")

var errTooLarge = &InvalidError{Field: "request", Reason: "larger than etcd accepts in one transaction (--max-txn-ops, --max-request-bytes)"}

func (w *writer) txn(ctx context.Context, batch []*wop) (int64, error) {
	n, nops := 1, 0
	for _, op := range batch {
		n += len(op.cmps)
		nops += op.nops
	}
	cmps := make([]clientv3.Cmp, 0, n+1)
	ops := make([]clientv3.Op, 0, nops+1)
	cmps = append(cmps, w.leaderOK)
	grant := false
	for i, op := range batch {
		cmps = append(cmps, op.cmps...)
		if i == 0 && op.built != nil {
			ops = append(ops, op.built...) // built by measure for this index
		} else {
			ops = append(ops, op.build(i)...)
		}
		grant = grant || op.grant
	}
	if grant {
		// The epoch names this term, and its revision moves with every
		// grant (so a leader loading meanwhile cannot claim it).
		cmps = append(cmps, w.epochOK)
		ops = append(ops, clientv3.OpPut(w.epochKey, w.term))
	}
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := w.cli.Txn(tctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return 0, errLeaseGone
		}
		if errors.Is(err, rpctypes.ErrTooManyOps) || errors.Is(err, rpctypes.ErrRequestTooLarge) {
			// etcd refused it unapplied (its limits are lower than ours):
			// nothing is unknown, the term goes on.
			return 0, errTooLarge
		}
		// The outcome is unknown (timeout, etcd unavailable): our view may be
		// wrong now, so give up the term and reload from etcd.
		w.onLost(err)
		return 0, ErrNotLeader
	}
	if !resp.Succeeded {
		lost, gerr := w.lostLeadership(ctx)
		if lost || gerr != nil {
			w.onLost(errors.New("fencing comparison failed: leadership or memory epoch changed"))
			return 0, ErrNotLeader
		}
		return 0, errCompare
	}
	return resp.Header.Revision, nil
}

// lostLeadership re-evaluates the fences alone: the leader comparison and
// the memory epoch.
func (w *writer) lostLeadership(ctx context.Context) (bool, error) {
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := w.cli.Txn(tctx).If(w.leaderOK, w.epochOK).Commit()
	if err != nil {
		return true, err
	}
	return !resp.Succeeded, nil
}

// static is a build func for writes that do not depend on the index.
func static(ops ...clientv3.Op) func(int) []clientv3.Op {
	return func(int) []clientv3.Op { return ops }
}

// maybeCompact compacts etcd's history to rev-compactRetain once that is
// compactRetain past the last compaction, in the background; never past
// what the leader's own watch has delivered (compacting history it has yet
// to read would end the watch, and the term, with ErrCompacted). When that
// holds it back, it asks etcd where the watch is: a watch of deletes only
// hears nothing while only puts happen.
func (w *writer) maybeCompact(ctx context.Context, rev int64) {
	if w.compactRetain <= 0 {
		return
	}
	to := rev - w.compactRetain
	if seen := w.watched.Load(); seen < to {
		if now, last := time.Now().UnixNano(), w.askedAt.Load(); w.askProgress != nil && now-last > int64(time.Second) && w.askedAt.CompareAndSwap(last, now) {
			w.askProgress()
		}
		to = seen
	}
	w.qmu.Lock()
	due := !w.compacting && to >= w.compactedTo+w.compactRetain
	w.compacting = w.compacting || due
	w.qmu.Unlock()
	if !due {
		return
	}
	go func() {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := w.cli.Compact(cctx, to)
		cancel()
		if err != nil && !errors.Is(err, rpctypes.ErrCompacted) {
			w.log.Warn("etcd compaction failed; retried later", zap.Int64("revision", to), zap.Error(err))
		}
		w.qmu.Lock() // hand the result back under a lock the writer takes
		if err == nil || errors.Is(err, rpctypes.ErrCompacted) {
			w.compactedTo = to
		}
		w.compacting = false
		w.qmu.Unlock()
	}()
}
