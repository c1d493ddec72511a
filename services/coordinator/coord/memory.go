package coord

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

type lease struct {
	id          string
	sess        *session
	component   string
	bytes       int64
	priority    int32
	preemptible bool
	token       uint64
	rev         int64
	grantedAt   time.Time
	pending     bool // grant not yet committed
	releasing   bool // delete not yet committed
	revokeAt    time.Time
	revokeTimer *time.Timer
	gone        chan struct{} // closed when removed
	requestID   string
	resizing    bool       // a resize is waiting or being committed
	growth      *memWaiter // the waiting growth, if any
	used        int64      // what the holder last reported it uses
	usedKnown   bool
	// overBudget: the revocation notice is for a lowered budget, so a
	// shrink that makes the leases fit withdraws it (keptLocked).
	overBudget bool
}

type memResult struct {
	lease Lease
	err   error
}

type memWaiter struct {
	req    MemoryRequest
	sess   *session
	seq    uint64
	since  time.Time
	chosen bool   // taken off the queue for a grant being committed
	resize *lease // a growth of this lease by req.Bytes, not a new lease
	done   chan memResult
}

func (w *memWaiter) finish(r memResult) {
	select {
	case w.done <- r:
	default:
	}
}

// before orders waiters: lower priority number first, then arrival.
func (w *memWaiter) before(o *memWaiter) bool {
	if w.req.Priority != o.req.Priority {
		return w.req.Priority < o.req.Priority
	}
	return w.seq < o.seq
}

// AcquireMemory grants req.Bytes of the budget, waiting up to req.Wait.
func (c *Coordinator) AcquireMemory(ctx context.Context, req MemoryRequest) (Lease, error) {
	c.mu.Lock()
	st, s, err := c.sessionLocked(ctx, req.SessionID)
	if err != nil {
		c.mu.Unlock()
		return Lease{}, err
	}
	if req.Bytes > st.budget {
		c.mu.Unlock()
		return Lease{}, &TooLargeError{Requested: req.Bytes, Budget: st.budget}
	}
	if id := req.RequestID; id != "" {
		// A retry: answer with what its first attempt got.
		if l := s.byRequest[id]; l != nil && !l.pending && !l.releasing {
			info := c.leaseInfo(l)
			c.mu.Unlock()
			return info, nil
		}
		if s.byRequest[id] != nil || s.waitByRequest[id] != nil {
			c.mu.Unlock()
			return Lease{}, &InProgressError{What: "memory request " + strconv.Quote(id) + " of this session"}
		}
	}
	if err := c.waiterRoomLocked(st, s.owner); err != nil {
		c.mu.Unlock()
		return Lease{}, err
	}
	w := &memWaiter{req: req, sess: s, done: make(chan memResult, 1)}
	r := c.waitLocked(ctx, st, w)
	if r.err == nil && ctx.Err() != nil {
		// Granted, but nobody is listening any more: give it back.
		_ = c.ReleaseMemory(context.WithoutCancel(ctx), req.SessionID, r.lease.ID)
		return Lease{}, ctx.Err()
	}
	return r.lease, r.err
}

// waitLocked queues w, schedules, and waits for its outcome up to
// w.req.Wait; it is entered with c.mu held and returns with it released.
func (c *Coordinator) waitLocked(ctx context.Context, st *state, w *memWaiter) memResult {
	req, s := w.req, w.sess
	st.arrivals++
	w.seq, w.since = st.arrivals, time.Now()
	i := sort.Search(len(st.memQ), func(i int) bool { return w.before(st.memQ[i]) })
	st.memQ = append(st.memQ, nil)
	copy(st.memQ[i+1:], st.memQ[i:])
	st.memQ[i] = w
	st.countWaiter(s.owner, 1)
	s.memWait[w] = struct{}{}
	if req.RequestID != "" {
		s.waitByRequest[req.RequestID] = w
	}
	c.scheduleLocked(st)
	if !w.chosen {
		if req.Wait <= 0 {
			e := c.notGrantedLocked(st, w)
			c.removeMemWaiterLocked(st, w)
			c.mu.Unlock()
			return memResult{err: e}
		}
		c.emit(Event{Type: EventMemoryWaiting, SessionID: s.id, Owner: s.owner, Component: req.Component,
			Bytes: req.Bytes, Priority: req.Priority})
		c.updateGaugesLocked()
	}
	c.mu.Unlock()

	timer := time.NewTimer(max(req.Wait, 0))
	defer timer.Stop()
	var r memResult
	select {
	case r = <-w.done:
	case <-timer.C:
	case <-ctx.Done():
	}
	if r.err == nil && r.lease.ID == "" {
		// Timed out or cancelled: leave the queue, unless a grant for us is
		// already being committed, in which case take its outcome.
		c.mu.Lock()
		if !w.chosen {
			e := c.notGrantedLocked(st, w)
			c.removeMemWaiterLocked(st, w)
			c.scheduleLocked(st) // the head may have left: others may fit now
			c.mu.Unlock()
			if ctx.Err() != nil {
				return memResult{err: ctx.Err()}
			}
			return memResult{err: e}
		}
		c.mu.Unlock()
		r = <-w.done
	}
	return r
}

