package lazy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

const (
	initGrace    = 250 * time.Millisecond
	reportSettle = 20 * time.Millisecond
)

// Component is one lazily loaded part of a service.
type Component struct {
	rt   *Runtime
	spec Spec

	mu       sync.Mutex // guards everything below
	state    State
	cause    string
	causeErr error         // the failed activation's error, for callers (keeps a coordinator refusal's status)
	attempt  int           // activation attempts started
	changed  chan struct{} // closed and replaced on every state change
	inflight int
	waiting  int
	lease    Lease
	lastUsed time.Time
	idle     *time.Timer
	preempt  bool // a revocation notice arrived while activating
	report   chan struct{}
	// gen counts state changes; reported is the last gen the coordinator
	// acknowledged, and reportedCh is closed and replaced when it moves.
	gen        uint64
	reported   uint64
	reportedCh chan struct{}
	exitFn     func() // c.exit, bound once so Enter does not allocate
	// Following the usage (memory.go).
	usageStop    chan struct{}
	resizeMu     sync.Mutex // one resize of the lease at a time (usage, shrink under notice)
	refusal      atomic.Pointer[Refusal]
	lastReported atomic.Int64 // used bytes last told to the coordinator; -1: never
}

// Name is the component's name.
func (c *Component) Name() string { return c.spec.Name }

// Spec is the component's declaration.
func (c *Component) Spec() Spec { return c.spec }

// Status is a snapshot of a component.
type Status struct {
	Name     string
	State    State
	Cause    string
	LeaseID  string
	InFlight int
	Queued   int
}

// Status reports the component's state.
func (c *Component) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Status{Name: c.spec.Name, State: c.state, Cause: c.cause, LeaseID: c.lease.ID, InFlight: c.inflight, Queued: c.waiting}
}

func (c *Component) leaseID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lease.ID
}

// setStateLocked changes state and wakes everything waiting on a change.
func (c *Component) setStateLocked(s State, cause string) {
	c.state, c.cause, c.causeErr = s, cause, nil
	c.gen++
	close(c.changed)
	c.changed = make(chan struct{})
	c.rt.m.state.WithLabelValues(c.spec.Name).Set(float64(s))
	c.rt.onState(c.spec.Name, s)
	c.kickReport()
}

func (c *Component) kickReport() {
	select {
	case c.report <- struct{}{}:
	default:
	}
}

// reporter tells the coordinator the latest state, coalescing bursts so a
// slow coordinator never delays a state change.
func (c *Component) reporter() {
	for range c.report {
		// Let a quick succession (ACTIVATING then ACTIVE) settle into one
		// registry write.
		time.Sleep(reportSettle)
		c.mu.Lock()
		s, cause, gen := c.state, c.cause, c.gen
		c.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if err := c.rt.coord.Report(ctx, c.spec.Name, s, cause); err != nil {
			c.rt.log.Debug("report state failed", zap.String("component", c.spec.Name), zap.Error(err))
		} else {
			c.mu.Lock()
			if gen > c.reported {
				c.reported = gen
				if c.reportedCh != nil {
					close(c.reportedCh)
					c.reportedCh = nil
				}
			}
			c.mu.Unlock()
		}
		cancel()
	}
}

// WaitReported waits until the coordinator's registry has the state the
// component is in now (or ctx ends), so an operator who is told ACTIVE
// and then lists the registry reads ACTIVE.
func (c *Component) WaitReported(ctx context.Context) error {
	c.mu.Lock()
	target := c.gen
	for c.reported < target {
		if c.reportedCh == nil {
			c.reportedCh = make(chan struct{})
		}
		ch := c.reportedCh
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		c.mu.Lock()
	}
	c.mu.Unlock()
	return nil
}

// Enter is the gate: it returns once the component is ACTIVE, triggering
// the activation if needed (concurrent first calls share one), and counts
// the call in flight until exit is called. It waits at most InitTimeout.
func (c *Component) Enter(ctx context.Context) (exit func(), err error) {
	// Fast path, the warm case: no timer, no allocation.
	c.mu.Lock()
	if c.state == Active {
		c.inflight++
		c.lastUsed = time.Now()
		c.mu.Unlock()
		return c.exitFn, nil
	}
	c.mu.Unlock()
	return c.enterSlow(ctx)
}

