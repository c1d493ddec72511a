// Package server is the gRPC face of the coordinator: it translates
// tradsys.coordinator.v1 requests into calls on package coord and domain
// errors into statuses (errors.go), and forwards calls that reach a
// follower replica to the leader (forward.go).
package server

import (
	"context"

	"github.com/tradsys/mesh/pkg/clientpool"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	lifecyclev1 "github.com/tradsys/mesh/proto/tradsys/lifecycle/v1"
	"github.com/tradsys/mesh/services/coordinator/coord"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Service implements tradsys.coordinator.v1.CoordinatorService.
type Service struct {
	coordinatorv1.UnimplementedCoordinatorServiceServer
	c           *coord.Coordinator
	components  *clientpool.Pool
	ids         *identities
	watchBuffer int
}

// NewService wraps a coordinator replica; components is the mesh's client
// pool (pkg/clientpool, as every service's s.Pool) through which the
// replica calls the components' LifecycleService: one shared connection per
// endpoint, health-aware, its transports closed when idle.
func NewService(c *coord.Coordinator, components *clientpool.Pool, ids *identities) *Service {
	return &Service{c: c, components: components, ids: ids, watchBuffer: DefaultWatchBuffer}
}

func priority(p *int32) int32 {
	if p == nil {
		return coord.DefaultPriority
	}
	return *p
}

func (s *Service) CreateSession(ctx context.Context, r *coordinatorv1.CreateSessionRequest) (*coordinatorv1.CreateSessionResponse, error) {
	owner := r.GetOwner()
	if caller := coord.Caller(ctx); caller != "" {
		owner = caller // with mTLS the owner is who the certificate says
	}
	sess, err := s.c.CreateSession(ctx, owner, r.GetTtl().AsDuration())
	if err != nil {
		return nil, togRPCError(err)
	}
	return &coordinatorv1.CreateSessionResponse{SessionId: sess.ID, Ttl: durationpb.New(sess.TTL), PublicId: sess.PublicID}, nil
}

func (s *Service) KeepAlive(ctx context.Context, r *coordinatorv1.KeepAliveRequest) (*coordinatorv1.KeepAliveResponse, error) {
	ttl, err := s.c.KeepAlive(ctx, r.GetSessionId())
	if err != nil {
		return nil, togRPCError(err)
	}
	return &coordinatorv1.KeepAliveResponse{Ttl: durationpb.New(ttl)}, nil
}

func (s *Service) CloseSession(ctx context.Context, r *coordinatorv1.CloseSessionRequest) (*coordinatorv1.CloseSessionResponse, error) {
	res, err := s.c.CloseSession(ctx, r.GetSessionId())
	if err != nil {
		return nil, togRPCError(err)
	}
	return &coordinatorv1.CloseSessionResponse{ReleasedLeases: int32(res.Leases), ReleasedLocks: int32(res.Locks)}, nil
}

func (s *Service) AcquireMemory(ctx context.Context, r *coordinatorv1.AcquireMemoryRequest) (*coordinatorv1.AcquireMemoryResponse, error) {
	l, err := s.c.AcquireMemory(ctx, coord.MemoryRequest{
		SessionID: r.GetSessionId(), Component: r.GetComponent(), Bytes: r.GetBytes(),
		Priority: priority(r.Priority), Preemptible: r.GetPreemptible(), Wait: r.GetWaitTimeout().AsDuration(),
		RequestID: r.GetRequestId(),
	})
	if err != nil {
		return nil, togRPCError(err)
	}
	return &coordinatorv1.AcquireMemoryResponse{LeaseId: l.ID, FencingToken: l.FencingToken, Bytes: l.Bytes}, nil
}

func (s *Service) ReleaseMemory(ctx context.Context, r *coordinatorv1.ReleaseMemoryRequest) (*coordinatorv1.ReleaseMemoryResponse, error) {
	if err := s.c.ReleaseMemory(ctx, r.GetSessionId(), r.GetLeaseId()); err != nil {
		return nil, togRPCError(err)
	}
	return &coordinatorv1.ReleaseMemoryResponse{}, nil
}

func (s *Service) ListLeases(ctx context.Context, r *coordinatorv1.ListLeasesRequest) (*coordinatorv1.ListLeasesResponse, error) {
	leases, next, err := s.c.ListLeases(coord.LeaseQuery{SessionID: r.GetSessionId(), Component: r.GetComponent(),
		Page: coord.Page{Token: r.GetPageToken(), Size: int(r.GetPageSize())}})
	if err != nil {
		return nil, togRPCError(err)
	}
	out := &coordinatorv1.ListLeasesResponse{NextPageToken: next}
	for _, l := range leases {
		out.Leases = append(out.Leases, memoryLease(l))
	}
	return out, nil
}

func memoryLease(l coord.Lease) *coordinatorv1.MemoryLease {
	ml := &coordinatorv1.MemoryLease{LeaseId: l.ID, SessionId: l.SessionID, Owner: l.Owner, Component: l.Component,
		Bytes: l.Bytes, Priority: l.Priority, Preemptible: l.Preemptible, FencingToken: l.FencingToken,
		GrantedAt: timestamppb.New(l.GrantedAt), RequestId: l.RequestID}
	if !l.RevokeAt.IsZero() {
		ml.RevokeAt = timestamppb.New(l.RevokeAt)
	}
	if l.UsedKnown {
		ml.UsedBytes = &l.Used
	}
	return ml
}

func (s *Service) ResizeMemory(ctx context.Context, r *coordinatorv1.ResizeMemoryRequest) (*coordinatorv1.ResizeMemoryResponse, error) {
	l, err := s.c.ResizeMemory(ctx, coord.ResizeRequest{SessionID: r.GetSessionId(), LeaseID: r.GetLeaseId(), Bytes: r.GetBytes(),
		Wait: r.GetWaitTimeout().AsDuration(), Used: r.GetUsedBytes(), UsedKnown: r.UsedBytes != nil})
	if err != nil {
		return nil, togRPCError(err)
	}
	out := &coordinatorv1.ResizeMemoryResponse{Bytes: l.Bytes, FencingToken: l.FencingToken}
	if !l.RevokeAt.IsZero() {
		out.RevokeAt = timestamppb.New(l.RevokeAt)
		if l.Over >= 0 {
			out.OverBytes = &l.Over
		}
	}
	return out, nil
}

func (s *Service) SetBudget(ctx context.Context, r *coordinatorv1.SetBudgetRequest) (*coordinatorv1.SetBudgetResponse, error) {
	if err := s.ids.mayOperate(ctx, "setting the memory budget"); err != nil {
		return nil, togRPCError(err)
	}
	by := coord.Caller(ctx)
	if by == "" {
		by = "SetBudget (no TLS identity)"
	}
	ch, err := s.c.SetBudget(ctx, r.GetBudgetBytes(), by)
	if err != nil {
		return nil, togRPCError(err)
	}
	out := &coordinatorv1.SetBudgetResponse{BudgetBytes: ch.Budget, PreviousBudgetBytes: ch.Previous, UsedBytes: ch.Used, OverBytes: ch.Over}
	for _, l := range ch.Preempted {
		out.Preempted = append(out.Preempted, memoryLease(l))
	}
	return out, nil
}

func (s *Service) AcquireLock(ctx context.Context, r *coordinatorv1.AcquireLockRequest) (*coordinatorv1.AcquireLockResponse, error) {
	tok, err := s.c.AcquireLock(ctx, coord.LockRequest{SessionID: r.GetSessionId(), Name: r.GetName(),
		Wait: r.GetWaitTimeout().AsDuration(), Rank: r.GetRank()})
	if err != nil {
		return nil, togRPCError(err)
	}
	return &coordinatorv1.AcquireLockResponse{FencingToken: tok}, nil
}

func (s *Service) ReleaseLock(ctx context.Context, r *coordinatorv1.ReleaseLockRequest) (*coordinatorv1.ReleaseLockResponse, error) {
	if err := s.c.ReleaseLock(ctx, r.GetSessionId(), r.GetName()); err != nil {
		return nil, togRPCError(err)
	}
	return &coordinatorv1.ReleaseLockResponse{}, nil
}

func (s *Service) ListLocks(ctx context.Context, r *coordinatorv1.ListLocksRequest) (*coordinatorv1.ListLocksResponse, error) {
	locks, next, err := s.c.ListLocks(r.GetSessionId(), coord.Page{Token: r.GetPageToken(), Size: int(r.GetPageSize())})
	if err != nil {
		return nil, togRPCError(err)
	}
	out := &coordinatorv1.ListLocksResponse{NextPageToken: next}
	for _, l := range locks {
		out.Locks = append(out.Locks, &coordinatorv1.Lock{Name: l.Name, SessionId: l.SessionID, Owner: l.Owner,
			FencingToken: l.FencingToken, Rank: l.Rank, Waiters: l.Waiters, AcquiredAt: timestamppb.New(l.AcquiredAt)})
	}
	return out, nil
}

func (s *Service) RegisterComponent(ctx context.Context, r *coordinatorv1.RegisterComponentRequest) (*coordinatorv1.RegisterComponentResponse, error) {
	comp, err := s.c.RegisterComponent(ctx, coord.Component{
		Name: r.GetName(), Endpoint: r.GetEndpoint(), MemoryBytes: r.GetMemoryBytes(), Priority: priority(r.Priority),
		Dependencies: r.GetDependencies(), InitTimeout: r.GetInitTimeout().AsDuration(), IdleTimeout: r.GetIdleTimeout().AsDuration(),
		Session: r.GetSessionId(),
	})
	if err != nil {
		return nil, togRPCError(err)
	}
	return &coordinatorv1.RegisterComponentResponse{Component: componentPB(comp)}, nil
}

func (s *Service) ListComponents(ctx context.Context, r *coordinatorv1.ListComponentsRequest) (*coordinatorv1.ListComponentsResponse, error) {
	if r.GetName() != "" {
		comp, err := s.c.Component(r.GetName())
		if err != nil {
			return nil, togRPCError(err)
		}
		return &coordinatorv1.ListComponentsResponse{Components: []*coordinatorv1.Component{componentPB(comp)}}, nil
	}
	comps, next, err := s.c.Components(coord.Page{Token: r.GetPageToken(), Size: int(r.GetPageSize())})
	if err != nil {
		return nil, togRPCError(err)
	}
	out := &coordinatorv1.ListComponentsResponse{NextPageToken: next}
	for _, c := range comps {
		out.Components = append(out.Components, componentPB(c))
	}
	return out, nil
}

func (s *Service) ActivateComponent(ctx context.Context, r *coordinatorv1.ActivateComponentRequest) (*coordinatorv1.ActivateComponentResponse, error) {
	comp, err := s.c.SetDesiredState(ctx, r.GetName(), coord.StateActive)
	if err != nil {
		return nil, togRPCError(err)
	}
	if comp, err = s.drive(ctx, comp, true); err != nil {
		return nil, err
	}
	return &coordinatorv1.ActivateComponentResponse{Component: componentPB(comp)}, nil
}

func (s *Service) DeactivateComponent(ctx context.Context, r *coordinatorv1.DeactivateComponentRequest) (*coordinatorv1.DeactivateComponentResponse, error) {
	if err := s.ids.mayOperate(ctx, "deactivating "+r.GetName()); err != nil {
		return nil, togRPCError(err)
	}
	comp, err := s.c.SetDesiredState(ctx, r.GetName(), coord.StateDormant)
	if err != nil {
		return nil, togRPCError(err)
	}
	if comp, err = s.drive(ctx, comp, false); err != nil {
		return nil, err
	}
	return &coordinatorv1.DeactivateComponentResponse{Component: componentPB(comp)}, nil
}

func (s *Service) ReportComponentState(ctx context.Context, r *coordinatorv1.ReportComponentStateRequest) (*coordinatorv1.ReportComponentStateResponse, error) {
	if _, err := s.c.ReportState(ctx, r.GetName(), coord.ComponentState(r.GetState()), r.GetCause(), r.GetSessionId()); err != nil {
		return nil, togRPCError(err)
	}
	return &coordinatorv1.ReportComponentStateResponse{}, nil
}

func (s *Service) GetStatus(ctx context.Context, _ *coordinatorv1.GetStatusRequest) (*coordinatorv1.GetStatusResponse, error) {
	st, err := s.c.Status()
	if err != nil {
		return nil, togRPCError(err)
	}
	return &coordinatorv1.GetStatusResponse{
		BudgetBytes: st.BudgetBytes, UsedBytes: st.UsedBytes, Sessions: int32(st.Sessions), Leases: int32(st.Leases),
		Locks: int32(st.Locks), Waiters: int32(st.MemoryWaiters + st.LockWaiters), Leader: st.Leader, Replica: st.Replica,
		MemoryWaiters: int32(st.MemoryWaiters), LockWaiters: int32(st.LockWaiters),
	}, nil
}

func (s *Service) Watch(r *coordinatorv1.WatchRequest, stream coordinatorv1.CoordinatorService_WatchServer) error {
	f := coord.EventFilter{SessionID: coord.PublicID(r.GetSessionId()), Component: r.GetComponent()}
	for _, t := range r.GetTypes() {
		f.Types = append(f.Types, coord.EventType(t))
	}
	// A watcher may fall watchBuffer events behind, then it is cut off
	// (RESOURCE_EXHAUSTED): that buffer is what an unread watcher can cost.
	sub := s.c.Subscribe(f, s.watchBuffer)
	defer sub.Close()
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case e, ok := <-sub.C:
			if !ok {
				if sub.Lagged() {
					return status.Errorf(codes.ResourceExhausted, "watcher fell more than %d events behind; re-watch", s.watchBuffer)
				}
				return nil
			}
			if err := stream.Send(&coordinatorv1.WatchResponse{Event: eventPB(e)}); err != nil {
				return err
			}
		}
	}
}

