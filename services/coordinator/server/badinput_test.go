package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/grpcfuzz"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestBadInputGetsClearCodes(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{Budget: 1000})
	ctx := ctxT(t)
	mine := session(t, c, "mine", 10*time.Second)
	theirs := session(t, c, "theirs", 10*time.Second)
	theirLease, err := acquire(ctx, c, theirs, "x", 10, 50, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	const unknown = "7fffffffffffffff"
	neg := int32(-1)
	huge := durationpb.New(time.Hour * 1000)
	cases := []struct {
		name    string
		call    func() error
		code    codes.Code
		mention string
	}{
		{"session without owner", func() error { _, err := c.CreateSession(ctx, &coordinatorv1.CreateSessionRequest{}); return err }, codes.InvalidArgument, "owner"},
		{"session ttl under 1s", func() error {
			_, err := c.CreateSession(ctx, &coordinatorv1.CreateSessionRequest{Owner: "x", Ttl: durationpb.New(time.Millisecond)})
			return err
		}, codes.InvalidArgument, "ttl"},
		{"session ttl huge", func() error {
			_, err := c.CreateSession(ctx, &coordinatorv1.CreateSessionRequest{Owner: "x", Ttl: huge})
			return err
		}, codes.InvalidArgument, "ttl"},
		{"keepalive empty", func() error { _, err := c.KeepAlive(ctx, &coordinatorv1.KeepAliveRequest{}); return err }, codes.InvalidArgument, "session_id"},
		{"keepalive garbage id", func() error {
			_, err := c.KeepAlive(ctx, &coordinatorv1.KeepAliveRequest{SessionId: "../../etc"})
			return err
		}, codes.InvalidArgument, "session_id"},
		{"keepalive unknown", func() error {
			_, err := c.KeepAlive(ctx, &coordinatorv1.KeepAliveRequest{SessionId: unknown})
			return err
		}, codes.NotFound, unknown},
		{"close unknown", func() error {
			_, err := c.CloseSession(ctx, &coordinatorv1.CloseSessionRequest{SessionId: unknown})
			return err
		}, codes.NotFound, unknown},
		{"memory zero bytes", func() error { _, err := acquire(ctx, c, mine, "x", 0, 50, false, 0); return err }, codes.InvalidArgument, "bytes"},
		{"memory negative bytes", func() error { _, err := acquire(ctx, c, mine, "x", -5, 50, false, 0); return err }, codes.InvalidArgument, "bytes"},
		{"memory over budget", func() error { _, err := acquire(ctx, c, mine, "x", 1<<62, 50, false, 0); return err }, codes.InvalidArgument, "budget"},
		{"memory no component", func() error { _, err := acquire(ctx, c, mine, "", 1, 50, false, 0); return err }, codes.InvalidArgument, "component"},
		{"memory negative priority", func() error {
			_, err := c.AcquireMemory(ctx, &coordinatorv1.AcquireMemoryRequest{SessionId: mine, Component: "x", Bytes: 1, Priority: &neg})
			return err
		}, codes.InvalidArgument, "priority"},
		{"memory negative wait", func() error {
			_, err := c.AcquireMemory(ctx, &coordinatorv1.AcquireMemoryRequest{SessionId: mine, Component: "x", Bytes: 1, WaitTimeout: durationpb.New(-time.Second)})
			return err
		}, codes.InvalidArgument, "wait_timeout"},
		{"memory unknown session", func() error { _, err := acquire(ctx, c, unknown, "x", 1, 50, false, 0); return err }, codes.NotFound, unknown},
		{"release another session's lease", func() error {
			_, err := c.ReleaseMemory(ctx, &coordinatorv1.ReleaseMemoryRequest{SessionId: mine, LeaseId: theirLease.GetLeaseId()})
			return err
		}, codes.PermissionDenied, theirs},
		{"release unknown lease", func() error {
			_, err := c.ReleaseMemory(ctx, &coordinatorv1.ReleaseMemoryRequest{SessionId: mine, LeaseId: "nope"})
			return err
		}, codes.NotFound, "nope"},
		{"lock empty name", func() error { _, err := lock(ctx, c, mine, "", 0); return err }, codes.InvalidArgument, "name"},
		{"lock long name", func() error { _, err := lock(ctx, c, mine, strings.Repeat("x", 300), 0); return err }, codes.InvalidArgument, "name"},
		{"lock negative rank", func() error {
			_, err := c.AcquireLock(ctx, &coordinatorv1.AcquireLockRequest{SessionId: mine, Name: "x", Rank: -1})
			return err
		}, codes.InvalidArgument, "rank"},
		{"register self-dependency", func() error {
			_, err := c.RegisterComponent(ctx, &coordinatorv1.RegisterComponentRequest{Name: "a", Dependencies: []string{"a"}})
			return err
		}, codes.InvalidArgument, "dependencies"},
		{"register negative memory", func() error {
			_, err := c.RegisterComponent(ctx, &coordinatorv1.RegisterComponentRequest{Name: "a", MemoryBytes: -1})
			return err
		}, codes.InvalidArgument, "memory_bytes"},
		{"activate unknown component", func() error {
			_, err := c.ActivateComponent(ctx, &coordinatorv1.ActivateComponentRequest{Name: "ghost"})
			return err
		}, codes.NotFound, "ghost"},
		{"report bad state", func() error {
			_, err := c.ReportComponentState(ctx, &coordinatorv1.ReportComponentStateRequest{Name: "a", State: 99})
			return err
		}, codes.InvalidArgument, "state"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.call(), tc.code, tc.mention) })
	}
	// Nothing above changed the budget or crashed anything.
	if st := status_(t, c); st.GetUsedBytes() != 10 {
		t.Fatalf("used bytes %d after bad input, want 10", st.GetUsedBytes())
	}
}

