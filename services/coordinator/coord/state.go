package coord

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strings"
	"time"

	"github.com/google/btree"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// state is the leader's in-memory view, rebuilt from etcd at each term.
type state struct {
	ctx        context.Context
	w          *writer
	epochRev   int64
	sessions   map[string]*session
	leases     map[string]*lease
	leaseOrder *btree.BTreeG[string] // lease ids in order, for paging lists in O(page)
	used       int64
	budget     int64 // the stored budget (kBudget), not this replica's flag
	memQ       []*memWaiter
	arrivals   uint64
	locks      map[string]*lockState
	components map[string]*Component

	sessionCount  int            // sessions, with those being created
	ownerSessions map[string]int // the same per owner
	ownerWaiters  map[string]int // memory and lock requests waiting per owner
}

type sessionRecord struct {
	Owner      string        `json:"owner"`
	TTL        time.Duration `json:"ttl"`
	SecretHash string        `json:"secret_sha256,omitempty"`
}

type leaseRecord struct {
	Session     string    `json:"session"`
	Component   string    `json:"component"`
	Bytes       int64     `json:"bytes"`
	Priority    int32     `json:"priority"`
	Preemptible bool      `json:"preemptible"`
	GrantedAt   time.Time `json:"granted_at"`
	Index       int       `json:"idx"`
	RequestID   string    `json:"request_id,omitempty"`
	// Token is the fencing token the lease was granted with, written when
	// a resize rewrites the record (its revision no longer makes the token).
	Token uint64 `json:"token,omitempty"`
	// Used is what the holder last reported it uses (ResizeMemory's
	// used_bytes), written with the record so it survives a failover.
	Used *int64 `json:"used,omitempty"`
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
		sessions: map[string]*session{}, leases: map[string]*lease{}, leaseOrder: btree.NewOrderedG[string](32),
		ownerSessions: map[string]int{}, ownerWaiters: map[string]int{},
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
			st.sessions[id] = newSession(id, eid, r.Owner, r.TTL, r.SecretHash)
			st.countSession(r.Owner, 1)
		case strings.HasPrefix(k, kLeases):
			leaseKVs = append(leaseKVs, kv)
		case k == kEpoch:
			st.epochRev = kv.ModRevision
		case k == kBudget:
			if b, err := parseBudget(kv.Value); err == nil {
				st.budget = b
			}
		case strings.HasPrefix(k, kLocks):
			lockKVs = append(lockKVs, kv)
		case strings.HasPrefix(k, kComponents):
			var comp Component
			if json.Unmarshal(kv.Value, &comp) == nil {
				st.components[comp.Name] = &comp
			}
		}
	}
	if st.budget <= 0 {
		st.budget = c.cfg.Budget
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
			gone: make(chan struct{}), requestID: r.RequestID,
		}
		if r.Token != 0 {
			l.token = r.Token
		}
		if r.Used != nil {
			l.used, l.usedKnown = *r.Used, true
		}
		st.leases[l.id], s.leases[l.id] = l, l
		st.leaseOrder.ReplaceOrInsert(l.id)
		if l.requestID != "" {
			s.byRequest[l.requestID] = l
		}
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
	c.m.budget.WithLabelValues().Set(float64(st.budget))
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

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Page asks for one page of a list: at most Size entries (0: the most a
// page holds) after the entry named by Token.
type Page struct {
	Token string
	Size  int
}

// MaxPage is the most entries a list page holds.
const MaxPage = 10000

func (p Page) size() int {
	if p.Size <= 0 || p.Size > MaxPage {
		return MaxPage
	}
	return p.Size
}

// pageOf cuts a page out of sorted keys, with the token of the next.
func pageOf(keys []string, p Page) (page []string, next string) {
	i := sort.SearchStrings(keys, p.Token)
	if i < len(keys) && keys[i] == p.Token {
		i++
	}
	page = keys[i:min(len(keys), i+p.size())]
	if i+len(page) < len(keys) {
		next = page[len(page)-1]
	}
	return page, next
}
