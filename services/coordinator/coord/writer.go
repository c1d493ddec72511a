package coord

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// writer commits the leader's decisions to etcd, batching the decisions that
// queue up while a transaction is in flight into the next transaction (group
// commit). Every transaction is fenced:
//
//   - by the leader's election key: it commits only while this replica still
//     leads, so a deposed leader can never write;
//   - for memory grants, by the memory epoch key: it commits only if no grant
//     was written since the state this leader computed from, so the sum of
//     granted bytes in etcd never exceeds the budget, whatever the replicas do.
//
// Callbacks run on the writer goroutine in commit order.
type writer struct {
	cli      *clientv3.Client
	log      *zap.Logger
	m        *Metrics
	leaderOK clientv3.Cmp // the election key still has our create revision
	epochKey string
	epochRev int64 // mod revision of the epoch key as last seen
	maxBatch int
	maxOps   int         // etcd's --max-txn-ops, for operations and for comparisons
	maxBytes int         // below etcd's --max-request-bytes, with room for framing
	onLost   func(error) // leadership or state lost: resync

	compactRetain int64 // see Config.CompactRetain
	compactedTo   int64 // the last revision compacted to; under qmu
	compacting    bool  // a compaction is running; under qmu

	qmu     sync.Mutex
	q       []*wop
	stopped bool
	notify  chan struct{}
}

// wop is one decision's writes.
type wop struct {
	cmps []clientv3.Cmp
	// build returns the writes, given the op's index in its transaction
	// (stored in records, so a fencing token can be recomputed on load).
	build func(idx int) []clientv3.Op
	keys  []string // keys written, to keep one key per transaction
	grant bool     // a memory grant: fence with the epoch
	// alone commits the op in a transaction of its own, so no decision
	// shares its revision (a budget change: every grant in etcd's history is
	// then judged against one budget).
	alone bool
	// done gets the revision of the commit and the op's index in its batch
	// (together they make the fencing token), or an error.
	done func(rev int64, idx int, err error)

	nops, ncmps, size int // measured once by measure
}

// measure sizes the op's writes (as built for index 0; the index changes a
// record by a few digits at most).
func (op *wop) measure() {
	if op.nops > 0 || op.ncmps > 0 {
		return
	}
	ops := op.build(0)
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
	for {
		select {
		case <-ctx.Done():
			w.qmu.Lock()
			w.stopped = true
			rest := w.q
			w.q = nil
			w.qmu.Unlock()
			for _, op := range rest {
				op.done(0, 0, ErrNotLeader)
			}
			return
		case <-w.notify:
		}
		for {
			w.qmu.Lock()
			pending := w.q
			w.q = nil
			w.qmu.Unlock()
			if len(pending) == 0 {
				break
			}
			// Cut the queue into batches within etcd's limits (operations,
			// comparisons, request bytes) and at most maxBatch decisions,
			// each writing a key at most once (etcd refuses duplicates in a
			// txn). A batch that broke a limit would fail as a whole, and
			// the leader would have to give up its term over it.
			var batch []*wop
			seen := map[string]bool{}
			nops, ncmps, size := txnReserve, 2*txnReserve, 0
			for _, op := range pending {
				op.measure()
				if op.nops+txnReserve > w.maxOps || op.ncmps+2*txnReserve > w.maxOps || op.size > w.maxBytes {
					// Refused before submission as a rule; this is the guard.
					op.done(0, 0, &InvalidError{Field: "request", Reason: "too large for one etcd transaction"})
					continue
				}
				if op.alone {
					w.commit(ctx, batch)
					w.commit(ctx, []*wop{op})
					batch, seen = nil, map[string]bool{}
					nops, ncmps, size = txnReserve, 2*txnReserve, 0
					continue
				}
				dup := false
				for _, k := range op.keys {
					dup = dup || seen[k]
				}
				if dup || len(batch) == w.maxBatch || nops+op.nops > w.maxOps || ncmps+op.ncmps > w.maxOps || size+op.size > w.maxBytes {
					w.commit(ctx, batch)
					batch, seen = nil, map[string]bool{}
					nops, ncmps, size = txnReserve, 2*txnReserve, 0
				}
				batch = append(batch, op)
				nops, ncmps, size = nops+op.nops, ncmps+op.ncmps, size+op.size
				for _, k := range op.keys {
					seen[k] = true
				}
			}
			w.commit(ctx, batch)
		}
	}
}

func (w *writer) commit(ctx context.Context, batch []*wop) {
	if len(batch) == 0 {
		return
	}
	w.m.batchSize.Observe(float64(len(batch)))
	rev, err := w.txn(ctx, batch)
	if err == nil {
		for i, op := range batch {
			op.done(rev, i, nil)
		}
		w.maybeCompact(ctx, rev)
		return
	}
	if len(batch) > 1 && (errors.Is(err, errLeaseGone) || errors.Is(err, errCompare) || errors.Is(err, errTooLarge)) {
		// One decision spoiled the batch (a session expired under it, or its
		// own comparison failed): commit each alone so only it fails.
		for _, op := range batch {
			rev, err := w.txn(ctx, []*wop{op})
			op.done(rev, 0, err)
		}
		return
	}
	for _, op := range batch {
		op.done(0, 0, err)
	}
}

var errCompare = errors.New("state changed under the decision")

var errTooLarge = &InvalidError{Field: "request", Reason: "larger than etcd accepts in one transaction (--max-txn-ops, --max-request-bytes)"}

func (w *writer) txn(ctx context.Context, batch []*wop) (int64, error) {
	cmps := []clientv3.Cmp{w.leaderOK}
	var ops []clientv3.Op
	grant := false
	for i, op := range batch {
		cmps = append(cmps, op.cmps...)
		ops = append(ops, op.build(i)...)
		grant = grant || op.grant
	}
	if grant {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(w.epochKey), "=", w.epochRev))
		ops = append(ops, clientv3.OpPut(w.epochKey, ""))
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
		if lost || gerr != nil || grant && len(batch) == 1 && len(batch[0].cmps) == 0 {
			w.onLost(errors.New("fencing comparison failed: leadership or memory epoch changed"))
			return 0, ErrNotLeader
		}
		return 0, errCompare
	}
	if grant {
		w.epochRev = resp.Header.Revision
	}
	return resp.Header.Revision, nil
}

// lostLeadership re-evaluates the leader comparison alone.
func (w *writer) lostLeadership(ctx context.Context) (bool, error) {
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := w.cli.Txn(tctx).If(w.leaderOK).Commit()
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
// compactRetain past the last compaction, in the background. The leader's
// own watch is at the head, far above it.
func (w *writer) maybeCompact(ctx context.Context, rev int64) {
	if w.compactRetain <= 0 {
		return
	}
	w.qmu.Lock()
	due := !w.compacting && rev-w.compactRetain >= w.compactedTo+w.compactRetain
	w.compacting = w.compacting || due
	w.qmu.Unlock()
	if !due {
		return
	}
	to := rev - w.compactRetain
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
