package coord

import "time"

// ComponentState is a component's lifecycle state.
type ComponentState int32

// States as in tradsys.coordinator.v1.ComponentState.
const (
	StateUnspecified ComponentState = iota
	StateDormant
	StateActivating
	StateActive
	StateDraining
	StateFailed
)

func (s ComponentState) String() string {
	return [...]string{"UNSPECIFIED", "DORMANT", "ACTIVATING", "ACTIVE", "DRAINING", "FAILED"}[s]
}

// DefaultPriority is the seed's default: lower numbers are more important.
const DefaultPriority int32 = 50

// Session is a client's session as reported to callers.
type Session struct {
	ID       string // the capability a client acts with: "<PublicID>.<secret>"
	PublicID string
	Owner    string
	TTL      time.Duration
}

// Lease is a granted memory lease.
type Lease struct {
	ID           string
	SessionID    string
	Owner        string
	Component    string
	Bytes        int64
	Priority     int32
	Preemptible  bool
	FencingToken uint64
	GrantedAt    time.Time
	RevokeAt     time.Time // zero unless a revocation notice is out
	RequestID    string
	// Used is what the holder last reported it uses, if UsedKnown.
	Used      int64
	UsedKnown bool
	// Over is set by ResizeMemory while a revocation notice for a lowered
	// budget is out: the bytes a shrink must give back to keep the lease
	// (overLocked); -1 otherwise.
	Over int64
}

// MemoryRequest asks for bytes of the budget.
type MemoryRequest struct {
	SessionID   string
	Component   string
	Bytes       int64
	Priority    int32
	Preemptible bool
	Wait        time.Duration
	// RequestID is the caller's idempotency key within the session.
	RequestID string
}

// LockRequest asks for a named lock.
type LockRequest struct {
	SessionID string
	Name      string
	Wait      time.Duration
	Rank      int32
}

// LockInfo is a held lock.
type LockInfo struct {
	Name         string
	SessionID    string
	Owner        string
	FencingToken uint64
	Rank         int32
	Waiters      []string
	AcquiredAt   time.Time
}

// Component is a registry entry.
type Component struct {
	Name           string         `json:"name"`
	Endpoint       string         `json:"endpoint,omitempty"`
	MemoryBytes    int64          `json:"memory_bytes"`
	Priority       int32          `json:"priority"`
	Dependencies   []string       `json:"dependencies,omitempty"`
	InitTimeout    time.Duration  `json:"init_timeout"`
	IdleTimeout    time.Duration  `json:"idle_timeout"`
	State          ComponentState `json:"state"`
	Cause          string         `json:"cause,omitempty"`
	DesiredState   ComponentState `json:"desired_state"`
	StateChangedAt time.Time      `json:"state_changed_at"`
	// Session registered the row and owns it (see RegisterComponent);
	// Owner is that session's owner. Empty: an ownerless row.
	Session string `json:"session,omitempty"`
	Owner   string `json:"owner,omitempty"`
}

// Status summarises the coordinator.
type Status struct {
	BudgetBytes, UsedBytes     int64
	Sessions, Leases, Locks    int
	MemoryWaiters, LockWaiters int
	Leader, Replica            string
}

// CloseResult counts what a closed session released.
type CloseResult struct{ Leases, Locks int }
