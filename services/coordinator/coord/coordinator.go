// Package coord is the coordinator's domain: sessions, memory leases, lock
// leases and the component registry, with all state in etcd under one key
// prefix. It has no gRPC types; package server translates.
//
// How it stays correct with several replicas: replicas campaign in an etcd
// election; the leader loads the state from etcd, decides in memory (queues,
// priorities, deadlock detection), and commits every decision with an etcd
// transaction fenced by its election key and, for grants, by the memory
// epoch (see writer). Deletions etcd makes on its own (a session's lease
// expiring takes its memory leases and locks with it) reach the leader
// through a watch. A replica that is not the leader holds no state; the gRPC
// layer forwards calls to the leader.
package coord

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

// Config configures a coordinator replica.
type Config struct {
	// Prefix is the etcd key prefix for all state; default "/tradsys/".
	Prefix string
	// Budget is the global memory budget in bytes.
	Budget int64
	// PreemptGrace is how long a preempted holder has to release.
	PreemptGrace time.Duration
	// LockRanks gives ranks to lock names.
	LockRanks map[string]int32
	// Advertise is this replica's gRPC address, where followers forward.
	Advertise string
	// ElectionTTL is the leader's etcd session TTL in seconds; default 5.
	ElectionTTL int
	// MaxBatch bounds decisions per etcd transaction; default 128.
	MaxBatch int
	// DefaultSessionTTL applies when a session asks for none; default 10s.
	DefaultSessionTTL time.Duration
}

// Coordinator is one coordinator replica.
type Coordinator struct {
	cfg    Config
	cli    *clientv3.Client
	log    *zap.Logger
	m      *Metrics
	events broker

	leaderAddr atomic.Value // string
	leading    atomic.Bool  // st != nil

	mu sync.Mutex
	st *state // non-nil while this replica leads and has loaded the state
}

