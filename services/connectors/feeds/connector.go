package feeds

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Connector is a source of market data. Start launches it in the background
// and returns at once (an error only for invalid configuration or when it is
// already running); events go to out until ctx ends, Stop is called, the
// source is exhausted (Replay, a bounded Simulator) or out.Publish fails.
// Stop cancels and waits for the background work; it is idempotent, and a
// stopped connector may be started again (Stats keep accumulating).
type Connector interface {
	Name() string
	Start(ctx context.Context, out Publisher) error
	Stop()
	Stats() Stats
}

// ErrAlreadyRunning is returned by Start on a running connector.
var ErrAlreadyRunning = errors.New("feeds: connector already running")

// Stats are a connector's counters since it was created.
type Stats struct {
	Messages    uint64 // raw messages / lines / generated ticks processed
	Events      uint64 // events published
	Malformed   uint64 // messages that failed to parse (skipped)
	Reconnects  uint64 // successful reconnections after a lost connection
	DialErrors  uint64 // failed connection attempts
	SeqGaps     uint64 // venue book-sequence discontinuities seen (Binance depth)
	LastError   error  // most recent error (malformed message, I/O, API error)
	LastErrorAt time.Time
	Connected   bool // Binance: a connection is currently open
	Running     bool
}

// counters is the shared, concurrency-safe implementation of Stats.
type counters struct {
	messages, events, malformed, reconnects, dialErrors, seqGaps atomic.Uint64
	connected                                                    atomic.Bool
	mu                                                           sync.Mutex
	lastErr                                                      error
	lastErrAt                                                    time.Time
}

func (c *counters) setErr(err error) {
	if err == nil {
		return
	}
	c.mu.Lock()
	c.lastErr, c.lastErrAt = err, time.Now()
	c.mu.Unlock()
}

func (c *counters) snapshot() Stats {
	c.mu.Lock()
	le, la := c.lastErr, c.lastErrAt
	c.mu.Unlock()
	return Stats{
		Messages: c.messages.Load(), Events: c.events.Load(), Malformed: c.malformed.Load(),
		Reconnects: c.reconnects.Load(), DialErrors: c.dialErrors.Load(), SeqGaps: c.seqGaps.Load(),
		LastError: le, LastErrorAt: la, Connected: c.connected.Load(),
	}
}

// lifecycle implements Start/Stop/Done/Err for the connectors.
type lifecycle struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// start runs fn in a goroutine unless one is running.
func (l *lifecycle) start(ctx context.Context, fn func(ctx context.Context) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done != nil {
		select {
		case <-l.done:
		default:
			return ErrAlreadyRunning
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	l.cancel, l.done, l.err = cancel, done, nil
	go func() {
		err := fn(ctx)
		cancel()
		l.mu.Lock()
		l.err = err
		l.mu.Unlock()
		close(done)
	}()
	return nil
}

func (l *lifecycle) stop() {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// doneChan returns a channel closed when the current run ends (closed
// already if never started).
func (l *lifecycle) doneChan() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return l.done
}

func (l *lifecycle) running() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done == nil {
		return false
	}
	select {
	case <-l.done:
		return false
	default:
		return true
	}
}

func (l *lifecycle) result() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// publish sends ev and counts it.
func publish(c *counters, out Publisher, ev Event) error {
	if err := out.Publish(ev); err != nil {
		c.setErr(err)
		return err
	}
	c.events.Add(1)
	return nil
}

var (
	_ Connector = (*Simulator)(nil)
	_ Connector = (*Replay)(nil)
	_ Connector = (*Binance)(nil)
	_ Publisher = (*Stream)(nil)
)
