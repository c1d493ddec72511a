package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tradsys/mesh/pkg/config"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The memory budget lives in etcd (kBudget), so every replica grants from
// the same one: the first replica stores its --memory-budget; a replica
// started with another value uses the stored one (and says so once);
// SetBudget changes it at run time.

type budgetRecord struct {
	Bytes int64     `json:"bytes"`
	SetBy string    `json:"set_by,omitempty"`
	SetAt time.Time `json:"set_at"`
}

func parseBudget(v []byte) (int64, error) {
	var r budgetRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return 0, err
	}
	if r.Bytes <= 0 {
		return 0, fmt.Errorf("stored budget %d is not positive", r.Bytes)
	}
	return r.Bytes, nil
}

// ensureBudget stores this replica's flag as the budget unless one is
// stored, and returns the stored one.
func (c *Coordinator) ensureBudget(ctx context.Context) (int64, error) {
	key := c.key(kBudget)
	val, _ := json.Marshal(budgetRecord{Bytes: c.cfg.Budget, SetBy: "--memory-budget of " + c.cfg.Advertise, SetAt: time.Now()})
	resp, err := c.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(val))).Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return 0, err
	}
	if resp.Succeeded {
		c.log.Info("stored this replica's memory budget as the mesh's budget", zap.Int64("budget_bytes", c.cfg.Budget))
		c.seenBudget.Store(c.cfg.Budget)
		return c.cfg.Budget, nil
	}
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	if len(kvs) == 0 {
		return 0, errors.New("stored budget vanished while being read")
	}
	b, err := parseBudget(kvs[0].Value)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", key, err)
	}
	c.seenBudget.Store(b)
	if b != c.cfg.Budget && c.budgetDiffLogged.CompareAndSwap(false, true) {
		c.log.Warn("the stored memory budget applies, not this replica's --memory-budget (change it with tradsys budget set)",
			zap.Int64("stored_bytes", b), zap.String("stored", config.FormatBytes(b)),
			zap.Int64("flag_bytes", c.cfg.Budget), zap.String("flag", config.FormatBytes(c.cfg.Budget)))
	}
	return b, nil
}

// BudgetChange is what SetBudget did.
type BudgetChange struct {
	Budget, Previous int64
	Used             int64 // leased when the budget took effect
	Over             int64 // how far the leases exceed the budget, or 0
	// Preempted are the leases asked to go (revocation notices sent).
	Preempted []Lease
}

// SetBudget stores a new budget, by is who asked (for the record and the
// event). A budget below what is leased preempts preemptible leases, least
// important first, until the rest would fit; nothing is granted meanwhile.
func (c *Coordinator) SetBudget(ctx context.Context, bytes int64, by string) (BudgetChange, error) {
	if bytes <= 0 {
		return BudgetChange{}, &InvalidError{Field: "budget_bytes", Reason: fmt.Sprintf("must be more than zero, got %d", bytes)}
	}
	c.mu.Lock()
	st, err := c.current()
	if err != nil {
		c.mu.Unlock()
		return BudgetChange{}, err
	}
	type result struct {
		ch  BudgetChange
		err error
	}
	done := make(chan result, 1)
	// A lower budget binds decisions from now on: a grant decided before
	// the write commits is committed after it, so it must fit the new one.
	// A higher one frees bytes only once it is committed.
	previous := st.budget
	if bytes < st.budget {
		st.budget = bytes
	}
	key := c.key(kBudget)
	val, _ := json.Marshal(budgetRecord{Bytes: bytes, SetBy: by, SetAt: time.Now()})
	st.submit(&wop{
		// Fenced by the memory epoch like a grant, and alone in its
		// transaction, so every grant is committed under one budget.
		grant: true, alone: true,
		keys:  []string{key},
		build: static(clientv3.OpPut(key, string(val))),
		done: func(_ int64, _ int, err error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.st != st {
				done <- result{err: ErrNotLeader}
				return
			}
			if err != nil {
				if st.budget == bytes {
					st.budget = previous
				}
				done <- result{err: err}
				return
			}
			done <- result{ch: c.applyBudgetLocked(st, bytes, previous, by)}
		},
	})
	c.mu.Unlock()
	select {
	case r := <-done:
		return r.ch, r.err
	case <-ctx.Done():
		return BudgetChange{}, ctx.Err()
	}
}

// applyBudgetLocked puts a committed budget in force.
func (c *Coordinator) applyBudgetLocked(st *state, bytes, previous int64, by string) BudgetChange {
	ch := BudgetChange{Budget: bytes, Previous: previous, Used: st.used, Over: max(st.used-bytes, 0)}
	st.budget = bytes
	c.seenBudget.Store(bytes)
	c.log.Info("memory budget changed", zap.Int64("budget_bytes", bytes), zap.Int64("previous_bytes", ch.Previous),
		zap.Int64("used_bytes", st.used), zap.String("by", by))
	c.emit(Event{Type: EventBudgetChanged, Bytes: bytes, Owner: by,
		Message: fmt.Sprintf("budget %s (was %s) set by %q; %s leased", config.FormatBytes(bytes),
			config.FormatBytes(ch.Previous), by, config.FormatBytes(st.used))})
	for _, l := range c.fitBudgetLocked(st, "the memory budget was lowered to "+config.FormatBytes(bytes)) {
		ch.Preempted = append(ch.Preempted, c.leaseInfo(l))
	}
	c.updateGaugesLocked()
	c.scheduleLocked(st)
	return ch
}

// fitBudgetLocked asks preemptible leases to go, largest priority number
// first (then newest first), until what stays fits the budget, counting
// leases already on their way out. When all preemptible leases would not be
// enough, all of them go: the rest is on the holders of the others.
func (c *Coordinator) fitBudgetLocked(st *state, why string) []*lease {
	over := st.used - st.budget
	var candidates []*lease
	for _, l := range st.leases {
		switch {
		case l.releasing || !l.revokeAt.IsZero():
			over -= l.bytes
		case !l.pending && l.preemptible:
			candidates = append(candidates, l)
		}
	}
	if over <= 0 {
		return nil
	}
	preemptionOrder(candidates)
	var victims []*lease
	for _, l := range candidates {
		if over <= 0 {
			break
		}
		victims = append(victims, l)
		over -= l.bytes
	}
	c.revokeLocked(st, victims, why+" (shrinking the lease until the leases fit keeps it)")
	for _, l := range victims {
		l.overBudget = true
	}
	return victims
}

// overLocked is how far the leases exceed the budget for l, revoked for a
// lowered budget, to be kept: the excess not counting the other leases on
// their way out (released, or under a notice), at least 0; -1 if l is not
// under such a notice (no shrink keeps it).
func (c *Coordinator) overLocked(st *state, l *lease) int64 {
	if !l.overBudget || l.revokeAt.IsZero() || l.releasing {
		return -1
	}
	over := st.used - st.budget
	for _, o := range st.leases {
		if o != l && (o.releasing || !o.revokeAt.IsZero()) {
			over -= o.bytes
		}
	}
	return max(over, 0)
}

// keptLocked withdraws the revocation notice of l, revoked for a lowered
// budget, once a shrink of it made what stays fit: the leases not on their
// way out fit the budget. It says whether it did.
func (c *Coordinator) keptLocked(st *state, l *lease) bool {
	if c.overLocked(st, l) != 0 {
		return false
	}
	l.revokeAt, l.overBudget = time.Time{}, false
	if l.revokeTimer != nil {
		l.revokeTimer.Stop()
		l.revokeTimer = nil
	}
	return true
}
