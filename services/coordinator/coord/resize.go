package coord

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Resizing a lease keeps its id and fencing token. Shrinking is written at
// once; a growth is an AcquireMemory of the difference at the lease's
// priority: it queues, may preempt, and is fenced by the memory epoch like
// any grant, so the budget invariant holds for resizes too. Either rewrite
// of the record is conditional on the record being the one this leader
// knows, so a resize never brings back a lease deleted meanwhile.

// ResizeRequest asks to change a lease's size.
type ResizeRequest struct {
	SessionID, LeaseID string
	Bytes              int64
	Wait               time.Duration // how long a growth may wait
	// Used, if UsedKnown, is what the holder really uses now.
	Used      int64
	UsedKnown bool
}

// ResizeMemory changes a lease's size; see ResizeRequest.
func (c *Coordinator) ResizeMemory(ctx context.Context, req ResizeRequest) (Lease, error) {
	if req.Bytes <= 0 {
		return Lease{}, &InvalidError{Field: "bytes", Reason: "must be more than zero (release the lease to give it all back)"}
	}
	if req.UsedKnown && req.Used < 0 {
		return Lease{}, &InvalidError{Field: "used_bytes", Reason: "must not be negative"}
	}
	c.mu.Lock()
	st, s, err := c.sessionLocked(ctx, req.SessionID)
	if err != nil {
		c.mu.Unlock()
		return Lease{}, err
	}
	l := st.leases[req.LeaseID]
	switch {
	case l == nil:
		err = &NotFoundError{Kind: "lease", ID: req.LeaseID}
	case l.sess != s:
		err = &PermissionError{Session: l.sess.id, Owner: l.sess.owner, What: "lease " + req.LeaseID}
	case l.pending || l.releasing || l.resizing:
		err = &InProgressError{What: "a grant, release or resize of lease " + req.LeaseID}
	case req.Bytes > st.budget && req.Bytes > l.bytes: // a shrink is allowed above a lowered budget
		err = &TooLargeError{Requested: req.Bytes, Budget: st.budget}
	case req.Bytes > l.bytes && !l.revokeAt.IsZero():
		err = &RevokedError{LeaseID: l.id, Component: l.component}
	}
	if err != nil {
		c.mu.Unlock()
		return Lease{}, err
	}
	reported := req.UsedKnown && (!l.usedKnown || l.used != req.Used)
	if req.UsedKnown {
		l.used, l.usedKnown = req.Used, true
	}
	switch {
	case req.Bytes == l.bytes && !reported:
		info := c.leaseInfo(l)
		info.Over = c.overLocked(st, l)
		c.mu.Unlock()
		return info, nil
	case req.Bytes == l.bytes:
		// A new report of the usage alone is written with the record, so a
		// new leader knows it too (holders report when it moved a tenth).
		done := make(chan memResult, 1)
		c.rewriteLocked(st, l, l.bytes, false, func(r memResult) { done <- r })
		c.mu.Unlock()
		r := <-done
		return r.lease, r.err
	case req.Bytes < l.bytes:
		done := make(chan memResult, 1)
		c.rewriteLocked(st, l, req.Bytes, false, func(r memResult) { done <- r })
		c.mu.Unlock()
		r := <-done
		return r.lease, r.err
	}
	w := &memWaiter{sess: s, resize: l, done: make(chan memResult, 1), req: MemoryRequest{SessionID: s.id,
		Component: l.component, Bytes: req.Bytes - l.bytes, Priority: l.priority, Preemptible: l.preemptible, Wait: req.Wait}}
	l.resizing, l.growth = true, w
	r := c.waitLocked(ctx, st, w)
	return r.lease, r.err
}

// growLocked commits a growth the scheduler decided on. Like a grant, the
// difference counts as used from the decision on.
func (c *Coordinator) growLocked(st *state, w *memWaiter) {
	l := w.resize
	l.growth = nil
	st.used += w.req.Bytes
	c.updateGaugesLocked()
	c.rewriteLocked(st, l, l.bytes+w.req.Bytes, true, w.finish)
}

// rewriteLocked writes l's record with its new size. For a growth the
// difference is already counted in st.used; a shrink counts only once it
// is committed, so no grant can use bytes that are not yet given back.
func (c *Coordinator) rewriteLocked(st *state, l *lease, bytes int64, grow bool, finish func(memResult)) {
	l.resizing = true
	delta := bytes - l.bytes
	key := c.key(kLeases, l.id)
	s := l.sess
	var used *int64
	if l.usedKnown {
		u := l.used
		used = &u
	}
	st.submit(&wop{
		grant: grow,
		keys:  []string{key},
		cmps:  []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", l.rev)},
		build: func(idx int) []clientv3.Op {
			val, _ := json.Marshal(leaseRecord{Session: s.id, Component: l.component, Bytes: bytes,
				Priority: l.priority, Preemptible: l.preemptible, GrantedAt: l.grantedAt, Index: idx, RequestID: l.requestID,
				Token: l.token, Used: used})
			return []clientv3.Op{clientv3.OpPut(key, string(val), clientv3.WithLease(s.etcdID))}
		},
		done: func(rev int64, _ int, err error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.st != st {
				finish(memResult{err: ErrNotLeader})
				return
			}
			l.resizing = false
			gone := st.leases[l.id] != l
			if grow && (err != nil || gone) {
				st.used -= delta // the growth never happened, or its lease went
			}
			switch {
			case err == nil && gone, errors.Is(err, errLeaseGone), errors.Is(err, errCompare):
				err = &NotFoundError{Kind: "lease", ID: l.id}
			}
			if err != nil {
				c.updateGaugesLocked()
				c.scheduleLocked(st)
				finish(memResult{err: err})
				return
			}
			if !grow {
				st.used += delta
			}
			l.bytes, l.rev = bytes, rev
			if delta != 0 { // not a report of the usage alone
				c.m.resizes.Inc()
				msg := ""
				if !grow && c.keptLocked(st, l) {
					msg = "shrunk to fit the lowered budget: the revocation notice is withdrawn"
				}
				c.emit(Event{Type: EventMemoryResized, SessionID: s.id, Owner: s.owner, Component: l.component, LeaseID: l.id,
					Bytes: bytes, Priority: l.priority, FencingToken: l.token, Message: msg})
			}
			c.updateGaugesLocked()
			c.scheduleLocked(st)
			info := c.leaseInfo(l)
			info.Over = c.overLocked(st, l)
			finish(memResult{lease: info})
		},
	})
}