func (c *Coordinator) notGrantedLocked(st *state, w *memWaiter) error {
	ahead := 0
	for _, o := range st.memQ {
		if o == w {
			break
		}
		ahead++
	}
	c.m.denials.Inc()
	e := &NotGrantedError{Component: w.req.Component, Requested: w.req.Bytes, Free: max(st.budget-st.used, 0),
		Budget: st.budget, Waited: time.Since(w.since), Ahead: ahead, Holders: holdersLocked(st)}
	c.emit(Event{Type: EventMemoryDenied, SessionID: w.sess.id, Owner: w.sess.owner, Component: w.req.Component,
		Bytes: w.req.Bytes, Priority: w.req.Priority, Message: e.Error()})
	return e
}

// holdersLocked lists the leases holding the budget, largest first, so a
// refusal says who the request waited for.
func holdersLocked(st *state) []Holder {
	out := make([]Holder, 0, len(st.leases))
	for _, l := range st.leases {
		out = append(out, Holder{Component: l.component, Session: l.sess.id, Owner: l.sess.owner,
			Bytes: l.bytes, Priority: l.priority, Preemptible: l.preemptible})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Bytes != out[j].Bytes {
			return out[i].Bytes > out[j].Bytes
		}
		return out[i].Component < out[j].Component
	})
	return out[:min(len(out), maxHolders)]
}

func (c *Coordinator) removeMemWaiterLocked(st *state, w *memWaiter) {
	for i, o := range st.memQ {
		if o == w {
			st.memQ = append(st.memQ[:i], st.memQ[i+1:]...)
			st.countWaiter(w.sess.owner, -1)
			break
		}
	}
	delete(w.sess.memWait, w)
	if w.sess.waitByRequest[w.req.RequestID] == w {
		delete(w.sess.waitByRequest, w.req.RequestID)
	}
	if w.resize != nil && w.resize.growth == w {
		w.resize.growth, w.resize.resizing = nil, false
	}
	c.updateGaugesLocked()
}

// scheduleLocked grants waiters from the head of the queue while they fit.
// The head blocks those behind it (as golang.org/x/sync/semaphore does), so a
// large important request is not starved by a stream of small ones; if the
// head may wait, it may preempt.
func (c *Coordinator) scheduleLocked(st *state) {
	for len(st.memQ) > 0 {
		w := st.memQ[0]
		free := st.budget - st.used
		if w.req.Bytes > free {
			if w.req.Wait > 0 {
				c.preemptForLocked(st, w, free)
			}
			return
		}
		st.memQ = st.memQ[1:]
		st.countWaiter(w.sess.owner, -1)
		delete(w.sess.memWait, w)
		if w.sess.waitByRequest[w.req.RequestID] == w {
			delete(w.sess.waitByRequest, w.req.RequestID)
		}
		w.chosen = true
		if w.resize != nil {
			c.growLocked(st, w)
		} else {
			c.grantLocked(st, w)
		}
	}
}

func (c *Coordinator) grantLocked(st *state, w *memWaiter) {
	s := w.sess
	l := &lease{id: newID(), sess: s, component: w.req.Component, bytes: w.req.Bytes, priority: w.req.Priority,
		preemptible: w.req.Preemptible, grantedAt: time.Now(), pending: true, gone: make(chan struct{}), requestID: w.req.RequestID}
	// The bytes count as used from the decision on, so no later decision can
	// hand them out twice while this one is being committed.
	st.used += l.bytes
	st.leases[l.id], s.leases[l.id] = l, l
	st.leaseOrder.ReplaceOrInsert(l.id)
	if l.requestID != "" {
		s.byRequest[l.requestID] = l
	}
	c.updateGaugesLocked()
	key := c.key(kLeases, l.id)
	st.submit(&wop{
		grant: true,
		keys:  []string{key},
		build: func(idx int) []clientv3.Op {
			val, _ := json.Marshal(leaseRecord{Session: s.id, Component: l.component, Bytes: l.bytes,
				Priority: l.priority, Preemptible: l.preemptible, GrantedAt: l.grantedAt, Index: idx, RequestID: l.requestID})
			return []clientv3.Op{clientv3.OpPut(key, string(val), clientv3.WithLease(s.etcdID))}
		},
		done: func(rev int64, idx int, err error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.st != st {
				w.finish(memResult{err: ErrNotLeader})
				return
			}
			if err != nil {
				c.removeLeaseLocked(st, l, EventUnspecified, "")
				c.scheduleLocked(st)
				if errors.Is(err, errLeaseGone) {
					err = &NotFoundError{Kind: "session", ID: s.id}
				}
				w.finish(memResult{err: err})
				return
			}
			l.pending, l.rev, l.token = false, rev, fencingToken(rev, idx)
			c.m.grants.Inc()
			c.m.memWait.Observe(time.Since(w.since).Seconds())
			c.emit(Event{Type: EventMemoryGranted, SessionID: s.id, Owner: s.owner, Component: l.component,
				LeaseID: l.id, Bytes: l.bytes, Priority: l.priority, FencingToken: l.token})
			w.finish(memResult{lease: c.leaseInfo(l)})
		},
	})
}