func (c *Component) enterSlow(ctx context.Context) (exit func(), err error) {
	// A little past InitTimeout, so a caller that arrived with the activation
	// sees its outcome (the cause) rather than a bare timeout.
	deadline := time.NewTimer(c.spec.InitTimeout + initGrace)
	defer deadline.Stop()
	c.mu.Lock()
	queued := false
	myAttempt := -1
	defer func() {
		if queued {
			c.mu.Lock()
			c.waiting--
			c.rt.m.queue.WithLabelValues(c.spec.Name).Set(float64(c.waiting))
			c.mu.Unlock()
		}
	}()
	for {
		switch c.state {
		case Active:
			c.inflight++
			c.lastUsed = time.Now()
			c.mu.Unlock()
			return c.exitFn, nil
		case Failed:
			if myAttempt == c.attempt {
				// The activation this call waited for failed: report why
				// rather than retrying in a loop.
				cause := c.causeErr
				if cause == nil {
					cause = errors.New(c.cause)
				}
				c.mu.Unlock()
				return nil, &UnavailableError{Component: c.spec.Name, Cause: cause}
			}
			fallthrough
		case Dormant:
			if c.rt.isClosed() {
				c.mu.Unlock()
				return nil, &UnavailableError{Component: c.spec.Name, Cause: ErrShuttingDown}
			}
			c.startActivationLocked()
		}
		if c.state == Activating {
			myAttempt = c.attempt
		}
		if !queued {
			if c.waiting >= c.spec.QueueLimit {
				c.mu.Unlock()
				return nil, &UnavailableError{Component: c.spec.Name, Cause: fmt.Errorf("%w (%d calls waiting)", ErrQueueFull, c.spec.QueueLimit)}
			}
			c.waiting++
			queued = true
			c.rt.m.queue.WithLabelValues(c.spec.Name).Set(float64(c.waiting))
		}
		ch := c.changed
		state := c.state
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			c.mu.Lock()
			cause := c.cause
			c.mu.Unlock()
			if cause == "" {
				cause = "still " + state.String()
			}
			return nil, &UnavailableError{Component: c.spec.Name,
				Cause: fmt.Errorf("not active within %s: %s", c.spec.InitTimeout, cause)}
		}
		c.mu.Lock()
	}
}

func (c *Component) exit() {
	c.mu.Lock()
	c.inflight--
	c.lastUsed = time.Now()
	if c.inflight == 0 && c.state == Draining {
		c.setStateLocked(Draining, c.cause) // wake the drainer
	}
	c.mu.Unlock()
}

// WaitActive waits, without activating the component, until it is ACTIVE
// or ctx ends. It is for a follower that must neither wake the component
// nor keep it loaded (a trade stream that has nothing to say until someone
// else's order wakes the engine): it waits here, then reads what the
// component offers without entering it, guarding against the unload in its
// own way (matching's passive StreamTrades).
func (c *Component) WaitActive(ctx context.Context) error {
	c.mu.Lock()
	for c.state != Active {
		if c.rt.isClosed() {
			c.mu.Unlock()
			return &UnavailableError{Component: c.spec.Name, Cause: ErrShuttingDown}
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		c.mu.Lock()
	}
	c.mu.Unlock()
	return nil
}

// Activate activates the component (and its dependencies) and waits.
func (c *Component) Activate(ctx context.Context) error {
	exit, err := c.Enter(ctx)
	if err != nil {
		return err
	}
	exit()
	return nil
}

func (c *Component) startActivationLocked() {
	c.attempt++
	c.preempt = false
	c.setStateLocked(Activating, "")
	go c.activate(c.attempt)
}

// activate runs dependencies, the memory lease and Init, in that order.
func (c *Component) activate(attempt int) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), c.spec.InitTimeout)
	defer cancel()
	fail := func(stage string, err error) {
		cause := stage + ": " + err.Error()
		if strings.HasPrefix(err.Error(), stage) { // the coordinator's refusal says it already
			cause = err.Error()
		}
		c.rt.log.Warn("activation failed", zap.String("component", c.spec.Name), zap.String("cause", cause))
		c.rt.m.activations.WithLabelValues(c.spec.Name, "failed").Inc()
		c.mu.Lock()
		c.setStateLocked(Failed, cause)
		c.causeErr = fmt.Errorf("%s: %w", stage, err)
		if cause == err.Error() {
			c.causeErr = err
		}
		c.mu.Unlock()
	}
	for _, dep := range c.spec.Dependencies {
		var err error
		if local, lerr := c.rt.Get(dep); lerr == nil {
			err = local.Activate(ctx)
		} else {
			err = c.rt.coord.ActivateRemote(ctx, dep)
		}
		if err != nil {
			fail("dependency "+dep, err)
			return
		}
	}
	lease, err := c.rt.coord.AcquireMemory(ctx, c.spec.Name, c.spec.MemoryBytes, c.spec.Priority, !c.spec.Pinned, time.Until(deadlineOf(ctx)))
	if err != nil {
		fail("memory lease not granted", err)
		return
	}
	c.mu.Lock()
	c.lease = lease
	c.mu.Unlock()
	c.rt.m.leased.WithLabelValues(c.spec.Name).Set(float64(lease.Bytes))
	c.rt.updateMemoryLimit()
	if c.spec.Fit != nil {
		c.spec.Fit(lease.Bytes)
	}
	initDone := make(chan error, 1)
	go func() { initDone <- c.spec.Init(ctx) }()
	select {
	case err = <-initDone:
	case <-ctx.Done():
		err = fmt.Errorf("timed out after %s", c.spec.InitTimeout)
		// Init ignored its context: once it returns, undo what it built.
		go func() {
			<-initDone
			sctx, scancel := context.WithTimeout(context.Background(), c.spec.DrainTimeout)
			defer scancel()
			_ = c.spec.Shutdown(sctx)
		}()
	}
	if err != nil {
		c.releaseLease(lease)
		c.mu.Lock()
		c.lease = Lease{}
		c.mu.Unlock()
		c.rt.m.leased.WithLabelValues(c.spec.Name).Set(0)
		c.rt.updateMemoryLimit()
		fail("init", err)
		return
	}
	c.rt.m.activationSeconds.WithLabelValues(c.spec.Name).Observe(time.Since(start).Seconds())
	c.rt.m.activations.WithLabelValues(c.spec.Name, "ok").Inc()
	c.mu.Lock()
	c.lastUsed = time.Now()
	c.setStateLocked(Active, "")
	c.armIdleLocked(c.spec.IdleTimeout)
	c.startUsageLocked()
	preempted := c.preempt
	c.mu.Unlock()
	c.rt.log.Info("component active", zap.String("component", c.spec.Name), zap.Duration("took", time.Since(start)),
		zap.String("lease", lease.ID))
	if preempted {
		go func() { _ = c.Deactivate(context.Background(), "preempted") }()
	}
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

