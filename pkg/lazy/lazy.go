// Package lazy is the lazy runtime every TradSys service is built on (the
// seed's ComponentCoordinator and lazy wrappers, as processes): a component
// stays DORMANT, holding none of its heavy state, until a call needs it;
// then it activates its dependencies, acquires a memory lease for its
// estimate from the coordinator, and runs its Init within a timeout. Calls
// that arrive meanwhile wait in a bounded queue. An idle timer, an operator,
// a preemption notice or the loss of the coordinator session sends it back:
// new calls wait, in-flight calls drain, Shutdown runs, the lease is given
// back (make-before-break: nothing in flight is cut).
//
// The package has no gRPC types; lazygrpc puts it on a gRPC server.
package lazy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// State is a component's lifecycle state; the numbers match
// tradsys.coordinator.v1.ComponentState.
type State int32

// States.
const (
	Dormant    State = 1
	Activating State = 2
	Active     State = 3
	Draining   State = 4
	Failed     State = 5
)

func (s State) String() string {
	switch s {
	case Dormant:
		return "DORMANT"
	case Activating:
		return "ACTIVATING"
	case Active:
		return "ACTIVE"
	case Draining:
		return "DRAINING"
	case Failed:
		return "FAILED"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// Spec declares a component.
type Spec struct {
	// Name is "<service>" or "<service>/<kind>/<name>".
	Name         string
	MemoryBytes  int64
	Priority     int32 // lower is more important; the seed's defaults per kind
	Pinned       bool  // not preemptible
	Dependencies []string
	InitTimeout  time.Duration // default 30s
	IdleTimeout  time.Duration // default 5m (the seed's); negative: never
	DrainTimeout time.Duration // how long in-flight calls may take to finish; default 30s
	QueueLimit   int           // calls that may wait for activation; default 1024
	Init         func(ctx context.Context) error
	Shutdown     func(ctx context.Context) error
	// Usage, if set, is what the component really uses now (book sizes,
	// cache bytes, strategy state), read every UsageInterval while it is
	// active: the lease grows ahead of it with Headroom (a fraction, default
	// 0.25) and shrinks when it falls, never below MemoryBytes (memory.go).
	Usage         func() int64
	UsageInterval time.Duration // default 1s
	Headroom      float64
	// OnMemory is told when a growth is refused (the component sheds load
	// its own way) and, with nil, when usage fits the lease again.
	OnMemory func(*Refusal)
	// Fit, if set, is told the lease's size whenever it changes (granted
	// before Init, grown, shrunk) and must keep the component's usage within
	// it (a cache evicts down to it). It also makes the component shrink
	// rather than unload under a lowered budget: on a revocation notice the
	// runtime shrinks the lease by what the leases are over the budget and
	// a MiB (halves it if the coordinator does not say; never below
	// MinBytes), calling Fit first, until the coordinator withdraws the
	// notice; only if it does not does the component deactivate.
	Fit func(leased int64)
	// MinBytes is the least the lease shrinks to with the usage or under a
	// lowered budget; default MemoryBytes.
	MinBytes int64
}

// Lease is a granted memory lease.
type Lease struct {
	ID           string
	FencingToken uint64
	Bytes        int64
	// Session is the coordinator session that holds the lease.
	Session string
	// RevokeAt is set (by a resize) while a revocation notice is
	// outstanding: the force-release time.
	RevokeAt time.Time
	// Over is set (by a resize) with RevokeAt for a lowered budget: how
	// many bytes the lease must give back to be kept; -1 when unknown or
	// when no shrink keeps it.
	Over int64
}

// Settings are the tunables of one kind of component, each a flag with a
// default in the service that declares it (service.ComponentFlags).
type Settings struct {
	MemoryBytes int64
	Priority    int32 // lower is more important
	InitTimeout time.Duration
	IdleTimeout time.Duration // negative: never unload
}

// Spec is a Spec named name with these settings; the caller adds the rest
// (Init, Shutdown, dependencies).
func (s Settings) Spec(name string) Spec {
	return Spec{Name: name, MemoryBytes: s.MemoryBytes, Priority: s.Priority, InitTimeout: s.InitTimeout, IdleTimeout: s.IdleTimeout}
}

// Coordinator is what the runtime needs from the coordinator
// (lazygrpc.Coordinator implements it with the gRPC client).
type Coordinator interface {
	AcquireMemory(ctx context.Context, component string, bytes int64, priority int32, preemptible bool, wait time.Duration) (Lease, error)
	ReleaseMemory(ctx context.Context, l Lease) error
	// ActivateRemote asks the coordinator to activate a component that lives
	// in another service.
	ActivateRemote(ctx context.Context, name string) error
	Register(ctx context.Context, s Spec, endpoint string) error
	Report(ctx context.Context, name string, st State, cause string) error
}

// Errors callers see; lazygrpc maps them all to UNAVAILABLE naming the
// component and the cause.
var (
	ErrQueueFull    = errors.New("activation queue full")
	ErrUnknown      = errors.New("unknown component")
	ErrShuttingDown = errors.New("service shutting down")
)

// UnavailableError says why a call could not run: the component and cause.
type UnavailableError struct {
	Component string
	Cause     error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("component %s unavailable: %v", e.Component, e.Cause)
}
func (e *UnavailableError) Unwrap() error { return e.Cause }

// Runtime owns a service's components.
type Runtime struct {
	coord    Coordinator
	log      *zap.Logger
	m        *metrics
	endpoint string
	onState  func(name string, s State)

	goLimit bool
	base    int64
	limitMu sync.Mutex // orders the limit's updates

	mu     sync.Mutex
	comps  map[string]*Component
	order  []string
	closed bool
	// registered is Register's context once it ran: components added
	// later (plugins declared at run time) register themselves with it.
	registered context.Context
}

// Options configure a Runtime.
type Options struct {
	Coordinator Coordinator
	Logger      *zap.Logger
	Registry    prometheus.Registerer
	// Endpoint is where this service's LifecycleService is reachable; it is
	// registered with each component.
	Endpoint string
	// OnState is told every state change (lazygrpc sets health with it).
	OnState func(name string, s State)
	// GoMemoryLimit makes the runtime hold the process to its leases: the
	// Go soft memory limit is BaseFootprint plus the leases held (memory.go).
	// One runtime per process should set it.
	GoMemoryLimit bool
	// BaseFootprint is the process's memory without any component loaded;
	// default twice the Go runtime's memory at New, at least 64 MiB.
	BaseFootprint int64
}

// New returns an empty runtime.
func New(o Options) *Runtime {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.OnState == nil {
		o.OnState = func(string, State) {}
	}
	if o.BaseFootprint <= 0 {
		o.BaseFootprint = baseFootprint()
	}
	r := &Runtime{coord: o.Coordinator, log: o.Logger, m: newMetrics(o.Registry), endpoint: o.Endpoint,
		onState: o.OnState, comps: map[string]*Component{}, goLimit: o.GoMemoryLimit, base: o.BaseFootprint}
	r.updateMemoryLimit()
	return r
}

// Add declares a component; it starts DORMANT.
func (r *Runtime) Add(s Spec) (*Component, error) {
	if s.Name == "" {
		return nil, errors.New("component needs a name")
	}
	if s.Init == nil {
		s.Init = func(context.Context) error { return nil }
	}
	if s.Shutdown == nil {
		s.Shutdown = func(context.Context) error { return nil }
	}
	if s.InitTimeout <= 0 {
		s.InitTimeout = 30 * time.Second
	}
	if s.IdleTimeout == 0 {
		s.IdleTimeout = 5 * time.Minute
	}
	if s.DrainTimeout <= 0 {
		s.DrainTimeout = 30 * time.Second
	}
	if s.QueueLimit <= 0 {
		s.QueueLimit = 1024
	}
	if s.UsageInterval <= 0 {
		s.UsageInterval = DefaultUsageInterval
	}
	if s.Headroom <= 0 {
		s.Headroom = DefaultHeadroom
	}
	if s.MinBytes <= 0 || s.MinBytes > s.MemoryBytes {
		s.MinBytes = s.MemoryBytes
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.comps[s.Name]; dup {
		return nil, fmt.Errorf("component %s declared twice", s.Name)
	}
	c := &Component{rt: r, spec: s, state: Dormant, changed: make(chan struct{}), report: make(chan struct{}, 1)}
	c.exitFn = c.exit
	c.lastReported.Store(-1)
	r.comps[s.Name] = c
	r.order = append(r.order, s.Name)
	r.m.state.WithLabelValues(s.Name).Set(float64(Dormant))
	r.onState(s.Name, Dormant)
	go c.reporter()
	if r.registered != nil {
		go r.register(r.registered, c)
	}
	return c, nil
}

// Get returns a declared component.
func (r *Runtime) Get(name string) (*Component, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.comps[name]
	if c == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknown, name)
	}
	return c, nil
}

// Components lists the components in declaration order.
func (r *Runtime) Components() []*Component {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Component, 0, len(r.order))
	for _, n := range r.order {
		out = append(out, r.comps[n])
	}
	return out
}

