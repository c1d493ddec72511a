package coord

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tradsys/mesh/pkg/config"
)

// The coordinator's domain errors. The gRPC layer maps each to a status code
// in one table (server/errors.go); nothing here knows about gRPC.

// ErrNotLeader means this replica lost or has not yet won the leadership;
// the caller should retry (the gRPC layer forwards to the leader).
var ErrNotLeader = errors.New("this coordinator replica is not the leader; retry")

// NotFoundError is an unknown or ended session, lease, lock or component.
type NotFoundError struct {
	Kind string // "session", "lease", "component"
	ID   string
}

func (e *NotFoundError) Error() string {
	if e.Kind == "session" {
		return fmt.Sprintf("session %s not found (closed or expired)", e.ID)
	}
	return fmt.Sprintf("%s %q not found", e.Kind, e.ID)
}

// InvalidError is a request the coordinator cannot act on.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason) }

// PermissionError is an attempt to touch what another session holds.
type PermissionError struct {
	Session, Owner string // the holder
	What           string
	Caller         string // set when the caller's identity (mTLS) is what is refused
}

func (e *PermissionError) Error() string {
	switch {
	case e.Session == "":
		return e.What
	case e.Caller != "":
		return fmt.Sprintf("session %s belongs to %q; caller %q may not act for it", e.Session, e.Owner, e.Caller)
	}
	return fmt.Sprintf("%s belongs to session %s (owner %q)", e.What, e.Session, e.Owner)
}

// CapabilityError is a session id that does not prove the session: its
// public id without the secret (read from a list, an event or an error),
// or a wrong secret.
type CapabilityError struct{ Session string }

func (e *CapabilityError) Error() string {
	return fmt.Sprintf("session %s: this session_id does not prove the session (acting for a session needs the session_id CreateSession returned, not its public id)", e.Session)
}

// LimitError is a request past one of the coordinator's limits.
type LimitError struct {
	Limit string // the flag that sets it
	Value int
	Owner string // the owner it counts for, if per owner
}

func (e *LimitError) Error() string {
	if e.Owner != "" {
		return fmt.Sprintf("limit reached: owner %q already has %d (--%s)", e.Owner, e.Value, e.Limit)
	}
	return fmt.Sprintf("limit reached: %d (--%s)", e.Value, e.Limit)
}

// NotGrantedError is a memory request that did not fit in time.
type NotGrantedError struct {
	Component               string
	Requested, Free, Budget int64
	Waited                  time.Duration
	Ahead                   int // waiters queued ahead of it
	// Holders are the granted leases that hold the budget, largest first
	// (at most maxHolders of them): who the caller is waiting for.
	Holders []Holder
}

// Holder is a lease that holds part of the budget, as a refusal names it.
type Holder struct {
	Component, Session, Owner string
	Bytes                     int64
	Priority                  int32
	Preemptible               bool
}

func (h Holder) String() string {
	pre := "not preemptible"
	if h.Preemptible {
		pre = "preemptible"
	}
	return fmt.Sprintf("%s %s priority %d %s (session %s, owner %q)", h.Component, config.FormatBytes(h.Bytes), h.Priority, pre, h.Session, h.Owner)
}

// maxHolders bounds the holders a refusal lists.
const maxHolders = 8

func (e *NotGrantedError) Error() string {
	msg := fmt.Sprintf("memory lease not granted for %q: requested %d bytes (%s), free %d (%s) of budget %d (%s)",
		e.Component, e.Requested, config.FormatBytes(e.Requested), e.Free, config.FormatBytes(e.Free), e.Budget, config.FormatBytes(e.Budget))
	if e.Waited > 0 {
		msg += fmt.Sprintf(" after waiting %s", e.Waited.Round(time.Millisecond))
	}
	if e.Ahead > 0 {
		msg += fmt.Sprintf("; %d requests of equal or higher priority queued ahead", e.Ahead)
	}
	if len(e.Holders) > 0 {
		parts := make([]string, len(e.Holders))
		for i, h := range e.Holders {
			parts[i] = h.String()
		}
		msg += "; held by " + strings.Join(parts, ", ")
	}
	return msg
}

// TooLargeError is a request larger than the whole budget.
type TooLargeError struct{ Requested, Budget int64 }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("invalid bytes: %d is more than the whole memory budget of %d (%s)", e.Requested, e.Budget, config.FormatBytes(e.Budget))
}

// DeadlockEdge is one step of a wait-for cycle: Session waits for Lock,
// which is held by (or queued ahead for) Next.
type DeadlockEdge struct {
	Session, Owner  string
	Lock            string
	Next, NextOwner string
	Queued          bool // Next is ahead in the lock's queue, not its holder
}

// DeadlockError is a lock request that would close a wait-for cycle.
type DeadlockError struct{ Cycle []DeadlockEdge }

func (e *DeadlockError) Error() string {
	parts := make([]string, len(e.Cycle))
	for i, d := range e.Cycle {
		rel := "held by"
		if d.Queued {
			rel = "queued behind"
		}
		parts[i] = fmt.Sprintf("session %s (owner %q) waits for lock %q %s session %s (owner %q)",
			d.Session, d.Owner, d.Lock, rel, d.Next, d.NextOwner)
	}
	return "deadlock detected: " + strings.Join(parts, "; ")
}

// RankError is taking a lower-ranked lock while holding a higher-ranked one.
type RankError struct {
	Held       string
	HeldRank   int32
	Wanted     string
	WantedRank int32
}

func (e *RankError) Error() string {
	return fmt.Sprintf("lock rank violation: holding %q (rank %d) while taking %q (rank %d); take lower-ranked locks first",
		e.Held, e.HeldRank, e.Wanted, e.WantedRank)
}

// LockTimeoutError is a lock not acquired within its wait.
type LockTimeoutError struct {
	Name, Holder, HolderOwner string
	Waited                    time.Duration
}

func (e *LockTimeoutError) Error() string {
	return fmt.Sprintf("lock %q not acquired within %s: held by session %s (owner %q)",
		e.Name, e.Waited.Round(time.Millisecond), e.Holder, e.HolderOwner)
}

// NotHeldError is releasing a lock the session does not hold.
type NotHeldError struct{ Name, Session string }

func (e *NotHeldError) Error() string {
	return fmt.Sprintf("lock %q is not held by session %s", e.Name, e.Session)
}

// InProgressError is a request on something whose etcd write is still in
// flight (an acquisition or a release not yet committed, for instance while
// etcd is stalled): its outcome is not known yet, so the caller retries.
type InProgressError struct{ What string }

func (e *InProgressError) Error() string {
	return e.What + " is still in progress (its etcd write is not settled); retry"
}

// RevokedError is a growth asked of a lease that has a revocation notice
// out: it is to be released, not grown.
type RevokedError struct{ LeaseID, Component string }

func (e *RevokedError) Error() string {
	return fmt.Sprintf("lease %s of %q is being revoked (preempted or over a lowered budget): release it rather than grow it", e.LeaseID, e.Component)
}

// CycleError is a component dependency cycle.
type CycleError struct{ Cycle []string }

func (e *CycleError) Error() string {
	return "invalid dependencies: dependency cycle " + strings.Join(e.Cycle, " -> ")
}
