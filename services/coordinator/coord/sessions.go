package coord

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

type session struct {
	id      string
	etcdID  clientv3.LeaseID
	owner   string
	ttl     time.Duration
	leases  map[string]*lease
	held    map[string]*lockState
	waits   map[*lockWaiter]struct{}
	memWait map[*memWaiter]struct{}
	// byRequest and waitByRequest index the session's leases and memory
	// waiters by request id: a retried AcquireMemory finds its first try.
	byRequest     map[string]*lease
	waitByRequest map[string]*memWaiter
	closing       bool // CloseSession is revoking it
}

func sessionID(id clientv3.LeaseID) string { return strconv.FormatInt(int64(id), 16) }

func parseSessionID(s string) (clientv3.LeaseID, bool) {
	n, err := strconv.ParseInt(s, 16, 64)
	return clientv3.LeaseID(n), err == nil && n > 0
}

func newSession(id string, eid clientv3.LeaseID, owner string, ttl time.Duration) *session {
	return &session{id: id, etcdID: eid, owner: owner, ttl: ttl,
		leases: map[string]*lease{}, held: map[string]*lockState{},
		waits: map[*lockWaiter]struct{}{}, memWait: map[*memWaiter]struct{}{},
		byRequest: map[string]*lease{}, waitByRequest: map[string]*memWaiter{}}
}

// CreateSession opens a session on a new etcd lease of the given TTL.
func (c *Coordinator) CreateSession(ctx context.Context, owner string, ttl time.Duration) (Session, error) {
	if ttl <= 0 {
		ttl = c.cfg.DefaultSessionTTL
	}
	c.mu.Lock()
	_, err := c.current()
	c.mu.Unlock()
	if err != nil {
		return Session{}, err
	}
	secs := int64((ttl + time.Second - 1) / time.Second)
	g, err := c.cli.Grant(ctx, secs)
	if err != nil {
		return Session{}, err
	}
	// etcd may raise a TTL to its minimum; report what the session really has.
	ttl = time.Duration(g.TTL) * time.Second
	id := sessionID(g.ID)
	val, _ := json.Marshal(sessionRecord{Owner: owner, TTL: ttl})
	done := make(chan error, 1)

	c.mu.Lock()
	st, err := c.current()
	if err != nil {
		c.mu.Unlock()
		_, _ = c.cli.Revoke(context.WithoutCancel(ctx), g.ID)
		return Session{}, err
	}
	st.submit(&wop{
		build: static(clientv3.OpPut(c.key(kSessions, id), string(val), clientv3.WithLease(g.ID))),
		keys:  []string{c.key(kSessions, id)},
		done: func(_ int64, _ int, err error) {
			if err == nil {
				c.mu.Lock()
				if c.st == st {
					st.sessions[id] = newSession(id, g.ID, owner, ttl)
					c.updateGaugesLocked()
				}
				c.mu.Unlock()
			}
			done <- err
		},
	})
	c.mu.Unlock()
	if err := <-done; err != nil {
		_, _ = c.cli.Revoke(context.WithoutCancel(ctx), g.ID)
		if errors.Is(err, errLeaseGone) {
			return Session{}, ErrNotLeader
		}
		return Session{}, err
	}
	c.emit(Event{Type: EventSessionCreated, SessionID: id, Owner: owner})
	return Session{ID: id, Owner: owner, TTL: ttl}, nil
}

func (c *Coordinator) sessionLocked(id string) (*state, *session, error) {
	st, err := c.current()
	if err != nil {
		return nil, nil, err
	}
	s := st.sessions[id]
	if s == nil {
		return nil, nil, &NotFoundError{Kind: "session", ID: id}
	}
	return st, s, nil
}

// KeepAlive renews a session's etcd lease and returns its TTL. It needs no
// leader: any replica renews the lease in etcd directly, so sessions live
// through a leader's failover (which takes about the election TTL).
func (c *Coordinator) KeepAlive(ctx context.Context, id string) (time.Duration, error) {
	eid, err := c.sessionLease(ctx, id)
	if err != nil {
		return 0, err
	}
	resp, err := c.cli.KeepAliveOnce(ctx, eid)
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		c.known.Delete(id)
		return 0, &NotFoundError{Kind: "session", ID: id}
	}
	if err != nil {
		return 0, err
	}
	return time.Duration(resp.TTL) * time.Second, nil
}

// sessionLease finds the etcd lease of a session from its record in etcd
// (not the leader's view: a follower or a leader still loading answers
// too). Only a session's lease can be renewed this way, never another etcd
// lease such as a leader's election lease.
func (c *Coordinator) sessionLease(ctx context.Context, id string) (clientv3.LeaseID, error) {
	if eid, ok := c.known.Load(id); ok {
		return eid.(clientv3.LeaseID), nil
	}
	resp, err := c.cli.Get(ctx, c.key(kSessions, id))
	if err != nil {
		return 0, err
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].Lease == 0 {
		return 0, &NotFoundError{Kind: "session", ID: id}
	}
	eid := clientv3.LeaseID(resp.Kvs[0].Lease)
	c.known.Store(id, eid)
	return eid, nil
}

// CloseSession revokes the session's etcd lease, which deletes its memory
// leases and locks in the same etcd revision, and hands its locks on.
func (c *Coordinator) CloseSession(ctx context.Context, id string) (CloseResult, error) {
	c.mu.Lock()
	_, s, err := c.sessionLocked(id)
	var res CloseResult
	if err == nil {
		// Count now: the watch may apply the revocation before we relock.
		res = CloseResult{Leases: len(s.leases), Locks: len(s.held)}
		s.closing = true
	}
	c.mu.Unlock()
	if err != nil {
		return CloseResult{}, err
	}
	_, err = c.cli.Revoke(ctx, s.etcdID)
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		c.mu.Lock()
		s.closing = false
		c.mu.Unlock()
		return CloseResult{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := c.current()
	if err != nil {
		return CloseResult{}, err
	}
	if st.sessions[id] == s {
		c.endSessionLocked(st, s, "closed")
	}
	return res, nil
}

// endSessionLocked forgets a session whose etcd lease is gone (its keys went
// with it), fails its waiters and passes its locks and memory on.
func (c *Coordinator) endSessionLocked(st *state, s *session, why string) {
	delete(st.sessions, s.id)
	c.known.Delete(s.id)
	for w := range s.memWait {
		c.removeMemWaiterLocked(st, w)
		w.finish(memResult{err: &NotFoundError{Kind: "session", ID: s.id}})
	}
	for w := range s.waits {
		c.removeLockWaiterLocked(st, w)
		w.finish(lockResult{err: &NotFoundError{Kind: "session", ID: s.id}})
	}
	for _, l := range s.leases {
		if !l.pending {
			c.removeLeaseLocked(st, l, EventMemoryReleased, "session "+why)
		}
	}
	for _, ls := range s.held {
		if ls.holder != nil && ls.holder.sess == s && !ls.holder.pending {
			c.dropHolderLocked(st, ls, "session "+why)
		}
	}
	c.emit(Event{Type: EventSessionEnded, SessionID: s.id, Owner: s.owner, Message: why})
	c.componentsEndedLocked(st, s, why)
	c.scheduleLocked(st)
	c.updateGaugesLocked()
}