func (c *Coordinator) leaseInfo(l *lease) Lease {
	return Lease{ID: l.id, SessionID: l.sess.id, Owner: l.sess.owner, Component: l.component, Bytes: l.bytes,
		Priority: l.priority, Preemptible: l.preemptible, FencingToken: l.token, GrantedAt: l.grantedAt, RevokeAt: l.revokeAt,
		RequestID: l.requestID, Used: l.used, UsedKnown: l.usedKnown}
}

// preemptForLocked sends revocation notices to enough preemptible leases of
// strictly lower priority (larger number) for w to fit once they are gone:
// least important first, then newest first. Nothing is revoked unless
// revoking would really make room.
func (c *Coordinator) preemptForLocked(st *state, w *memWaiter, free int64) {
	need := w.req.Bytes - free
	var candidates []*lease
	for _, l := range st.leases {
		if l.pending || l.releasing {
			continue
		}
		if !l.revokeAt.IsZero() {
			need -= l.bytes // already on its way out
			continue
		}
		if l.preemptible && l.priority > w.req.Priority && !pluginOf(l, w) && !dependsOn(st, w.req.Component, l.component) {
			candidates = append(candidates, l)
		}
	}
	if need <= 0 {
		return
	}
	preemptionOrder(candidates)
	var victims []*lease
	for _, l := range candidates {
		if need <= 0 {
			break
		}
		victims = append(victims, l)
		need -= l.bytes
	}
	if need > 0 {
		return
	}
	c.revokeLocked(st, victims, "preempted by "+w.req.Component+" (priority "+strconv.Itoa(int(w.req.Priority))+")")
}

// pluginOf says whether l is a plugin of w's component held by the same
// session ("matching/algorithm/fifo" of "matching"): the requester runs on
// it, so preempting it to make room for the requester would break the
// requester (the engine's growth would unload the algorithm every order
// needs). Such a lease is never the requester's victim, whatever its
// priority; others may still preempt it.
func pluginOf(l *lease, w *memWaiter) bool {
	return l.sess == w.sess && strings.HasPrefix(l.component, w.req.Component+"/")
}

// dependsOn says whether component needs dep: dep is among its registered
// dependencies, directly or through others. A request never preempts what
// it depends on (activation would only bring it back, or fail).
func dependsOn(st *state, component, dep string) bool {
	seen := map[string]bool{component: true}
	next := []string{component}
	for len(next) > 0 {
		c := st.components[next[len(next)-1]]
		next = next[:len(next)-1]
		if c == nil {
			continue
		}
		for _, d := range c.Dependencies {
			if d == dep {
				return true
			}
			if !seen[d] {
				seen[d] = true
				next = append(next, d)
			}
		}
	}
	return false
}

// preemptionOrder sorts candidates for preemption: least important (largest
// priority number) first, then newest first.
func preemptionOrder(candidates []*lease) {
	sort.Slice(candidates, func(i, j int) bool {
		a, b := candidates[i], candidates[j]
		if a.priority != b.priority {
			return a.priority > b.priority
		}
		return a.grantedAt.After(b.grantedAt)
	})
}

// revokeLocked sends revocation notices: each lease must be released within
// the grace period or it is released by force. A growth the lease was
// waiting for is refused: the lease is on its way out.
func (c *Coordinator) revokeLocked(st *state, victims []*lease, why string) {
	deadline := time.Now().Add(c.cfg.PreemptGrace)
	for _, l := range victims {
		l.revokeAt = deadline
		c.m.preemptions.Inc()
		if g := l.growth; g != nil && !g.chosen {
			c.removeMemWaiterLocked(st, g)
			g.finish(memResult{err: &RevokedError{LeaseID: l.id, Component: l.component}})
		}
		c.emit(Event{Type: EventMemoryPreempting, SessionID: l.sess.id, Owner: l.sess.owner, Component: l.component,
			LeaseID: l.id, Bytes: l.bytes, Priority: l.priority, FencingToken: l.token, Deadline: deadline,
			Message: why + "; release before the deadline"})
		l.revokeTimer = time.AfterFunc(c.cfg.PreemptGrace, func() { c.forceRelease(st, l) })
	}
}

