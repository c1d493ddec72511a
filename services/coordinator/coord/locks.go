package coord

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

type lockState struct {
	name    string
	holder  *lockHolder
	waiters []*lockWaiter // FIFO
	release *lockRelease  // the holder's release, while its write is in flight
}

// lockRelease is a release whose etcd write (the delete, or the hand-off to
// the next waiter) is not settled yet. A retried ReleaseLock joins it and
// answers what really happened: a retry of a release whose first answer was
// lost (a timeout while etcd was stalled) must not be told "not held" while
// the key still names its session, nor start a second release.
type lockRelease struct {
	sess *session
	done chan struct{} // closed once err is set
	err  error
}

func (r *lockRelease) wait(ctx context.Context) error {
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

type lockHolder struct {
	sess       *session
	token      uint64
	rev        int64
	rank       int32
	acquiredAt time.Time
	pending    bool // grant not yet committed
	releasing  bool // hand-off or delete not yet committed
}

type lockWaiter struct {
	sess   *session
	name   string
	rank   int32
	since  time.Time
	chosen bool
	done   chan lockResult
}

type lockResult struct {
	token uint64
	err   error
}

func (w *lockWaiter) finish(r lockResult) {
	select {
	case w.done <- r:
	default:
	}
}

func (st *state) lock(name string) *lockState {
	ls := st.locks[name]
	if ls == nil {
		ls = &lockState{name: name}
		st.locks[name] = ls
	}
	return ls
}

// AcquireLock takes the named lock for the session, waiting up to req.Wait
// in FIFO order. A request that would close a wait-for cycle fails at once.
func (c *Coordinator) AcquireLock(ctx context.Context, req LockRequest) (uint64, error) {
	rank := req.Rank
	if rank == 0 {
		rank = c.cfg.LockRanks[req.Name]
	}
	c.mu.Lock()
	st, s, err := c.sessionLocked(ctx, req.SessionID)
	if err != nil {
		c.mu.Unlock()
		return 0, err
	}
	ls := st.lock(req.Name)
	if h := ls.holder; h != nil && h.sess == s {
		c.mu.Unlock()
		if h.pending || h.releasing {
			return 0, &InProgressError{What: "an acquisition or release of lock " + strconv.Quote(req.Name) + " by this session"}
		}
		return h.token, nil // re-acquiring what you hold is idempotent
	}
	if rank > 0 {
		for _, name := range sortedKeys(s.held) {
			if h := s.held[name].holder; h != nil && h.sess == s && h.rank > rank {
				c.mu.Unlock()
				return 0, &RankError{Held: name, HeldRank: h.rank, Wanted: req.Name, WantedRank: rank}
			}
		}
	}
	w := &lockWaiter{sess: s, name: req.Name, rank: rank, since: time.Now(), done: make(chan lockResult, 1)}
	if ls.holder == nil && len(ls.waiters) == 0 {
		w.chosen = true
		c.grantLockLocked(st, ls, w, nil)
	} else {
		if req.Wait <= 0 {
			e := c.lockTimeoutLocked(ls, w)
			c.mu.Unlock()
			return 0, e
		}
		if err := c.waiterRoomLocked(st, s.owner); err != nil {
			c.mu.Unlock()
			return 0, err
		}
		if cycle := c.findCycleLocked(st, s, ls); cycle != nil {
			e := &DeadlockError{Cycle: cycle}
			c.m.deadlocks.Inc()
			c.emit(Event{Type: EventLockDeadlock, SessionID: s.id, Owner: s.owner, LockName: req.Name, Message: e.Error()})
			c.mu.Unlock()
			return 0, e
		}
		ls.waiters = append(ls.waiters, w)
		st.countWaiter(s.owner, 1)
		s.waits[w] = struct{}{}
		c.emit(Event{Type: EventLockWaiting, SessionID: s.id, Owner: s.owner, LockName: req.Name})
		c.updateGaugesLocked()
	}
	c.mu.Unlock()

	timer := time.NewTimer(max(req.Wait, 0))
	defer timer.Stop()
	var r lockResult
	got := false
	select {
	case r = <-w.done:
		got = true
	case <-timer.C:
	case <-ctx.Done():
	}
	if !got {
		c.mu.Lock()
		if !w.chosen {
			e := c.lockTimeoutLocked(ls, w)
			c.removeLockWaiterLocked(st, w)
			c.mu.Unlock()
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return 0, e
		}
		c.mu.Unlock()
		r = <-w.done
	}
	if r.err == nil && ctx.Err() != nil {
		_ = c.ReleaseLock(context.WithoutCancel(ctx), req.SessionID, req.Name)
		return 0, ctx.Err()
	}
	return r.token, r.err
}

func (c *Coordinator) lockTimeoutLocked(ls *lockState, w *lockWaiter) error {
	e := &LockTimeoutError{Name: ls.name, Waited: time.Since(w.since)}
	if h := ls.holder; h != nil {
		e.Holder, e.HolderOwner = h.sess.id, h.sess.owner
	} else if len(ls.waiters) > 0 {
		e.Holder, e.HolderOwner = ls.waiters[0].sess.id, ls.waiters[0].sess.owner
	}
	c.m.lockTimeouts.Inc()
	c.emit(Event{Type: EventLockTimeout, SessionID: w.sess.id, Owner: w.sess.owner, LockName: ls.name, Message: e.Error()})
	return e
}

func (c *Coordinator) removeLockWaiterLocked(st *state, w *lockWaiter) {
	if ls := st.locks[w.name]; ls != nil {
		for i, o := range ls.waiters {
			if o == w {
				ls.waiters = append(ls.waiters[:i], ls.waiters[i+1:]...)
				st.countWaiter(w.sess.owner, -1)
				break
			}
		}
		if ls.holder == nil && len(ls.waiters) > 0 {
			c.passOnLocked(st, ls, nil)
		}
		c.forgetIfIdleLocked(st, ls)
	}
	delete(w.sess.waits, w)
	c.updateGaugesLocked()
}

func (c *Coordinator) forgetIfIdleLocked(st *state, ls *lockState) {
	if ls.holder == nil && len(ls.waiters) == 0 && st.locks[ls.name] == ls {
		delete(st.locks, ls.name)
	}
}

// grantLockLocked makes w the holder of ls. If another session still holds
// the key (a release in progress) this is a hand-off: one etcd write moves
// the lock from the old holder to the new one. relDone, if set, completes
// the old holder's release.
func (c *Coordinator) grantLockLocked(st *state, ls *lockState, w *lockWaiter, relDone func(error)) {
	prev := ls.holder
	h := &lockHolder{sess: w.sess, rank: w.rank, acquiredAt: time.Now(), pending: true}
	ls.holder = h
	key := c.key(kLocks, ls.name)
	var cmps []clientv3.Cmp
	if prev == nil {
		cmps = []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)}
	}
	st.submit(&wop{
		cmps: cmps,
		keys: []string{key},
		build: func(idx int) []clientv3.Op {
			val, _ := json.Marshal(lockRecord{Session: w.sess.id, Rank: w.rank, AcquiredAt: h.acquiredAt, Index: idx})
			return []clientv3.Op{clientv3.OpPut(key, string(val), clientv3.WithLease(w.sess.etcdID))}
		},
		done: func(rev int64, idx int, err error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.st != st {
				w.finish(lockResult{err: ErrNotLeader})
				if relDone != nil {
					relDone(ErrNotLeader)
				}
				return
			}
			if err != nil {
				ls.holder = prev
				switch {
				case errors.Is(err, errLeaseGone):
					err = &NotFoundError{Kind: "session", ID: w.sess.id}
				case errors.Is(err, errCompare):
					st.w.onLost(errors.New("lock " + ls.name + " held in etcd but not in the leader's view"))
					err = ErrNotLeader
				}
				w.finish(lockResult{err: err})
				if prev == nil || prev.releasing {
					c.passOnLocked(st, ls, relDone)
				}
				return
			}
			if prev != nil {
				delete(prev.sess.held, ls.name)
				c.emit(Event{Type: EventLockReleased, SessionID: prev.sess.id, Owner: prev.sess.owner, LockName: ls.name,
					FencingToken: prev.token, Message: "handed off to session " + w.sess.id})
			}
			h.pending, h.rev, h.token = false, rev, fencingToken(rev, idx)
			w.sess.held[ls.name] = ls
			c.m.lockGrants.Inc()
			c.m.lockWait.Observe(time.Since(w.since).Seconds())
			c.emit(Event{Type: EventLockGranted, SessionID: w.sess.id, Owner: w.sess.owner, LockName: ls.name, FencingToken: h.token})
			c.updateGaugesLocked()
			w.finish(lockResult{token: h.token})
			if relDone != nil {
				relDone(nil)
			}
		},
	})
}

