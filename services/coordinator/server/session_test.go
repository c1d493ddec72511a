package server_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/coordclient"
	"github.com/tradsys/mesh/pkg/proctest"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"github.com/tradsys/mesh/services/coordinator/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Issue 15: one Session stream carries a session's acquires, releases and
// keep-alives; each is answered as its unary call would be, under its own
// id; a bad request fails alone; a waiting acquire does not hold up a
// release sent after it. Through the leader and through a follower (which
// relays the stream to the leader).
func TestSessionStreamAnswersEachRequestAsItsCall(t *testing.T) {
	etcd := coordtest.Etcd(t)
	r1 := coordtest.Replica(t, etcd, coordtest.Config{})
	r2 := coordtest.Replica(t, etcd, coordtest.Config{})
	eventually(t, 30*time.Second, "a leader", func() bool { return r1.Coord.IsLeader() || r2.Coord.IsLeader() })
	leader, follower := r1, r2
	if r2.Coord.IsLeader() {
		leader, follower = r2, r1
	}
	for _, tc := range []struct {
		name string
		addr string
	}{{"leader", leader.Addr()}, {"follower", follower.Addr()}} {
		t.Run(tc.name, func(t *testing.T) {
			c := coordtest.Client(t, tc.addr)
			ctx := ctxT(t)
			a := session(t, c, "stream-a-"+tc.name, time.Minute)
			b := session(t, c, "stream-b-"+tc.name, time.Minute)
			lockName := "stream/" + tc.name
			stream, err := c.Session(ctx)
			if err != nil {
				t.Fatal(err)
			}
			send := func(id uint64, req *coordinatorv1.SessionRequest) {
				t.Helper()
				req.Id = id
				if err := stream.Send(req); err != nil {
					t.Fatalf("send %d: %v", id, err)
				}
			}
			recv := func() *coordinatorv1.SessionResponse {
				t.Helper()
				resp, err := stream.Recv()
				if err != nil {
					t.Fatalf("recv: %v", err)
				}
				return resp
			}
			// Answers may come in any order: collect them by id.
			got := map[uint64]*coordinatorv1.SessionResponse{}
			await := func(ids ...uint64) {
				t.Helper()
				for {
					missing := false
					for _, id := range ids {
						missing = missing || got[id] == nil
					}
					if !missing {
						return
					}
					r := recv()
					if got[r.GetId()] != nil {
						t.Fatalf("request %d answered twice", r.GetId())
					}
					got[r.GetId()] = r
				}
			}
			ok := func(id uint64) *coordinatorv1.SessionResponse {
				t.Helper()
				if r := got[id]; r.GetCode() != 0 {
					t.Fatalf("request %d refused: %s: %s", id, codes.Code(r.GetCode()), r.GetMessage())
				}
				return got[id]
			}

			send(1, &coordinatorv1.SessionRequest{Request: &coordinatorv1.SessionRequest_AcquireMemory{
				AcquireMemory: &coordinatorv1.AcquireMemoryRequest{SessionId: a, Component: "stream", Bytes: 100}}})
			send(2, &coordinatorv1.SessionRequest{Request: &coordinatorv1.SessionRequest_AcquireLock{
				AcquireLock: &coordinatorv1.AcquireLockRequest{SessionId: a, Name: lockName}}})
			send(3, &coordinatorv1.SessionRequest{Request: &coordinatorv1.SessionRequest_AcquireMemory{
				AcquireMemory: &coordinatorv1.AcquireMemoryRequest{SessionId: a, Component: "stream", Bytes: -1}}})
			send(4, &coordinatorv1.SessionRequest{}) // no request at all
			send(5, &coordinatorv1.SessionRequest{Request: &coordinatorv1.SessionRequest_KeepAlive{
				KeepAlive: &coordinatorv1.KeepAliveRequest{SessionId: a}}})
			send(6, &coordinatorv1.SessionRequest{Request: &coordinatorv1.SessionRequest_ReleaseMemory{
				ReleaseMemory: &coordinatorv1.ReleaseMemoryRequest{SessionId: a, LeaseId: "no-such-lease"}}})
			await(1, 2, 3, 4, 5, 6)
			lease := ok(1).GetAcquireMemory()
			if lease.GetLeaseId() == "" || lease.GetFencingToken() == 0 || lease.GetBytes() != 100 {
				t.Fatalf("acquire_memory answered %v", lease)
			}
			aToken := ok(2).GetAcquireLock().GetFencingToken()
			if aToken == 0 {
				t.Fatal("acquire_lock answered no fencing token")
			}
			for id, want := range map[uint64]struct {
				code codes.Code
				text string
			}{3: {codes.InvalidArgument, "bytes"}, 4: {codes.InvalidArgument, "request"}, 6: {codes.NotFound, "no-such-lease"}} {
				if r := got[id]; codes.Code(r.GetCode()) != want.code || !strings.Contains(r.GetMessage(), want.text) {
					t.Fatalf("request %d answered %s %q, want %s naming %q", id, codes.Code(r.GetCode()), r.GetMessage(), want.code, want.text)
				}
			}
			if ttl := ok(5).GetKeepAlive().GetTtl().AsDuration(); ttl <= 0 {
				t.Fatalf("keep_alive answered ttl %v", ttl)
			}

			// b waits for the lock a holds; a's release, sent after, is
			// served meanwhile and hands the lock to b.
			send(7, &coordinatorv1.SessionRequest{Request: &coordinatorv1.SessionRequest_AcquireLock{
				AcquireLock: &coordinatorv1.AcquireLockRequest{SessionId: b, Name: lockName, WaitTimeout: durationpb.New(30 * time.Second)}}})
			eventually(t, 30*time.Second, "b queued on the lock", func() bool {
				l, err := c.ListLocks(ctx, &coordinatorv1.ListLocksRequest{})
				if err != nil {
					return false
				}
				for _, lk := range l.GetLocks() {
					if lk.GetName() == lockName && len(lk.GetWaiters()) == 1 {
						return true
					}
				}
				return false
			})
			send(8, &coordinatorv1.SessionRequest{Request: &coordinatorv1.SessionRequest_ReleaseLock{
				ReleaseLock: &coordinatorv1.ReleaseLockRequest{SessionId: a, Name: lockName}}})
			send(9, &coordinatorv1.SessionRequest{Request: &coordinatorv1.SessionRequest_ReleaseMemory{
				ReleaseMemory: &coordinatorv1.ReleaseMemoryRequest{SessionId: a, LeaseId: lease.GetLeaseId()}}})
			await(7, 8, 9)
			ok(8)
			ok(9)
			if bToken := ok(7).GetAcquireLock().GetFencingToken(); bToken <= aToken {
				t.Fatalf("b's fencing token %d is not above a's %d", bToken, aToken)
			}
			// What the stream did is what the unary calls see.
			leases, err := c.ListLeases(ctx, &coordinatorv1.ListLeasesRequest{SessionId: a})
			if err != nil || len(leases.GetLeases()) != 0 {
				t.Fatalf("a's leases after release: %v, %v", leases.GetLeases(), err)
			}
			wantCode(t, unlock(ctx, c, a, lockName), codes.FailedPrecondition)
			if err := unlock(ctx, c, b, lockName); err != nil {
				t.Fatalf("b releases the lock it was handed: %v", err)
			}
			if err := stream.CloseSend(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Issue 15: coordclient with SessionStream sends its acquires and releases
// on the stream and keeps the unary calls' answers and retries: a refusal
// is the same Refusal, and after the leader it talked to is killed the
// next requests go through (the stream is reopened, the request retried
// with its id) and the budget still holds.
func TestCoordclientOverSessionStreamSurvivesLeaderKill(t *testing.T) {
	etcd := coordtest.Etcd(t)
	// The client knows the third replica's address before it runs: its
	// port is held until then.
	ports := []*proctest.Port{proctest.ReservePort(t), proctest.ReservePort(t), proctest.ReservePort(t)}
	addrs := []string{ports[0].Addr, ports[1].Addr, ports[2].Addr}
	rs := []*server.Running{
		coordtest.Replica(t, etcd, coordtest.Config{ElectionTTL: 2, Budget: 1000, Listener: ports[0].Listener(t)}),
		coordtest.Replica(t, etcd, coordtest.Config{ElectionTTL: 2, Budget: 1000, Listener: ports[1].Listener(t)}),
	}
	eventually(t, 30*time.Second, "a leader", func() bool { return leaderOf(rs) != nil })
	cl, err := coordclient.Dial(coordclient.Options{Addresses: addrs, Owner: "streamer", TTL: 10 * time.Second, SessionStream: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close(context.Background()) })
	ctx := ctxT(t)

	l1, err := cl.AcquireMemory(ctx, "stream/a", 600, 50, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Does not fit now (600 of 1000 held) and may not wait: refused with
	// the unary call's status and numbers.
	_, err = cl.AcquireMemory(ctx, "stream/b", 600, 50, false, 0)
	var refusal *coordclient.Refusal
	if !errors.As(err, &refusal) || refusal.Status.Code() != codes.ResourceExhausted || !strings.Contains(refusal.Error(), "1000") {
		t.Fatalf("over-budget acquire on the stream: %v", err)
	}
	tok1, err := cl.AcquireLock(ctx, "stream/L", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ReleaseLock(ctx, "stream/L"); err != nil {
		t.Fatal(err)
	}

	leader := leaderOf(rs)
	leader.Kill()
	for i, r := range rs {
		if r == leader {
			rs[i] = nil
		}
	}
	rs = append(rs, coordtest.Replica(t, etcd, coordtest.Config{ElectionTTL: 2, Budget: 1000, Listener: ports[2].Listener(t)}))

	// Across the failover: the held lease is still counted, the lock's
	// token still grows, a release goes through.
	_, err = cl.AcquireMemory(ctx, "stream/c", 600, 50, false, 0)
	if !errors.As(err, &refusal) || refusal.Status.Code() != codes.ResourceExhausted {
		t.Fatalf("over-budget acquire after the failover: %v", err)
	}
	tok2, err := cl.AcquireLock(ctx, "stream/L", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if tok2 <= tok1 {
		t.Fatalf("lock token after the failover %d, before %d", tok2, tok1)
	}
	if err := cl.ReleaseMemory(ctx, l1); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.AcquireMemory(ctx, "stream/d", 1000, 50, false, 10*time.Second); err != nil {
		t.Fatalf("the whole budget once the first lease is released: %v", err)
	}
	// It all went on streams: no replica served a unary acquire or release.
	for _, r := range rs {
		if r == nil {
			continue
		}
		for _, m := range []string{"AcquireMemory", "ReleaseMemory", "AcquireLock", "ReleaseLock"} {
			if n := handled(t, r, coordinatorv1.CoordinatorService_ServiceDesc.ServiceName+"/"+m); n != 0 {
				t.Errorf("replica %s served %v unary %s calls", r.Addr(), n, m)
			}
		}
	}
}

// handled counts the calls of a method a replica answered (its
// tradsys_grpc_server_handled_total, every code).
func handled(t *testing.T, r *server.Running, method string) float64 {
	t.Helper()
	mfs, err := r.Server.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "tradsys_grpc_server_handled_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "method" && strings.HasSuffix(l.GetValue(), method) {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// A Session request with a string that is not UTF-8 is refused alone
// (INVALID_ARGUMENT naming the field, under its id) and the stream goes
// on, on the leader and through a follower.
func TestSessionStreamRefusesInvalidUTF8Alone(t *testing.T) {
	etcd := coordtest.Etcd(t)
	leader := coordtest.Replica(t, etcd, coordtest.Config{})
	eventually(t, 30*time.Second, "a leader", leader.Coord.IsLeader)
	follower := coordtest.Replica(t, etcd, coordtest.Config{})
	// SessionRequest{id: 7, release_lock: {session_id: "a\xffb"}}, then
	// SessionRequest{id: 8} (no request: refused for that).
	bad := []byte{0x08, 0x07, 0x2a, 0x05, 0x0a, 0x03, 'a', 0xff, 'b'}
	empty := []byte{0x08, 0x08}
	for _, addr := range []string{leader.Addr(), follower.Addr()} {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawBytes{})))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		cs, err := conn.NewStream(ctxT(t), &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, coordinatorv1.CoordinatorService_Session_FullMethodName)
		if err != nil {
			t.Fatal(err)
		}
		for _, msg := range [][]byte{bad, empty} {
			if err := cs.SendMsg(&msg); err != nil {
				t.Fatal(err)
			}
		}
		for _, want := range []struct {
			id   uint64
			text string
		}{{7, "UTF-8"}, {8, "must be one of"}} {
			var out []byte
			if err := cs.RecvMsg(&out); err != nil {
				t.Fatalf("%s: the stream ended: %v", addr, err)
			}
			var resp coordinatorv1.SessionResponse
			if err := proto.Unmarshal(out, &resp); err != nil {
				t.Fatal(err)
			}
			if resp.GetId() != want.id || codes.Code(resp.GetCode()) != codes.InvalidArgument || !strings.Contains(resp.GetMessage(), want.text) {
				t.Fatalf("%s: answer %v, want request %d refused naming %q", addr, &resp, want.id, want.text)
			}
		}
	}
}