func (c *Coordinator) forceRelease(st *state, l *lease) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st != st || st.leases[l.id] != l || l.releasing || l.revokeAt.IsZero() { // gone, going, or kept
		return
	}
	c.m.forced.Inc()
	c.releaseLocked(st, l, EventMemoryForceReleased, "grace period over", nil)
}

// ReleaseMemory gives a lease back. Releasing a lease that is already being
// released waits for that release.
func (c *Coordinator) ReleaseMemory(ctx context.Context, sessionID, leaseID string) error {
	c.mu.Lock()
	st, s, err := c.sessionLocked(ctx, sessionID)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	l := st.leases[leaseID]
	if l == nil || l.pending {
		c.mu.Unlock()
		return &NotFoundError{Kind: "lease", ID: leaseID}
	}
	if l.sess != s {
		c.mu.Unlock()
		return &PermissionError{Session: l.sess.id, Owner: l.sess.owner, What: "lease " + leaseID}
	}
	done := make(chan error, 1)
	if l.releasing {
		gone := l.gone
		c.mu.Unlock()
		select {
		case <-gone:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.releaseLocked(st, l, EventMemoryReleased, "released", done)
	c.mu.Unlock()
	return <-done
}

func (c *Coordinator) releaseLocked(st *state, l *lease, ev EventType, why string, done chan error) {
	l.releasing = true
	if l.revokeTimer != nil {
		l.revokeTimer.Stop()
	}
	key := c.key(kLeases, l.id)
	st.submit(&wop{
		keys:  []string{key},
		build: static(clientv3.OpDelete(key)),
		done: func(_ int64, _ int, err error) {
			c.mu.Lock()
			if c.st == st && err == nil {
				c.removeLeaseLocked(st, l, ev, why)
				c.scheduleLocked(st)
			} else if c.st == st {
				l.releasing = false
			}
			c.mu.Unlock()
			if done != nil {
				done <- err
			}
		},
	})
}

// removeLeaseLocked forgets a lease whose key is gone (or never was).
func (c *Coordinator) removeLeaseLocked(st *state, l *lease, ev EventType, why string) {
	if st.leases[l.id] != l {
		return
	}
	delete(st.leases, l.id)
	st.leaseOrder.Delete(l.id)
	delete(l.sess.leases, l.id)
	if l.sess.byRequest[l.requestID] == l {
		delete(l.sess.byRequest, l.requestID)
	}
	st.used -= l.bytes
	if l.revokeTimer != nil {
		l.revokeTimer.Stop()
	}
	if g := l.growth; g != nil && !g.chosen {
		c.removeMemWaiterLocked(st, g)
		g.finish(memResult{err: &NotFoundError{Kind: "lease", ID: l.id}})
	}
	close(l.gone)
	if ev != EventUnspecified {
		c.m.releases.Inc()
		c.emit(Event{Type: ev, SessionID: l.sess.id, Owner: l.sess.owner, Component: l.component, LeaseID: l.id,
			Bytes: l.bytes, Priority: l.priority, FencingToken: l.token, Message: why})
	}
	c.updateGaugesLocked()
}

// LeaseQuery selects leases for ListLeases; zero fields select all.
type LeaseQuery struct {
	SessionID, Component string
	Page
}

// ListLeases lists one page of granted leases, in lease id order, and the
// token of the next page ("" at the end). The work under the coordinator's
// mutex is in the size of the page (the ids are kept in a B-tree), not of
// all leases, so a client listing does not slow grants down.
func (c *Coordinator) ListLeases(q LeaseQuery) ([]Lease, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := c.current()
	if err != nil {
		return nil, "", err
	}
	match := func(l *lease) bool {
		return !l.pending && (q.Component == "" || l.component == q.Component)
	}
	var out []Lease
	next := ""
	if q.SessionID != "" {
		s := st.sessions[PublicID(q.SessionID)]
		if s == nil {
			return nil, "", nil
		}
		var ids []string
		for id, l := range s.leases {
			if match(l) {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		var page []string
		page, next = pageOf(ids, q.Page)
		for _, id := range page {
			out = append(out, c.leaseInfo(s.leases[id]))
		}
		return out, next, nil
	}
	size := q.size()
	st.leaseOrder.AscendGreaterOrEqual(q.Token, func(id string) bool {
		if id == q.Token {
			return true
		}
		if l := st.leases[id]; l != nil && match(l) {
			if len(out) == size {
				next = out[len(out)-1].ID
				return false
			}
			out = append(out, c.leaseInfo(l))
		}
		return true
	})
	return out, next, nil
}