// passOnLocked gives ls to its first waiter, or deletes the key when nobody
// waits. ls.holder is nil (the key is gone) or releasing.
func (c *Coordinator) passOnLocked(st *state, ls *lockState, relDone func(error)) {
	if len(ls.waiters) > 0 {
		w := ls.waiters[0]
		ls.waiters = ls.waiters[1:]
		st.countWaiter(w.sess.owner, -1)
		delete(w.sess.waits, w)
		w.chosen = true
		c.grantLockLocked(st, ls, w, relDone)
		return
	}
	prev := ls.holder
	if prev == nil {
		c.forgetIfIdleLocked(st, ls)
		if relDone != nil {
			relDone(nil)
		}
		return
	}
	key := c.key(kLocks, ls.name)
	st.submit(&wop{
		keys:  []string{key},
		build: static(clientv3.OpDelete(key)),
		done: func(_ int64, _ int, err error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.st != st {
				if relDone != nil {
					relDone(ErrNotLeader)
				}
				return
			}
			if err != nil {
				prev.releasing = false
				if relDone != nil {
					relDone(err)
				}
				return
			}
			ls.holder = nil
			delete(prev.sess.held, ls.name)
			c.emit(Event{Type: EventLockReleased, SessionID: prev.sess.id, Owner: prev.sess.owner, LockName: ls.name, FencingToken: prev.token})
			c.passOnLocked(st, ls, nil) // someone may have queued meanwhile
			c.updateGaugesLocked()
			if relDone != nil {
				relDone(nil)
			}
		},
	})
}

