package lazygrpc

import (
	"context"
	"time"

	"github.com/tradsys/mesh/pkg/coordclient"
	"github.com/tradsys/mesh/pkg/lazy"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Coordinator runs the lazy runtime against the real coordinator through
// c: leases on c's session, activation of other services' components, the
// registry. package service builds it; a service never needs to.
func Coordinator(c *coordclient.Client) lazy.Coordinator { return coordinator{c} }

type coordinator struct{ c *coordclient.Client }

func (a coordinator) AcquireMemory(ctx context.Context, component string, bytes int64, priority int32, preemptible bool, wait time.Duration) (lazy.Lease, error) {
	l, err := a.c.AcquireMemory(ctx, component, bytes, priority, preemptible, wait)
	return lazy.Lease{ID: l.ID, FencingToken: l.FencingToken, Bytes: l.Bytes, Session: l.Session}, err
}

func (a coordinator) ReleaseMemory(ctx context.Context, l lazy.Lease) error {
	return a.c.ReleaseMemory(ctx, coordclient.MemoryLease{ID: l.ID, FencingToken: l.FencingToken, Bytes: l.Bytes, Session: l.Session})
}

// ResizeMemory makes lazy.Resizer of the real coordinator.
func (a coordinator) ResizeMemory(ctx context.Context, l lazy.Lease, bytes, used int64, wait time.Duration) (lazy.Lease, error) {
	n, err := a.c.ResizeMemory(ctx, coordclient.MemoryLease{ID: l.ID, FencingToken: l.FencingToken, Bytes: l.Bytes, Session: l.Session}, bytes, used, wait)
	return lazy.Lease{ID: n.ID, FencingToken: n.FencingToken, Bytes: n.Bytes, Session: n.Session, RevokeAt: n.RevokeAt, Over: n.Over}, err
}

func (a coordinator) ActivateRemote(ctx context.Context, name string) error {
	_, err := a.c.API().ActivateComponent(ctx, &coordinatorv1.ActivateComponentRequest{Name: name})
	return err
}

// Register registers the component under the process's session: the
// registry row is the session's, and goes DORMANT when the session ends.
func (a coordinator) Register(ctx context.Context, s lazy.Spec, endpoint string) error {
	sid, err := a.c.Session(ctx)
	if err != nil {
		return err
	}
	p := s.Priority
	_, err = a.c.API().RegisterComponent(ctx, &coordinatorv1.RegisterComponentRequest{
		Name: s.Name, Endpoint: endpoint, MemoryBytes: s.MemoryBytes, Priority: &p, Dependencies: s.Dependencies,
		InitTimeout: durationpb.New(s.InitTimeout), IdleTimeout: durationpb.New(max(s.IdleTimeout, 0)), SessionId: sid,
	})
	return err
}

func (a coordinator) Report(ctx context.Context, name string, st lazy.State, cause string) error {
	_, err := a.c.API().ReportComponentState(ctx, &coordinatorv1.ReportComponentStateRequest{
		Name: name, State: coordinatorv1.ComponentState(st), Cause: cause, SessionId: a.c.CurrentSession()})
	return err
}
