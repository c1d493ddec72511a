// Package lazygrpc puts the lazy runtime on a gRPC server: the gate
// interceptors that activate a component before a call that needs it, the
// tradsys.lifecycle.v1.LifecycleService, per-component health, and the
// coordinator the runtime runs against (Coordinator). Errors go through
// package grpcerr's shared table.
package lazygrpc

import (
	"context"
	"sync"
	"time"

	"github.com/tradsys/mesh/pkg/grpcerr"
	"github.com/tradsys/mesh/pkg/lazy"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	lifecyclev1 "github.com/tradsys/mesh/proto/tradsys/lifecycle/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// Errors is the error table of the gate and the LifecycleService: the
// shared cases of grpcerr (a component that cannot run a call is
// UNAVAILABLE naming it and the cause), and UNAVAILABLE (retryable) for
// anything else that keeps a component from running.
func Errors(domain string) grpcerr.Table {
	return grpcerr.Table{Domain: domain, Fallback: func(err error) error { return status.Error(codes.Unavailable, err.Error()) }}
}

// Gate decides which calls need which component. Methods it does not know
// (health, reflection, lifecycle, cheap reads) never trigger activation.
type Gate struct {
	errors  grpcerr.Table
	mu      sync.RWMutex
	methods map[string]*lazy.Component
	// Resolve, when set, picks a component from the request itself (for
	// plugins chosen per request); nil means "no component needed".
	Resolve func(ctx context.Context, fullMethod string, req any) (*lazy.Component, error)
}

// NewGate returns an empty gate answering errors with errs (see Errors).
func NewGate(errs grpcerr.Table) *Gate {
	return &Gate{errors: errs, methods: map[string]*lazy.Component{}}
}

// Require makes every call of fullMethod ("/pkg.Service/Method") need c.
func (g *Gate) Require(fullMethod string, c *lazy.Component) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.methods[fullMethod] = c
}

func (g *Gate) component(ctx context.Context, method string, req any) (*lazy.Component, error) {
	g.mu.RLock()
	c := g.methods[method]
	g.mu.RUnlock()
	if c != nil || g.Resolve == nil {
		return c, nil
	}
	return g.Resolve(ctx, method, req)
}

// Unary is the unary gate interceptor.
func (g *Gate) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	c, err := g.component(ctx, info.FullMethod, req)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return h(ctx, req)
	}
	exit, err := c.Enter(ctx)
	if err != nil {
		return nil, g.errors.ToStatus(err)
	}
	defer exit()
	return h(ctx, req)
}

// Stream is the streaming gate interceptor; the stream counts as in flight
// for as long as it is open, so draining waits for it.
func (g *Gate) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	c, err := g.component(ss.Context(), info.FullMethod, nil)
	if err != nil {
		return err
	}
	if c == nil {
		return h(srv, ss)
	}
	exit, err := c.Enter(ss.Context())
	if err != nil {
		return g.errors.ToStatus(err)
	}
	defer exit()
	return h(srv, ss)
}

// HealthReporter returns a lazy.Options.OnState that keeps one health
// status per component: SERVING only while ACTIVE. The service's overall
// status stays SERVING while dormant: a dormant service is healthy.
func HealthReporter(h *health.Server) func(string, lazy.State) {
	return func(name string, s lazy.State) {
		st := healthpb.HealthCheckResponse_NOT_SERVING
		if s == lazy.Active {
			st = healthpb.HealthCheckResponse_SERVING
		}
		h.SetServingStatus(name, st)
	}
}

// Lifecycle implements tradsys.lifecycle.v1.LifecycleService.
type Lifecycle struct {
	lifecyclev1.UnimplementedLifecycleServiceServer
	rt     *lazy.Runtime
	errors grpcerr.Table
	// Main is the component Activate/Deactivate use when none is named.
	Main string
}

// NewLifecycle serves rt's components, answering errors with errs.
func NewLifecycle(rt *lazy.Runtime, main string, errs grpcerr.Table) *Lifecycle {
	return &Lifecycle{rt: rt, Main: main, errors: errs}
}

func (l *Lifecycle) pick(name string) (*lazy.Component, error) {
	if name == "" {
		name = l.Main
	}
	c, err := l.rt.Get(name)
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "component %q is not served here", name)
	}
	return c, nil
}

func statusPB(c *lazy.Component) *lifecyclev1.ComponentStatus {
	s, spec := c.Status(), c.Spec()
	return &lifecyclev1.ComponentStatus{Name: s.Name, State: coordinatorv1.ComponentState(s.State), Cause: s.Cause,
		MemoryBytes: spec.MemoryBytes, Priority: spec.Priority, LeaseId: s.LeaseID, InFlight: int32(s.InFlight), Queued: int32(s.Queued)}
}

func (l *Lifecycle) GetState(_ context.Context, r *lifecyclev1.GetStateRequest) (*lifecyclev1.GetStateResponse, error) {
	out := &lifecyclev1.GetStateResponse{}
	if r.GetComponent() != "" {
		c, err := l.pick(r.GetComponent())
		if err != nil {
			return nil, err
		}
		out.Components = append(out.Components, statusPB(c))
		return out, nil
	}
	for _, c := range l.rt.Components() {
		out.Components = append(out.Components, statusPB(c))
	}
	return out, nil
}

func (l *Lifecycle) Activate(ctx context.Context, r *lifecyclev1.ActivateRequest) (*lifecyclev1.ActivateResponse, error) {
	c, err := l.pick(r.GetComponent())
	if err != nil {
		return nil, err
	}
	if err := c.Activate(ctx); err != nil {
		return nil, l.errors.ToStatus(err)
	}
	waitReported(ctx, c)
	return &lifecyclev1.ActivateResponse{Component: statusPB(c)}, nil
}

func (l *Lifecycle) Deactivate(ctx context.Context, r *lifecyclev1.DeactivateRequest) (*lifecyclev1.DeactivateResponse, error) {
	c, err := l.pick(r.GetComponent())
	if err != nil {
		return nil, err
	}
	reason := r.GetReason()
	if reason == "" {
		reason = "operator"
	}
	if err := c.Deactivate(ctx, reason); err != nil {
		return nil, l.errors.ToStatus(err)
	}
	waitReported(ctx, c)
	return &lifecyclev1.DeactivateResponse{Component: statusPB(c)}, nil
}

// reportWait bounds how long an answer waits for the registry to have the
// component's new state; a coordinator that is slow to take the report
// delays the answer this much at most (the state itself has changed).
const reportWait = 2 * time.Second

// waitReported answers Activate and Deactivate only once the coordinator's
// registry shows the state the component is in: the coordinator (and the
// operator behind it) reads the same truth right after the answer.
func waitReported(ctx context.Context, c *lazy.Component) {
	wctx, cancel := context.WithTimeout(ctx, reportWait)
	defer cancel()
	_ = c.WaitReported(wctx)
}