// dropHolderLocked forgets a holder whose key etcd deleted (its session
// ended) and passes the lock on.
func (c *Coordinator) dropHolderLocked(st *state, ls *lockState, why string) {
	h := ls.holder
	if h == nil || h.pending || h.releasing {
		return // a commit in flight settles it
	}
	ls.holder = nil
	delete(h.sess.held, ls.name)
	c.emit(Event{Type: EventLockReleased, SessionID: h.sess.id, Owner: h.sess.owner, LockName: ls.name, FencingToken: h.token, Message: why})
	c.passOnLocked(st, ls, nil)
	c.updateGaugesLocked()
}

// ReleaseLock releases a lock the session holds, handing it to the first
// waiter in the same etcd write. It answers only what is true: released
// (nil), not held (NotHeldError), or not settled yet (a context error or
// ErrNotLeader; retry). A retry while the release is in flight joins it.
func (c *Coordinator) ReleaseLock(ctx context.Context, sessionID, name string) error {
	c.mu.Lock()
	st, s, err := c.sessionLocked(ctx, sessionID)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	ls := st.locks[name]
	if ls != nil && ls.release != nil && ls.release.sess == s {
		rel := ls.release
		c.mu.Unlock()
		return rel.wait(ctx)
	}
	if ls != nil && ls.holder != nil && ls.holder.sess == s && ls.holder.pending {
		c.mu.Unlock()
		return &InProgressError{What: "the acquisition of lock " + strconv.Quote(name) + " by this session"}
	}
	if ls == nil || ls.holder == nil || ls.holder.sess != s {
		c.mu.Unlock()
		return &NotHeldError{Name: name, Session: s.id}
	}
	ls.holder.releasing = true
	rel := &lockRelease{sess: s, done: make(chan struct{})}
	ls.release = rel
	var once sync.Once
	// relDone runs under c.mu, from the commit's callback.
	c.passOnLocked(st, ls, func(err error) {
		once.Do(func() {
			rel.err = err
			if ls.release == rel {
				ls.release = nil
			}
			close(rel.done)
		})
	})
	c.mu.Unlock()
	return rel.wait(ctx)
}