// New returns a replica; Run makes it take part.
func New(cli *clientv3.Client, cfg Config, log *zap.Logger, reg prometheus.Registerer) *Coordinator {
	if cfg.Prefix == "" {
		cfg.Prefix = "/tradsys/"
	}
	if !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	if cfg.ElectionTTL <= 0 {
		cfg.ElectionTTL = 5
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 128
	}
	if cfg.DefaultSessionTTL <= 0 {
		cfg.DefaultSessionTTL = 10 * time.Second
	}
	if cfg.PreemptGrace <= 0 {
		cfg.PreemptGrace = 5 * time.Second
	}
	if log == nil {
		log = zap.NewNop()
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	c := &Coordinator{cfg: cfg, cli: cli, log: log}
	c.m = newMetrics(reg, c.lockCounts)
	c.leaderAddr.Store("")
	c.m.budget.WithLabelValues().Set(float64(cfg.Budget))
	return c
}

// Budget is the configured memory budget.
func (c *Coordinator) Budget() int64 { return c.cfg.Budget }

func (c *Coordinator) key(parts ...string) string { return c.cfg.Prefix + strings.Join(parts, "") }

const (
	kSessions   = "sessions/"
	kLeases     = "mem/leases/"
	kEpoch      = "mem/epoch"
	kLocks      = "locks/"
	kComponents = "components/"
	kElection   = "election/"
)

// IsLeader reports whether this replica leads and has its state loaded.
// It is read on every call (to decide whether to forward), so it is an
// atomic rather than a look under the coordinator's mutex.
func (c *Coordinator) IsLeader() bool { return c.leading.Load() }

// Leader is the advertised address of the current leader, or "".
func (c *Coordinator) Leader() string { return c.leaderAddr.Load().(string) }

// Subscribe returns a feed of events; buffer bounds how far it may lag.
func (c *Coordinator) Subscribe(f EventFilter, buffer int) *Subscription {
	return c.events.subscribe(f, buffer)
}

func (c *Coordinator) emit(e Event) { c.events.publish(e) }

// CloseWatchers ends every event subscription, so Watch streams finish and
// a graceful shutdown does not wait for them.
func (c *Coordinator) CloseWatchers() { c.events.closeAll() }

// Run campaigns for leadership and leads when elected, until ctx ends.
func (c *Coordinator) Run(ctx context.Context) error {
	go c.observeLeader(ctx)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		sess, err := concurrency.NewSession(c.cli, concurrency.WithTTL(c.cfg.ElectionTTL), concurrency.WithContext(ctx))
		if err != nil {
			c.log.Warn("cannot open election session; retrying", zap.Error(err), zap.Duration("backoff", backoff))
			sleep(ctx, backoff)
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		el := concurrency.NewElection(sess, c.key(kElection))
		if err := el.Campaign(ctx, c.cfg.Advertise); err != nil {
			sess.Close()
			if ctx.Err() == nil {
				c.log.Warn("campaign failed; retrying", zap.Error(err))
				sleep(ctx, backoff)
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
	st, rev, err := c.load(tctx)
	if err != nil {
		return fmt.Errorf("load state: %w", err)
	}
	st.ctx = tctx
	st.w = &writer{
		cli: c.cli, log: c.log, m: c.m,
		leaderOK: clientv3.Compare(clientv3.CreateRevision(el.Key()), "=", el.Rev()),
		epochKey: c.key(kEpoch), epochRev: st.epochRev, maxBatch: c.cfg.MaxBatch,
		notify: make(chan struct{}, 1),
		onLost: func(err error) { cancel(err) },
	}
	go st.w.run(tctx)
	watch := c.cli.Watch(clientv3.WithRequireLeader(tctx), c.cfg.Prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithFilterPut())

	c.mu.Lock()
	c.st = st
	c.leading.Store(true)
	c.updateGaugesLocked()
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

// state is the leader's in-memory view, rebuilt from etcd at each term.
type state struct {
	ctx        context.Context
	w          *writer
	epochRev   int64
	sessions   map[string]*session
	leases     map[string]*lease
	used       int64
	memQ       []*memWaiter
	arrivals   uint64
	locks      map[string]*lockState
	components map[string]*Component
}

type session struct {
	id      string
	etcdID  clientv3.LeaseID
	owner   string
	ttl     time.Duration
	leases  map[string]*lease
	held    map[string]*lockState
	waits   map[*lockWaiter]struct{}
	memWait map[*memWaiter]struct{}
	closing bool // CloseSession is revoking it
}

func sessionID(id clientv3.LeaseID) string { return strconv.FormatInt(int64(id), 16) }

func parseSessionID(s string) (clientv3.LeaseID, bool) {
	n, err := strconv.ParseInt(s, 16, 64)
	return clientv3.LeaseID(n), err == nil && n > 0
}

type sessionRecord struct {
	Owner string        `json:"owner"`
	TTL   time.Duration `json:"ttl"`
}

type leaseRecord struct {
	Session     string    `json:"session"`
	Component   string    `json:"component"`
	Bytes       int64     `json:"bytes"`
	Priority    int32     `json:"priority"`
	Preemptible bool      `json:"preemptible"`
	GrantedAt   time.Time `json:"granted_at"`
	Index       int       `json:"idx"`
}

type lockRecord struct {
	Session    string    `json:"session"`
	Rank       int32     `json:"rank"`
	AcquiredAt time.Time `json:"acquired_at"`
	Index      int       `json:"idx"`
}

// fencingToken makes a token from the etcd revision of the commit and the
// decision's place in its batch: unique, and growing with every grant,
// across leaders, because etcd revisions only grow.
func fencingToken(rev int64, idx int) uint64 { return uint64(rev)<<16 | uint64(idx) }

func (c *Coordinator) load(ctx context.Context) (*state, int64, error) {
	resp, err := c.cli.Get(ctx, c.cfg.Prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, err
	}
	st := &state{
		sessions: map[string]*session{}, leases: map[string]*lease{},
		locks: map[string]*lockState{}, components: map[string]*Component{},
	}
	var leaseKVs, lockKVs []*mvccpb.KeyValue
	for _, kv := range resp.Kvs {
		k := strings.TrimPrefix(string(kv.Key), c.cfg.Prefix)
		switch {
		case strings.HasPrefix(k, kSessions):
			var r sessionRecord
			if json.Unmarshal(kv.Value, &r) != nil {
				continue
			}
			id := strings.TrimPrefix(k, kSessions)
			eid, ok := parseSessionID(id)
			if !ok {
				continue
			}
			st.sessions[id] = newSession(id, eid, r.Owner, r.TTL)
		case strings.HasPrefix(k, kLeases):
			leaseKVs = append(leaseKVs, kv)
		case k == kEpoch:
			st.epochRev = kv.ModRevision
		case strings.HasPrefix(k, kLocks):
			lockKVs = append(lockKVs, kv)
		case strings.HasPrefix(k, kComponents):
			var comp Component
			if json.Unmarshal(kv.Value, &comp) == nil {
				st.components[comp.Name] = &comp
			}
		}
	}
	for _, kv := range leaseKVs {
		var r leaseRecord
		s := (*session)(nil)
		if json.Unmarshal(kv.Value, &r) == nil {
			s = st.sessions[r.Session]
		}
		if s == nil {
			continue
		}
		l := &lease{
			id: strings.TrimPrefix(string(kv.Key), c.key(kLeases)), sess: s, component: r.Component,
			bytes: r.Bytes, priority: r.Priority, preemptible: r.Preemptible,
			token: fencingToken(kv.ModRevision, r.Index), rev: kv.ModRevision, grantedAt: r.GrantedAt,
			gone: make(chan struct{}),
		}
		st.leases[l.id], s.leases[l.id] = l, l
		st.used += l.bytes
	}
	for _, kv := range lockKVs {
		var r lockRecord
		s := (*session)(nil)
		if json.Unmarshal(kv.Value, &r) == nil {
			s = st.sessions[r.Session]
		}
		if s == nil {
			continue
		}
		name := strings.TrimPrefix(string(kv.Key), c.key(kLocks))
		ls := st.lock(name)
		ls.holder = &lockHolder{sess: s, token: fencingToken(kv.ModRevision, r.Index), rev: kv.ModRevision, rank: r.Rank, acquiredAt: r.AcquiredAt}
		s.held[name] = ls
	}
	return st, resp.Header.Revision, nil
}

func newSession(id string, eid clientv3.LeaseID, owner string, ttl time.Duration) *session {
	return &session{id: id, etcdID: eid, owner: owner, ttl: ttl,
		leases: map[string]*lease{}, held: map[string]*lockState{},
		waits: map[*lockWaiter]struct{}{}, memWait: map[*memWaiter]struct{}{}}
}

// onDeleteLocked applies a deletion etcd made (normally a session's lease
// expiring). Deletions this leader made itself were applied already and
// find nothing; an entry newer than the deletion is a later grant and stays.
func (c *Coordinator) onDeleteLocked(st *state, key string, rev int64) {
	k := strings.TrimPrefix(key, c.cfg.Prefix)
	switch {
	case strings.HasPrefix(k, kSessions):
		if s := st.sessions[strings.TrimPrefix(k, kSessions)]; s != nil && !s.closing {
			c.endSessionLocked(st, s, "expired")
		}
	case strings.HasPrefix(k, kLeases):
		// A lease being released is settled by its own commit's callback,
		// which knows whether it was a release or a forced one.
		if l := st.leases[strings.TrimPrefix(k, kLeases)]; l != nil && !l.pending && !l.releasing && l.rev < rev {
			c.removeLeaseLocked(st, l, EventMemoryReleased, "deleted in etcd")
			c.scheduleLocked(st)
		}
	case strings.HasPrefix(k, kLocks):
		name := strings.TrimPrefix(k, kLocks)
		if ls := st.locks[name]; ls != nil && ls.holder != nil && !ls.holder.pending && ls.holder.rev < rev {
			c.dropHolderLocked(st, ls, "deleted in etcd")
		}
	}
}

func (c *Coordinator) current() (*state, error) {
	if c.st == nil {
		return nil, ErrNotLeader
	}
	return c.st, nil
}

func (c *Coordinator) updateGaugesLocked() {
	st := c.st
	if st == nil {
		return
	}
	c.m.used.WithLabelValues().Set(float64(st.used))
	c.m.leases.WithLabelValues().Set(float64(len(st.leases)))
	c.m.sessions.WithLabelValues().Set(float64(len(st.sessions)))
	c.m.memWaiters.Set(float64(len(st.memQ)))
}

// lockCounts counts held locks and waiting requests (for the metrics).
func (c *Coordinator) lockCounts() (held, waiting int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st == nil {
		return 0, 0
	}
	for _, ls := range c.st.locks {
		if ls.holder != nil {
			held++
		}
		waiting += len(ls.waiters)
	}
	return held, waiting
}

// submit queues a decision's writes for the writer.
func (st *state) submit(op *wop) { st.w.submit(op) }

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Status summarises the coordinator.
func (c *Coordinator) Status() (Status, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := c.current()
	if err != nil {
		return Status{}, err
	}
	s := Status{BudgetBytes: c.cfg.Budget, UsedBytes: st.used, Sessions: len(st.sessions), Leases: len(st.leases),
		MemoryWaiters: len(st.memQ), Leader: c.Leader(), Replica: c.cfg.Advertise}
	for _, ls := range st.locks {
		if ls.holder != nil {
			s.Locks++
		}
		s.LockWaiters += len(ls.waiters)
	}
	return s, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Ready reports whether this replica can answer: it leads with its state
// loaded, or another replica leads and calls can be forwarded there.
func (c *Coordinator) Ready() bool {
	if c.IsLeader() {
		return true
	}
	l := c.Leader()
	return l != "" && l != c.cfg.Advertise
}

// Advertise is this replica's advertised address.
func (c *Coordinator) Advertise() string { return c.cfg.Advertise }