func (c *Component) releaseLease(l Lease) {
	if l.ID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.rt.coord.ReleaseMemory(ctx, l); err != nil {
		// The session's TTL will release it if this does not.
		c.rt.log.Warn("release memory lease failed", zap.String("component", c.spec.Name), zap.Error(err))
	}
}

func (c *Component) armIdleLocked(after time.Duration) {
	if c.spec.IdleTimeout < 0 {
		return
	}
	if c.idle != nil {
		c.idle.Stop()
	}
	c.idle = time.AfterFunc(after, c.checkIdle)
}

func (c *Component) checkIdle() {
	c.mu.Lock()
	if c.state != Active {
		c.mu.Unlock()
		return
	}
	if c.inflight > 0 || time.Since(c.lastUsed) < c.spec.IdleTimeout {
		c.armIdleLocked(max(c.spec.IdleTimeout-time.Since(c.lastUsed), c.spec.IdleTimeout/10))
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	_ = c.Deactivate(context.Background(), "idle")
}

// Deactivate drains and unloads the component and releases its lease.
// reason labels the metric: idle, operator, preempted, session-lost, shutdown.
func (c *Component) Deactivate(ctx context.Context, reason string) error {
	return c.deactivate(ctx, reason, c.spec.DrainTimeout)
}

func (c *Component) deactivate(ctx context.Context, reason string, drainFor time.Duration) error {
	c.mu.Lock()
	switch c.state {
	case Activating:
		if reason == "preempted" {
			c.preempt = true // deactivate once active
		}
		c.mu.Unlock()
		return nil
	case Draining:
		// Someone else is deactivating: wait for them.
		for c.state == Draining {
			ch := c.changed
			c.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return ctx.Err()
			}
			c.mu.Lock()
		}
		c.mu.Unlock()
		return nil
	case Active:
	default:
		c.mu.Unlock()
		return nil
	}
	if c.idle != nil {
		c.idle.Stop()
	}
	c.stopUsageLocked()
	c.setStateLocked(Draining, reason)
	drainDeadline := time.NewTimer(max(drainFor, 0))
	defer drainDeadline.Stop()
	for timedOut := false; c.inflight > 0 && !timedOut; {
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-drainDeadline.C:
			timedOut = true
			c.rt.log.Warn("drain timed out; shutting down with calls in flight", zap.String("component", c.spec.Name))
		}
		c.mu.Lock()
	}
	lease := c.lease
	c.mu.Unlock()

	sctx, cancel := context.WithTimeout(context.Background(), c.spec.DrainTimeout)
	if err := c.spec.Shutdown(sctx); err != nil {
		c.rt.log.Warn("shutdown failed", zap.String("component", c.spec.Name), zap.Error(err))
	}
	cancel()
	c.releaseLease(lease)
	c.mu.Lock()
	c.lease = Lease{}
	c.mu.Unlock()
	c.rt.m.leased.WithLabelValues(c.spec.Name).Set(0)
	c.rt.updateMemoryLimit()
	c.rt.m.deactivations.WithLabelValues(c.spec.Name, reason).Inc()
	c.rt.log.Info("component dormant", zap.String("component", c.spec.Name), zap.String("reason", reason))

	c.mu.Lock()
	c.lease = Lease{}
	c.refusal.Store(nil)
	c.lastReported.Store(-1)
	c.setStateLocked(Dormant, "")
	// Calls that queued while draining activate it again.
	if c.waiting > 0 && !c.rt.isClosed() {
		c.startActivationLocked()
	}
	c.mu.Unlock()
	return nil
}
