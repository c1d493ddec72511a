// Package locks helps services use coordinator locks safely: a Held lock
// carries its fencing token, and a Fence lets the consumer of a protected
// resource refuse requests from stale holders (a holder that paused, lost
// its session, and does not know another holder has taken over since).
//
// The pattern (Kleppmann's fencing tokens): take the lock, send its token
// with every write to the protected resource, and have the resource remember
// the newest token it accepted and refuse older ones.
package locks

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Locker is the part of the coordinator client this package needs
// (coordclient.Client implements it).
type Locker interface {
	AcquireLock(ctx context.Context, name string, wait time.Duration) (uint64, error)
	ReleaseLock(ctx context.Context, name string) error
}

// Held is a lock this process holds.
type Held struct {
	Name  string
	Token uint64
	l     Locker
	once  sync.Once
}

// Acquire takes name, waiting up to wait.
func Acquire(ctx context.Context, l Locker, name string, wait time.Duration) (*Held, error) {
	tok, err := l.AcquireLock(ctx, name, wait)
	if err != nil {
		return nil, err
	}
	return &Held{Name: name, Token: tok, l: l}, nil
}

// Release gives the lock back; calling it again does nothing.
func (h *Held) Release(ctx context.Context) error {
	var err error
	h.once.Do(func() { err = h.l.ReleaseLock(ctx, h.Name) })
	return err
}

// With runs fn holding name, and releases it afterwards.
func With(ctx context.Context, l Locker, name string, wait time.Duration, fn func(token uint64) error) error {
	h, err := Acquire(ctx, l, name, wait)
	if err != nil {
		return err
	}
	defer h.Release(context.WithoutCancel(ctx))
	return fn(h.Token)
}

// StaleTokenError is a request carrying a token older than one already seen.
type StaleTokenError struct {
	Resource      string
	Token, Newest uint64
}

func (e *StaleTokenError) Error() string {
	return fmt.Sprintf("stale fencing token for %s: %d is older than %d, a newer lock holder has acted since", e.Resource, e.Token, e.Newest)
}

// Fence guards one resource: it accepts a token equal to or newer than the
// newest it has accepted, and refuses older ones.
type Fence struct {
	Resource string
	mu       sync.Mutex
	newest   uint64
}

// Check accepts token (remembering it if it is the newest) or refuses it.
// A zero token is always refused: it means "no lock held".
func (f *Fence) Check(token uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if token == 0 || token < f.newest {
		return &StaleTokenError{Resource: f.Resource, Token: token, Newest: f.newest}
	}
	f.newest = token
	return nil
}

// Newest is the newest token accepted.
func (f *Fence) Newest() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.newest
}