// findCycleLocked looks for a wait-for cycle that s would close by queueing
// for ls. A session waits for a lock's holder and for every session queued
// ahead of it (FIFO: they will hold it first). The search is breadth-first,
// so the cycle it reports is a shortest one, and it records only the edge
// each session was reached by: with many waiters on one lock (a hot lock)
// it stays linear in the edges instead of copying paths.
func (c *Coordinator) findCycleLocked(st *state, s *session, ls *lockState) []DeadlockEdge {
	// Each lock's holder and queue positions are followed at most once per
	// search: every session waiting on a lock waits for the same holder and
	// a prefix of the same queue, so once a prefix is covered its sessions
	// are already reached. That keeps a hot lock with k waiters at O(k) per
	// request instead of O(k^2).
	holderDone := map[*lockState]bool{}
	covered := map[*lockState]int{} // waiters[:n] already followed
	// forEachEdge calls fn for each new session x waits for; fn returns
	// false to stop.
	forEachEdge := func(x *session, fn func(DeadlockEdge) bool) bool {
		waitsOn := func(l *lockState, upTo *lockWaiter) bool {
			edge := func(to *session, queued bool) bool {
				if to == x {
					return true
				}
				return fn(DeadlockEdge{Session: x.id, Owner: x.owner, Lock: l.name, Next: to.id, NextOwner: to.owner, Queued: queued})
			}
			if !holderDone[l] {
				holderDone[l] = true
				if l.holder != nil && !edge(l.holder.sess, false) {
					return false
				}
			}
			end := len(l.waiters)
			if upTo != nil {
				for i, o := range l.waiters {
					if o == upTo {
						end = i
						break
					}
				}
			}
			for i := covered[l]; i < end; i++ {
				covered[l] = i + 1
				if !edge(l.waiters[i].sess, true) {
					return false
				}
			}
			return true
		}
		if x == s && !waitsOn(ls, nil) {
			return false
		}
		for w := range x.waits {
			if l := st.locks[w.name]; l != nil && !waitsOn(l, w) {
				return false
			}
		}
		return true
	}
	via := map[*session]DeadlockEdge{} // the edge each session was first reached by
	visited := map[*session]bool{s: true}
	queue := []*session{s}
	var closing *DeadlockEdge
	for len(queue) > 0 && closing == nil {
		x := queue[0]
		queue = queue[1:]
		forEachEdge(x, func(e DeadlockEdge) bool {
			next := st.sessions[e.Next]
			if next == s {
				closing = &e
				return false
			}
			if next != nil && !visited[next] {
				visited[next] = true
				via[next] = e
				queue = append(queue, next)
			}
			return true
		})
	}
	if closing == nil {
		return nil
	}
	// Walk back from the edge that closes the cycle to s.
	cycle := []DeadlockEdge{*closing}
	for cur := st.sessions[closing.Session]; cur != s; {
		e := via[cur]
		cycle = append(cycle, e)
		cur = st.sessions[e.Session]
	}
	for i, j := 0, len(cycle)-1; i < j; i, j = i+1, j-1 {
		cycle[i], cycle[j] = cycle[j], cycle[i]
	}
	return cycle
}

// ListLocks lists one page of held locks with their waiters, in name
// order (of one session's when sessionID is set), and the next page's token.
func (c *Coordinator) ListLocks(sessionID string, p Page) ([]LockInfo, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := c.current()
	if err != nil {
		return nil, "", err
	}
	var names []string
	if sessionID != "" {
		if s := st.sessions[PublicID(sessionID)]; s != nil {
			names = sortedKeys(s.held)
		}
	} else {
		names = sortedKeys(st.locks)
	}
	held := names[:0:0]
	for _, n := range names {
		if ls := st.locks[n]; ls != nil && ls.holder != nil && !ls.holder.pending {
			held = append(held, n)
		}
	}
	page, next := pageOf(held, p)
	out := make([]LockInfo, 0, len(page))
	for _, name := range page {
		ls := st.locks[name]
		li := LockInfo{Name: name, SessionID: ls.holder.sess.id, Owner: ls.holder.sess.owner,
			FencingToken: ls.holder.token, Rank: ls.holder.rank, AcquiredAt: ls.holder.acquiredAt}
		for _, w := range ls.waiters {
			li.Waiters = append(li.Waiters, w.sess.id)
		}
		out = append(out, li)
	}
	return out, next, nil
}
