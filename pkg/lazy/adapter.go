package lazy

import (
	"context"
	"time"

	"github.com/tradsys/mesh/pkg/coordclient"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// CoordinatorAdapter runs the runtime against the real coordinator.
type CoordinatorAdapter struct{ C *coordclient.Client }

var _ Coordinator = CoordinatorAdapter{}

func (a CoordinatorAdapter) AcquireMemory(ctx context.Context, component string, bytes int64, priority int32, preemptible bool, wait time.Duration) (coordclient.MemoryLease, error) {
	return a.C.AcquireMemory(ctx, component, bytes, priority, preemptible, wait)
}

func (a CoordinatorAdapter) ReleaseMemory(ctx context.Context, l coordclient.MemoryLease) error {
	return a.C.ReleaseMemory(ctx, l)
}

func (a CoordinatorAdapter) ResizeMemory(ctx context.Context, l coordclient.MemoryLease, bytes, used int64, wait time.Duration) (coordclient.MemoryLease, error) {
	return a.C.ResizeMemory(ctx, l, bytes, used, wait)
}

func (a CoordinatorAdapter) ActivateRemote(ctx context.Context, name string) error {
	_, err := a.C.API().ActivateComponent(ctx, &coordinatorv1.ActivateComponentRequest{Name: name})
	return err
}

// Register registers the component under the process's session: the
// registry row is the session's, and goes DORMANT when the session ends.
func (a CoordinatorAdapter) Register(ctx context.Context, s Spec, endpoint string) error {
	sid, err := a.C.Session(ctx)
	if err != nil {
		return err
	}
	p := s.Priority
	_, err = a.C.API().RegisterComponent(ctx, &coordinatorv1.RegisterComponentRequest{
		Name: s.Name, Endpoint: endpoint, MemoryBytes: s.MemoryBytes, Priority: &p, Dependencies: s.Dependencies,
		InitTimeout: durationpb.New(s.InitTimeout), IdleTimeout: durationpb.New(max(s.IdleTimeout, 0)), SessionId: sid,
	})
	return err
}

func (a CoordinatorAdapter) Report(ctx context.Context, name string, st State, cause string) error {
	_, err := a.C.API().ReportComponentState(ctx, &coordinatorv1.ReportComponentStateRequest{
		Name: name, State: coordinatorv1.ComponentState(st), Cause: cause, SessionId: a.C.CurrentSession()})
	return err
}
