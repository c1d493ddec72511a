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
//
// One concern per file, as etcd's v3rpc: coordinator.go (the replica, its
// configuration and read-only answers), term.go (campaign, lead, abandon),
// state.go (the leader's view, the etcd layout and its loading), writer.go
// (fenced group commit), sessions.go, memory.go, locks.go, registry.go,
// events.go (the watch broker), errors.go, metrics.go.
package coord

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Config configures a coordinator replica.
type Config struct {
	// Prefix is the etcd key prefix for all state; default "/tradsys/".
	Prefix string
	// Budget is the global memory budget in bytes the first replica stores
	// in etcd; once stored, the stored one applies (see budget.go).
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
	// PipelineDepth bounds the leader's etcd transactions in flight at
	// once; default 4. 1 sends one at a time.
	PipelineDepth int
	// PipelineMin is how many decisions must be waiting to send another
	// transaction while one is in flight (fewer wait for it to land);
	// default 16.
	PipelineMin int
	// MaxTxnOps and MaxRequestBytes are etcd's own limits (its
	// --max-txn-ops and --max-request-bytes; defaults 128 and 1.5 MiB): the
	// writer never sends a transaction above them, and a record that could
	// not fit is refused before it reaches etcd.
	MaxTxnOps       int
	MaxRequestBytes int
	// Limits bound what callers can make the leader hold.
	Limits Limits
	// CompactRetain is how many etcd revisions the leader keeps: every
	// CompactRetain revisions it compacts etcd's history to the last
	// CompactRetain (never past what its own watch has read), so that
	// steady churn (every grant writes a fresh key) keeps etcd's memory and
	// restart time flat. A revision is a whole batch (up to MaxTxnOps
	// keys), so the default is 1000: with 10000, 200,000 churned pairs
	// were about 26,000 revisions, one compaction, and RSS grew to 200 MB
	// (docs/benchmarks.md, cmd/churnbench). Zero: 1000; negative: never
	// (etcd's own --auto-compaction applies).
	CompactRetain int64
	// DefaultSessionTTL applies when a session asks for none; default 10s.
	DefaultSessionTTL time.Duration
}

// etcd's defaults for the limits of one request.
const (
	DefaultMaxTxnOps       = 128
	DefaultMaxRequestBytes = 3 << 19 // 1.5 MiB
)

// maxRecordBytes bounds one record (a registry entry, say): an eighth of a
// request, so a record always fits in a transaction with others.
func (c *Coordinator) maxRecordBytes() int { return c.cfg.MaxRequestBytes / 8 }

// Coordinator is one coordinator replica.
type Coordinator struct {
	cfg    Config
	cli    *clientv3.Client
	log    *zap.Logger
	m      *Metrics
	events broker

	leaderAddr atomic.Value // string
	leading    atomic.Bool  // st != nil

	// known caches session id -> etcd lease for KeepAlive, which any
	// replica serves from etcd (a session's lease never changes).
	known sync.Map

	// seenBudget is the stored budget as this replica last read it;
	// budgetDiffLogged makes a flag that differs from it logged once.
	seenBudget       atomic.Int64
	budgetDiffLogged atomic.Bool

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
	if cfg.PipelineDepth <= 0 {
		cfg.PipelineDepth = 4
	}
	if cfg.PipelineMin <= 0 {
		cfg.PipelineMin = 16
	}
	if cfg.MaxTxnOps <= 0 {
		cfg.MaxTxnOps = DefaultMaxTxnOps
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	cfg.Limits = cfg.Limits.withDefaults()
	if cfg.CompactRetain == 0 {
		cfg.CompactRetain = 1000
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

// Budget is the memory budget in force: the stored one while this replica
// leads, else the one it last saw stored, else its flag's.
func (c *Coordinator) Budget() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st != nil {
		return c.st.budget
	}
	if b := c.seenBudget.Load(); b > 0 {
		return b
	}
	return c.cfg.Budget
}

func (c *Coordinator) key(parts ...string) string { return c.cfg.Prefix + strings.Join(parts, "") }

const (
	kSessions   = "sessions/"
	kLeases     = "mem/leases/"
	kEpoch      = "mem/epoch"
	kBudget     = "mem/budget"
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

// Status summarises the coordinator.
func (c *Coordinator) Status() (Status, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := c.current()
	if err != nil {
		return Status{}, err
	}
	s := Status{BudgetBytes: st.budget, UsedBytes: st.used, Sessions: len(st.sessions), Leases: len(st.leases),
		MemoryWaiters: len(st.memQ), Leader: c.Leader(), Replica: c.cfg.Advertise}
	for _, ls := range st.locks {
		if ls.holder != nil {
			s.Locks++
		}
		s.LockWaiters += len(ls.waiters)
	}
	return s, nil
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

// Limits bound what callers can make the leader hold; a request past one
// is refused with LimitError (RESOURCE_EXHAUSTED naming the limit). An
// owner is a session's owner: with mTLS, the certificate's identity.
type Limits struct {
	Sessions         int // sessions in total; default 10000
	SessionsPerOwner int // default 1000
	WaitersPerOwner  int // memory and lock requests waiting, per owner; default 1000
}

func (l Limits) withDefaults() Limits {
	if l.Sessions <= 0 {
		l.Sessions = 10000
	}
	if l.SessionsPerOwner <= 0 {
		l.SessionsPerOwner = 1000
	}
	if l.WaitersPerOwner <= 0 {
		l.WaitersPerOwner = 1000
	}
	return l
}

// sessionRoomLocked refuses a new session of owner past the limits.
func (c *Coordinator) sessionRoomLocked(st *state, owner string) error {
	if st.sessionCount >= c.cfg.Limits.Sessions {
		return &LimitError{Limit: "max-sessions", Value: c.cfg.Limits.Sessions}
	}
	if st.ownerSessions[owner] >= c.cfg.Limits.SessionsPerOwner {
		return &LimitError{Limit: "max-sessions-per-owner", Value: c.cfg.Limits.SessionsPerOwner, Owner: owner}
	}
	return nil
}

// waiterRoomLocked refuses one more waiting request of owner past the limit.
func (c *Coordinator) waiterRoomLocked(st *state, owner string) error {
	if st.ownerWaiters[owner] >= c.cfg.Limits.WaitersPerOwner {
		return &LimitError{Limit: "max-waiters-per-owner", Value: c.cfg.Limits.WaitersPerOwner, Owner: owner}
	}
	return nil
}

// countSession and countWaiter keep the per-owner counts (delta +1 or -1).
func (st *state) countSession(owner string, delta int) {
	st.sessionCount += delta
	if st.ownerSessions[owner] += delta; st.ownerSessions[owner] <= 0 {
		delete(st.ownerSessions, owner)
	}
}

func (st *state) countWaiter(owner string, delta int) {
	if st.ownerWaiters[owner] += delta; st.ownerWaiters[owner] <= 0 {
		delete(st.ownerWaiters, owner)
	}
}
