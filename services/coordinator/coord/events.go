package coord

import (
	"sync"
	"time"
)

// EventType says what happened; values match tradsys.coordinator.v1.EventType.
type EventType int32

// Event types.
const (
	EventUnspecified EventType = iota
	EventSessionCreated
	EventSessionEnded
	EventMemoryGranted
	EventMemoryReleased
	EventMemoryWaiting
	EventMemoryPreempting
	EventMemoryForceReleased
	EventMemoryDenied
	EventLockGranted
	EventLockReleased
	EventLockWaiting
	EventLockDeadlock
	EventComponentRegistered
	EventComponentStateChanged
	EventLeaderChanged
	EventLockTimeout
	EventComponentRemoved
	EventBudgetChanged
	EventMemoryResized
)

// Event is one thing the coordinator did.
type Event struct {
	Sequence     uint64
	Type         EventType
	Time         time.Time
	SessionID    string
	Owner        string
	Component    string
	LeaseID      string
	LockName     string
	Bytes        int64
	Priority     int32
	FencingToken uint64
	Message      string
	State        ComponentState
	Deadline     time.Time
}

// EventFilter selects events for a watcher; zero fields match everything.
type EventFilter struct {
	Types     []EventType
	SessionID string
	Component string
}

func (f EventFilter) match(e *Event) bool {
	if f.SessionID != "" && e.SessionID != f.SessionID {
		return false
	}
	if f.Component != "" && e.Component != f.Component {
		return false
	}
	if len(f.Types) == 0 {
		return true
	}
	for _, t := range f.Types {
		if t == e.Type {
			return true
		}
	}
	return false
}

// broker fans events out to watchers. A watcher that falls more than its
// buffer behind is cut off (its channel closes with Lagged set) rather than
// slowing the coordinator down, as etcd does with slow watchers.
type broker struct {
	mu   sync.Mutex
	seq  uint64
	subs map[*Subscription]struct{}
}

// Subscription is one watcher's event feed.
type Subscription struct {
	C      <-chan Event
	c      chan Event
	filter EventFilter
	b      *broker
	lagged bool
	closed bool
}

// Lagged reports whether the subscription was cut off for falling behind.
func (s *Subscription) Lagged() bool {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	return s.lagged
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.closeLocked(false)
}

// closeLocked ends the feed; the broker's mutex is held.
func (s *Subscription) closeLocked(lagged bool) {
	if !s.closed {
		s.closed, s.lagged = true, lagged
		delete(s.b.subs, s)
		close(s.c)
	}
}

func (b *broker) subscribe(f EventFilter, buffer int) *Subscription {
	c := make(chan Event, buffer)
	s := &Subscription{C: c, c: c, filter: f, b: b}
	b.mu.Lock()
	if b.subs == nil {
		b.subs = map[*Subscription]struct{}{}
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

func (b *broker) publish(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	e.Sequence = b.seq
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	for s := range b.subs {
		if !s.filter.match(&e) {
			continue
		}
		select {
		case s.c <- e:
		default:
			s.closeLocked(true)
		}
	}
}

func (b *broker) closeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		s.closeLocked(false)
	}
}