func componentPB(c coord.Component) *coordinatorv1.Component {
	return &coordinatorv1.Component{
		Name: c.Name, Endpoint: c.Endpoint, MemoryBytes: c.MemoryBytes, Priority: c.Priority, Dependencies: c.Dependencies,
		InitTimeout: durationpb.New(c.InitTimeout), IdleTimeout: durationpb.New(c.IdleTimeout),
		State: coordinatorv1.ComponentState(c.State), Cause: c.Cause, DesiredState: coordinatorv1.ComponentState(c.DesiredState),
		StateChangedAt: timestamppb.New(c.StateChangedAt), SessionId: c.Session, Owner: c.Owner,
	}
}

func eventPB(e coord.Event) *coordinatorv1.Event {
	pb := &coordinatorv1.Event{
		Sequence: e.Sequence, Type: coordinatorv1.EventType(e.Type), Time: timestamppb.New(e.Time),
		SessionId: e.SessionID, Owner: e.Owner, Component: e.Component, LeaseId: e.LeaseID, LockName: e.LockName,
		Bytes: e.Bytes, Priority: e.Priority, FencingToken: e.FencingToken, Message: e.Message,
		State: coordinatorv1.ComponentState(e.State),
	}
	if !e.Deadline.IsZero() {
		pb.Deadline = timestamppb.New(e.Deadline)
	}
	return pb
}