func TestRegistryRefusesDependencyCycleNamingIt(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{})
	ctx := ctxT(t)
	reg := func(name string, deps ...string) error {
		_, err := c.RegisterComponent(ctx, &coordinatorv1.RegisterComponentRequest{Name: name, MemoryBytes: 1, Dependencies: deps})
		return err
	}
	for _, r := range [][]string{{"gateway", "orders"}, {"orders", "risk", "matching"}, {"risk"}} {
		if err := reg(r[0], r[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, reg("risk", "gateway"), codes.InvalidArgument, "risk -> gateway -> orders -> risk")
	list, err := c.ListComponents(ctx, &coordinatorv1.ListComponentsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetComponents()) != 3 || list.GetComponents()[2].GetState() != coordinatorv1.ComponentState_COMPONENT_STATE_DORMANT {
		t.Fatalf("components %v", list.GetComponents())
	}
	if len(list.GetComponents()[2].GetDependencies()) != 0 {
		t.Fatalf("refused registration changed risk: %v", list.GetComponents()[2])
	}
	// State reports and operator intent are recorded.
	if _, err := c.ReportComponentState(ctx, &coordinatorv1.ReportComponentStateRequest{Name: "risk", State: coordinatorv1.ComponentState_COMPONENT_STATE_FAILED, Cause: "init timed out"}); err != nil {
		t.Fatal(err)
	}
	got, err := c.ActivateComponent(ctx, &coordinatorv1.ActivateComponentRequest{Name: "risk"})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetComponent().GetState() != coordinatorv1.ComponentState_COMPONENT_STATE_FAILED || got.GetComponent().GetCause() != "init timed out" ||
		got.GetComponent().GetDesiredState() != coordinatorv1.ComponentState_COMPONENT_STATE_ACTIVE {
		t.Fatalf("component %v", got.GetComponent())
	}
}

func TestWatchThroughFollowerSeesLeaderEvents(t *testing.T) {
	etcd := coordtest.Etcd(t)
	r1 := coordtest.Replica(t, etcd, coordtest.Config{})
	r2 := coordtest.Replica(t, etcd, coordtest.Config{})
	follower := r2
	if r2.Coord.IsLeader() {
		follower = r1
	}
	c := coordtest.Client(t, follower.Addr())
	ctx := ctxT(t)
	w, err := c.Watch(ctx, &coordinatorv1.WatchRequest{Types: []coordinatorv1.EventType{coordinatorv1.EventType_EVENT_TYPE_MEMORY_GRANTED}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	s := session(t, c, "via-follower", 10*time.Second)
	got, err := acquire(ctx, c, s, "x", 5, 50, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := w.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if ev.GetEvent().GetLeaseId() != got.GetLeaseId() || ev.GetEvent().GetOwner() != "via-follower" {
		t.Fatalf("event %v", ev.GetEvent())
	}
	st := status_(t, c)
	if st.GetReplica() == follower.Addr() || st.GetLeader() != st.GetReplica() {
		t.Fatalf("status should come from the leader: %v", st)
	}
}

// FuzzRequests sends arbitrary bytes, decoded as each RPC's request, through
// the full server stack (validation, forwarding, handlers). No input may
// crash the process or surface as INTERNAL/UNKNOWN.
func FuzzRequests(f *testing.F) {
	r, c := coordtest.Start(f, coordtest.Config{Budget: 1 << 20})
	sid := session(f, c, "fuzz", time.Hour)
	conn, err := grpc.NewClient(r.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		f.Fatal(err)
	}
	defer conn.Close()
	methods := grpcfuzz.Methods(f, coordinatorv1.File_tradsys_coordinator_v1_coordinator_proto.Services().ByName("CoordinatorService"))
	grpcfuzz.Seed(f, methods, "AcquireMemory", &coordinatorv1.AcquireMemoryRequest{SessionId: sid, Component: "c", Bytes: 100})
	grpcfuzz.Seed(f, methods, "AcquireLock", &coordinatorv1.AcquireLockRequest{SessionId: sid, Name: "l"})
	grpcfuzz.Seed(f, methods, "ReleaseLock", &coordinatorv1.ReleaseLockRequest{SessionId: sid, Name: "l"})
	grpcfuzz.Seed(f, methods, "RegisterComponent", &coordinatorv1.RegisterComponentRequest{Name: "a", Dependencies: []string{"b"}})
	grpcfuzz.Seed(f, methods, "Watch", &coordinatorv1.WatchRequest{SessionId: sid})
	grpcfuzz.Seed(f, methods, "ResizeMemory", &coordinatorv1.ResizeMemoryRequest{SessionId: sid, LeaseId: "x", Bytes: 200})
	grpcfuzz.Seed(f, methods, "SetBudget", &coordinatorv1.SetBudgetRequest{BudgetBytes: 1 << 20})
	for i := range methods {
		f.Add(uint8(i), []byte{})
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		m, req, ok := grpcfuzz.Decode(methods, which, data)
		if !ok || m.Name == "CloseSession" || m.Name == "CreateSession" {
			return // those would churn the fuzz session or fill etcd with leases
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		err := grpcfuzz.Call(ctx, conn, m, req)
		if m.ServerStream && status.Code(err) == codes.DeadlineExceeded {
			err = nil // Watch follows events until cancelled
		}
		grpcfuzz.Check(t, m, req, err)
		if _, err := c.GetStatus(context.Background(), &coordinatorv1.GetStatusRequest{}); err != nil {
			t.Fatalf("coordinator unhealthy after %s(%v): %v", m.Name, req, err)
		}
	})
}

// Issue 9, item 12: an explicit ttl of 0 is the default (as unset), and
// lock names follow one syntax: no path that climbs out of the locks' keys.
func TestZeroTTLIsTheDefaultAndLockNamesHaveASyntax(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{})
	ctx := ctxT(t)
	resp, err := c.CreateSession(ctx, &coordinatorv1.CreateSessionRequest{Owner: "zero", Ttl: durationpb.New(0)})
	if err != nil {
		t.Fatalf("explicit ttl 0: %v", err)
	}
	if got := resp.GetTtl().AsDuration(); got != 10*time.Second {
		t.Fatalf("explicit ttl 0 gave %s, want the default 10s", got)
	}
	s := resp.GetSessionId()
	for _, bad := range []string{"../../sessions/x", "a//b", "/a", "a/", "a/./b", "a/../b", "a b", "a\\b", "a*b"} {
		_, err := lock(ctx, c, s, bad, 0)
		wantCode(t, err, codes.InvalidArgument, "name")
		wantCode(t, unlock(ctx, c, s, bad), codes.InvalidArgument, "name")
	}
	for _, good := range []string{"matching/algorithms", "L", "a.b:c-d_e/f..g"} {
		if _, err := lock(ctx, c, s, good, 0); err != nil {
			t.Fatalf("lock %q: %v", good, err)
		}
	}
}

// rawBytes is a codec that sends the bytes it is given as the message.
type rawBytes struct{}

func (rawBytes) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}
func (rawBytes) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}
func (rawBytes) Name() string { return "proto" }

// Issue 9, item 12: a request whose string field is not UTF-8 answers
// INVALID_ARGUMENT naming the field (it was INTERNAL), on the leader and on
// a follower, which refuses it before forwarding.
func TestInvalidUTF8IsInvalidArgument(t *testing.T) {
	etcd := coordtest.Etcd(t)
	leader := coordtest.Replica(t, etcd, coordtest.Config{})
	eventually(t, 30*time.Second, "a leader", leader.Coord.IsLeader)
	follower := coordtest.Replica(t, etcd, coordtest.Config{})
	// CreateSessionRequest{owner: "a\xffb"}: field 1, length 3.
	bad := []byte{0x0a, 0x03, 'a', 0xff, 'b'}
	for _, addr := range []string{leader.Addr(), follower.Addr()} {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawBytes{})))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var out []byte
		err = conn.Invoke(ctxT(t), coordinatorv1.CoordinatorService_CreateSession_FullMethodName, &bad, &out)
		wantCode(t, err, codes.InvalidArgument, "invalid owner", "UTF-8")
	}
	if st := status_(t, coordtest.Client(t, leader.Addr())); st.GetSessions() != 0 {
		t.Fatalf("%d sessions after invalid requests", st.GetSessions())
	}
}
