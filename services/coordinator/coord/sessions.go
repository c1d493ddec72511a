package coord

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

type session struct {
	id      string // the public id: the etcd lease id in hex
	secret  string // hex SHA-256 of the session's secret; "" for sessions from before secrets
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
	// proven is the last session id that proved the session: the same id
	// again is compared in constant time instead of hashed again.
	proven string
}

func sessionID(id clientv3.LeaseID) string { return strconv.FormatInt(int64(id), 16) }

func parseSessionID(s string) (clientv3.LeaseID, bool) {
	n, err := strconv.ParseInt(s, 16, 64)
	return clientv3.LeaseID(n), err == nil && n > 0
}

// A session has a public id (its etcd lease id in hex: what lists, events
// and errors show) and a secret of 128 random bits. The session_id a client
// is given is "<public id>.<secret>": a capability, so that knowing or
// guessing the public id is not enough to act for the session. etcd keeps
// only the secret's hash.
func capability(pub, secret string) string { return pub + "." + secret }

// PublicID is the public part of a session id (a public id is its own).
func PublicID(id string) string {
	pub, _, _ := strings.Cut(id, ".")
	return pub
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// proves reports whether the session id given proves the session: it
// carries the secret (compared in constant time).
func proves(id, secretHash string) bool {
	_, secret, _ := strings.Cut(id, ".")
	if secretHash == "" {
		return secret == ""
	}
	return subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(secretHash)) == 1
}

func newSession(id string, eid clientv3.LeaseID, owner string, ttl time.Duration, secretHash string) *session {
	return &session{id: id, etcdID: eid, owner: owner, ttl: ttl, secret: secretHash,
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
	st, err := c.current()
	if err == nil {
		err = c.sessionRoomLocked(st, owner)
	}
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
	secret := newSecret()
	val, _ := json.Marshal(sessionRecord{Owner: owner, TTL: ttl, SecretHash: hashSecret(secret)})
	done := make(chan error, 1)

	c.mu.Lock()
	st, err = c.current()
	if err == nil {
		err = c.sessionRoomLocked(st, owner)
	}
	if err != nil {
		c.mu.Unlock()
		_, _ = c.cli.Revoke(context.WithoutCancel(ctx), g.ID)
		return Session{}, err
	}
	st.countSession(owner, 1) // reserved until the commit settles
	st.submit(&wop{
		build: static(clientv3.OpPut(c.key(kSessions, id), string(val), clientv3.WithLease(g.ID))),
		keys:  []string{c.key(kSessions, id)},
		done: func(_ int64, _ int, err error) {
			c.mu.Lock()
			if c.st == st {
				if err == nil {
					st.sessions[id] = newSession(id, g.ID, owner, ttl, hashSecret(secret))
					c.updateGaugesLocked()
				} else {
					st.countSession(owner, -1)
				}
			}
			c.mu.Unlock()
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
	return Session{ID: capability(id, secret), PublicID: id, Owner: owner, TTL: ttl}, nil
}

// sessionLocked finds the session a session id names, if the id proves it
// (carries its secret) and the caller may act for it (see mayAct).
func (c *Coordinator) sessionLocked(ctx context.Context, id string) (*state, *session, error) {
	st, err := c.current()
	if err != nil {
		return nil, nil, err
	}
	s := st.sessions[PublicID(id)]
	if s == nil {
		return nil, nil, &NotFoundError{Kind: "session", ID: PublicID(id)}
	}
	if s.proven != "" && sameSecret(id, s.proven) {
		// Proved before: only the caller check remains.
		if caller := Caller(ctx); caller != "" && caller != s.owner {
			return nil, nil, &PermissionError{Session: s.id, Owner: s.owner, Caller: caller}
		}
		return st, s, nil
	}
	if err := mayAct(ctx, id, s.id, s.owner, s.secret); err != nil {
		return nil, nil, err
	}
	s.proven = id
	return st, s, nil
}

// sameSecret compares two session ids in time that depends on their
// length only (ids carry the secret).
func sameSecret(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := 0; i < len(a); i++ {
		v |= a[i] ^ b[i]
	}
	return v == 0
}

// mayAct checks a caller acting for a session: the id must carry the
// session's secret, and with mTLS the caller's identity must own it.
func mayAct(ctx context.Context, id, pub, owner, secretHash string) error {
	if !proves(id, secretHash) {
		return &CapabilityError{Session: pub}
	}
	if caller := Caller(ctx); caller != "" && caller != owner {
		return &PermissionError{Session: pub, Owner: owner, Caller: caller}
	}
	return nil
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
		c.known.Delete(PublicID(id))
		return 0, &NotFoundError{Kind: "session", ID: PublicID(id)}
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
	pub := PublicID(id)
	k, ok := c.known.Load(pub)
	if !ok {
		resp, err := c.cli.Get(ctx, c.key(kSessions, pub))
		if err != nil {
			return 0, err
		}
		var r sessionRecord
		if len(resp.Kvs) == 0 || resp.Kvs[0].Lease == 0 || json.Unmarshal(resp.Kvs[0].Value, &r) != nil {
			return 0, &NotFoundError{Kind: "session", ID: pub}
		}
		k = knownSession{lease: clientv3.LeaseID(resp.Kvs[0].Lease), owner: r.Owner, secret: r.SecretHash}
		c.known.Store(pub, k)
	}
	ks := k.(knownSession)
	if err := mayAct(ctx, id, pub, ks.owner, ks.secret); err != nil {
		return 0, err
	}
	return ks.lease, nil
}

// CloseSession revokes the session's etcd lease, which deletes its memory
// leases and locks in the same etcd revision, and hands its locks on.
func (c *Coordinator) CloseSession(ctx context.Context, id string) (CloseResult, error) {
	c.mu.Lock()
	_, s, err := c.sessionLocked(ctx, id)
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
	if st.sessions[s.id] == s {
		c.endSessionLocked(st, s, "closed")
	}
	return res, nil
}

// endSessionLocked forgets a session whose etcd lease is gone (its keys went
// with it), fails its waiters and passes its locks and memory on.
func (c *Coordinator) endSessionLocked(st *state, s *session, why string) {
	delete(st.sessions, s.id)
	st.countSession(s.owner, -1)
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

// knownSession is what KeepAlive needs of a session, cached per replica.
type knownSession struct {
	lease  clientv3.LeaseID
	owner  string
	secret string
}

func newSecret() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type callerKey struct{}

// WithCaller marks ctx with the caller's authenticated identity (the mTLS
// certificate's); the gRPC layer sets it. Without one (TLS off) the
// session id's secret is the only proof.
func WithCaller(ctx context.Context, identity string) context.Context {
	return context.WithValue(ctx, callerKey{}, identity)
}

// Caller is the identity WithCaller put in ctx, or "".
func Caller(ctx context.Context) string {
	id, _ := ctx.Value(callerKey{}).(string)
	return id
}
