package coord

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

// The term: a replica campaigns in the etcd election, and while it leads it
// holds the state (state.go) and applies the deletions etcd makes on its own.
// When the term ends everything waiting on it fails with ErrNotLeader.

// Run campaigns for leadership and leads when elected, until ctx ends.
func (c *Coordinator) Run(ctx context.Context) error {
	go c.observeLeader(ctx)
	c.dropOwnStaleCandidacy(ctx)
	if _, err := c.ensureBudget(ctx); err != nil {
		c.log.Warn("cannot read or store the memory budget yet; retried when elected", zap.Error(err))
	}
	// Retries of the election session and the campaign back off from
	// 100 ms to 5 s, with jitter so that replicas do not retry in step.
	retry := &backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, RandomizationFactor: 0.2,
		Multiplier: 2, MaxInterval: 5 * time.Second}
	retry.Reset()
	for ctx.Err() == nil {
		sess, err := concurrency.NewSession(c.cli, concurrency.WithTTL(c.cfg.ElectionTTL), concurrency.WithContext(ctx))
		if err != nil {
			wait := retry.NextBackOff()
			c.log.Warn("cannot open election session; retrying", zap.Error(err), zap.Duration("backoff", wait))
			sleep(ctx, wait)
			continue
		}
		retry.Reset()
		el := concurrency.NewElection(sess, c.key(kElection))
		if err := el.Campaign(ctx, c.cfg.Advertise); err != nil {
			sess.Close()
			if ctx.Err() == nil {
				wait := retry.NextBackOff()
				c.log.Warn("campaign failed; retrying", zap.Error(err), zap.Duration("backoff", wait))
				sleep(ctx, wait)
			}
			continue
		}
		c.log.Info("elected coordinator leader", zap.String("advertise", c.cfg.Advertise), zap.Int64("election_rev", el.Rev()))
		err = c.lead(ctx, sess, el)
		c.log.Warn("leadership ended", zap.Error(err))
		rctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = el.Resign(rctx)
		cancel()
		sess.Close()
	}
	return ctx.Err()
}