// Register records every component in the coordinator's registry,
// retrying in the background until the coordinator answers. Components
// added afterwards are registered as they are added.
func (r *Runtime) Register(ctx context.Context) {
	r.mu.Lock()
	r.registered = ctx
	r.mu.Unlock()
	for _, c := range r.Components() {
		go r.register(ctx, c)
	}
}

func (r *Runtime) register(ctx context.Context, c *Component) {
	retry := &backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, Multiplier: 2, MaxInterval: 5 * time.Second}
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := r.coord.Register(rctx, c.spec, r.endpoint)
		cancel()
		if err == nil {
			c.kickReport()
			return
		}
		r.log.Warn("register component failed; retrying", zap.String("component", c.spec.Name), zap.Error(err))
		select {
		case <-ctx.Done():
		case <-time.After(retry.NextBackOff()):
		}
	}
}

// Announce records one component in the coordinator's registry now: for a
// component added after Register ran (a connector configured at run time).
func (r *Runtime) Announce(ctx context.Context, name string) error {
	c, err := r.Get(name)
	if err != nil {
		return err
	}
	if err := r.coord.Register(ctx, c.spec, r.endpoint); err != nil {
		return err
	}
	c.kickReport()
	return nil
}

// SessionLost deactivates every active component: the coordinator session
// that held their memory leases is gone, and keeping the memory would break
// the budget.
func (r *Runtime) SessionLost() {
	for _, c := range r.Components() {
		go func() { _ = c.Deactivate(context.Background(), "session-lost") }()
	}
}

// Preempted handles a revocation notice for a lease: a component that can
// fit a smaller lease (Spec.Fit) first shrinks it (memory.go); one that
// cannot, or is not kept, deactivates within the deadline.
func (r *Runtime) Preempted(leaseID string, deadline time.Time) {
	for _, c := range r.Components() {
		if c.leaseID() == leaseID {
			r.log.Info("preempted", zap.String("component", c.spec.Name), zap.Time("deadline", deadline))
			go func() {
				if c.shrinkToKeep(leaseID, deadline) {
					return
				}
				_ = c.deactivate(context.Background(), "preempted", time.Until(deadline))
			}()
		}
	}
}

// Shutdown deactivates every component (dependents first, reverse
// declaration order) and refuses new activations.
func (r *Runtime) Shutdown(ctx context.Context) {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	comps := r.Components()
	for i := len(comps) - 1; i >= 0; i-- {
		_ = comps[i].Deactivate(ctx, "shutdown")
	}
}

func (r *Runtime) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}