// drive calls the component's own LifecycleService to act on the intent
// just recorded, and returns the registry entry as it is afterwards. A
// component without an endpoint only has its intent recorded.
func (s *Service) drive(ctx context.Context, comp coord.Component, activate bool) (coord.Component, error) {
	if comp.Endpoint == "" {
		return comp, nil
	}
	conn, err := s.components.Conn(comp.Endpoint)
	if err != nil {
		return comp, status.Errorf(codes.Unavailable, "component %s at %s: %v", comp.Name, comp.Endpoint, err)
	}
	lc := lifecyclev1.NewLifecycleServiceClient(conn)
	if activate {
		_, err = lc.Activate(ctx, &lifecyclev1.ActivateRequest{Component: comp.Name})
	} else {
		_, err = lc.Deactivate(ctx, &lifecyclev1.DeactivateRequest{Component: comp.Name, Reason: "operator"})
	}
	if err != nil {
		st := status.Convert(err)
		code := st.Code()
		if code == codes.OK || code == codes.Unknown {
			code = codes.Unavailable
		}
		return comp, status.Errorf(code, "component %s at %s: %s", comp.Name, comp.Endpoint, st.Message())
	}
	// The component's LifecycleService answers once its own report of the
	// new state is in the registry, so the registry is the truth now; the
	// request is done, so it is no longer "desired".
	if fresh, err := s.c.ClearDesiredState(ctx, comp.Name); err == nil {
		comp = fresh
	}
	return comp, nil
}