// dropOwnStaleCandidacy revokes election keys that carry this replica's
// own address: they were left by its previous process (killed before it
// could resign), which no longer serves there since this one does. Without
// this a restarted leader would wait out its own old key's TTL, with no
// leader meanwhile.
func (c *Coordinator) dropOwnStaleCandidacy(ctx context.Context) {
	gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := c.cli.Get(gctx, c.key(kElection), clientv3.WithPrefix())
	if err != nil {
		c.log.Warn("cannot look for a stale candidacy of this replica", zap.Error(err))
		return
	}
	for _, kv := range resp.Kvs {
		if string(kv.Value) != c.cfg.Advertise || kv.Lease == 0 {
			continue
		}
		_, err := c.cli.Revoke(gctx, clientv3.LeaseID(kv.Lease))
		c.log.Info("revoked this replica's stale election key from a previous process",
			zap.String("key", string(kv.Key)), zap.Int64("lease", kv.Lease), zap.Error(err))
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (c *Coordinator) observeLeader(ctx context.Context) {
	for ctx.Err() == nil {
		sess, err := concurrency.NewSession(c.cli, concurrency.WithTTL(c.cfg.ElectionTTL), concurrency.WithContext(ctx))
		if err != nil {
			sleep(ctx, time.Second)
			continue
		}
		el := concurrency.NewElection(sess, c.key(kElection))
		for resp := range el.Observe(ctx) {
			if len(resp.Kvs) > 0 {
				addr := string(resp.Kvs[0].Value)
				if old := c.leaderAddr.Swap(addr); old != addr {
					c.emit(Event{Type: EventLeaderChanged, Message: addr})
				}
			}
		}
		sess.Close()
		sleep(ctx, 100*time.Millisecond)
	}
}

// lead loads the state, then serves as leader until the term ends.
func (c *Coordinator) lead(ctx context.Context, sess *concurrency.Session, el *concurrency.Election) error {
	tctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-sess.Done():
			cancel(errors.New("election session lost"))
		case <-tctx.Done():
		}
	}()
	if _, err := c.ensureBudget(tctx); err != nil {
		return fmt.Errorf("memory budget: %w", err)
	}
	st, rev, err := c.load(tctx)
	if err != nil {
		return fmt.Errorf("load state: %w", err)
	}
	st.ctx = tctx
	w := newWriter(c.cli, c.log, c.m, clientv3.Compare(clientv3.CreateRevision(el.Key()), "=", el.Rev()),
		c.key(kEpoch), el.Key()+"@"+strconv.FormatInt(el.Rev(), 10))
	w.maxBatch, w.depth, w.minPipelined = c.cfg.MaxBatch, c.cfg.PipelineDepth, c.cfg.PipelineMin
	w.compactRetain = c.cfg.CompactRetain
	w.maxOps, w.maxBytes = c.cfg.MaxTxnOps, c.cfg.MaxRequestBytes-c.cfg.MaxRequestBytes/8
	w.onLost = func(err error) { cancel(err) }
	// No grant of another writer since the state was loaded, and none of
	// another writer from now on: the epoch names this term.
	if err := w.claimEpoch(tctx, st.epochRev); err != nil {
		return fmt.Errorf("claim the memory epoch: %w", err)
	}
	st.w = w
	wctx := clientv3.WithRequireLeader(tctx)
	st.w.watched.Store(rev) // the watch starts after the loaded state
	st.w.askProgress = func() { go func() { _ = c.cli.RequestProgress(wctx) }() }
	go st.w.run(tctx)
	watch := c.cli.Watch(wctx, c.cfg.Prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithFilterPut())

	c.mu.Lock()
	c.st = st
	c.leading.Store(true)
	c.updateGaugesLocked()
	c.orphanedComponentsLocked(st) // rows of sessions that ended between leaders
	// A budget lowered under a previous leader whose revocation notices
	// died with it: ask again.
	c.fitBudgetLocked(st, "the leases exceed the memory budget")
	c.mu.Unlock()
	c.m.leader.Set(1)
	c.leaderAddr.Store(c.cfg.Advertise)
	// Memory that was waiting on a previous leader is re-requested by clients;
	// leases revoked by a previous leader are not re-revoked until needed.
	defer func() {
		c.m.leader.Set(0)
		c.mu.Lock()
		c.abandonLocked(st)
		c.st = nil
		c.leading.Store(false)
		c.mu.Unlock()
	}()
	for {
		select {
		case <-tctx.Done():
			return context.Cause(tctx)
		case wr, ok := <-watch:
			if !ok {
				return errors.New("etcd watch closed")
			}
			if err := wr.Err(); err != nil {
				return fmt.Errorf("etcd watch: %w", err)
			}
			c.mu.Lock()
			for _, ev := range wr.Events {
				if ev.Type == mvccpb.DELETE {
					c.onDeleteLocked(st, string(ev.Kv.Key), ev.Kv.ModRevision)
				}
			}
			c.mu.Unlock()
			// How far the watch has read, for compaction (see maybeCompact).
			if n := len(wr.Events); n > 0 {
				st.w.watched.Store(wr.Events[n-1].Kv.ModRevision)
			} else if wr.IsProgressNotify() {
				st.w.watched.Store(wr.Header.Revision)
			}
		}
	}
}

// abandonLocked fails everything waiting on this term.
func (c *Coordinator) abandonLocked(st *state) {
	for _, w := range st.memQ {
		w.finish(memResult{err: ErrNotLeader})
	}
	st.memQ = nil
	for _, ls := range st.locks {
		for _, w := range ls.waiters {
			w.finish(lockResult{err: ErrNotLeader})
		}
		ls.waiters = nil
	}
	for _, l := range st.leases {
		if l.revokeTimer != nil {
			l.revokeTimer.Stop()
		}
	}
}
