package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/config"
	"github.com/tradsys/mesh/pkg/grpcserver"
	"github.com/tradsys/mesh/pkg/proctest"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coord"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"github.com/tradsys/mesh/services/coordinator/server"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// actAs tries every session-acting RPC with session id sid and returns
// the answers by name.
func actAs(c client, sid string) map[string]error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := map[string]error{}
	_, out["KeepAlive"] = c.KeepAlive(ctx, &coordinatorv1.KeepAliveRequest{SessionId: sid})
	out["ReleaseLock"] = unlock(ctx, c, sid, "L")
	_, out["AcquireLock"] = lock(ctx, c, sid, "M", 0)
	_, out["AcquireMemory"] = acquire(ctx, c, sid, "x", 1, 50, false, 0)
	_, out["ResizeMemory"] = resize(ctx, c, sid, "some-lease", 1, 0)
	_, out["CloseSession"] = c.CloseSession(ctx, &coordinatorv1.CloseSessionRequest{SessionId: sid})
	return out
}

// Issue 9, item 10: a session id read from a list, an event or an error
// (its public id), or guessed, does not let anyone act for the session:
// the session_id CreateSession returns is a capability with a 128-bit
// secret, and nothing the coordinator shows carries the secret.
func TestKnowingAPublicSessionIDIsNotEnoughToAct(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{Budget: 1000})
	ctx := ctxT(t)
	watch, err := c.Watch(ctx, &coordinatorv1.WatchRequest{Types: []coordinatorv1.EventType{coordinatorv1.EventType_EVENT_TYPE_SESSION_CREATED}})
	if err != nil {
		t.Fatal(err)
	}
	created, err := c.CreateSession(ctx, &coordinatorv1.CreateSessionRequest{Owner: "a", Ttl: durationpb.New(30 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	a, pub := created.GetSessionId(), created.GetPublicId()
	if pub == "" || a == pub || !strings.HasPrefix(a, pub+".") {
		t.Fatalf("session_id %q, public_id %q: want a capability <public>.<secret>", a, pub)
	}
	if _, err := lock(ctx, c, a, "L", 0); err != nil {
		t.Fatal(err)
	}
	lease, err := acquire(ctx, c, a, "x", 100, 50, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := session(t, c, "b", 30*time.Second)

	// What a stranger can read: the public id, never the capability.
	ev, err := watch.Recv()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{"Watch event": ev.GetEvent().GetSessionId()}
	locks, err := c.ListLocks(ctx, &coordinatorv1.ListLocksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	seen["ListLocks"] = locks.GetLocks()[0].GetSessionId()
	leases, err := c.ListLeases(ctx, &coordinatorv1.ListLeasesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	seen["ListLeases"] = leases.GetLeases()[0].GetSessionId()
	_, err = c.ReleaseMemory(ctx, &coordinatorv1.ReleaseMemoryRequest{SessionId: b, LeaseId: lease.GetLeaseId()})
	wantCode(t, err, codes.PermissionDenied, a)
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			seen["PERMISSION_DENIED ErrorInfo"] = info.GetMetadata()["holder_session"]
		}
	}
	for where, id := range seen {
		if id != pub {
			t.Errorf("%s shows session %q, want the public id %q", where, id, pub)
		}
	}

	// Acting with the public id, or with a guessed secret, is refused.
	secret := strings.Repeat("0", 32)
	for _, id := range []string{pub, pub + "." + secret} {
		for rpc, err := range actAs(c, id) {
			if status.Code(err) != codes.PermissionDenied {
				t.Errorf("%s with session id %q: %v, want PERMISSION_DENIED", rpc, id, err)
			}
		}
	}
	// The session and all it holds are untouched; its holder still acts.
	if st := status_(t, c); st.GetLocks() != 1 || st.GetUsedBytes() != 100 || st.GetSessions() != 2 {
		t.Fatalf("after the strangers: %v", st)
	}
	if err := unlock(ctx, c, a, "L"); err != nil {
		t.Fatal(err)
	}
}

func tlsClient(t *testing.T, addr string, cert proctest.Cert) client {
	t.Helper()
	creds, err := (config.TLS{CertFile: cert.Cert, KeyFile: cert.Key, CAFile: cert.CA}).ClientCredentials()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return coordinatorv1.NewCoordinatorServiceClient(conn)
}

// Issue 9, item 11: with mTLS a session belongs to the certificate's
// identity. Another identity holding the very session id cannot act for it,
// on the leader or through a follower (which forwards the caller's identity,
// or renews the session itself); a session asked for in another's name is
// owned by the caller; operator RPCs need an operator identity.
func TestMutualTLSBindsSessionsToTheCertificate(t *testing.T) {
	certs := proctest.PKI(t, t.TempDir(), "coordinator", "a", "b", "operator")
	cc := certs["coordinator"]
	etcd := coordtest.Etcd(t)
	cfg := coordtest.Config{TLSCert: cc.Cert, TLSKey: cc.Key, TLSCA: cc.CA}
	leader := coordtest.Replica(t, etcd, cfg)
	eventually(t, 10*time.Second, "a leader", leader.Coord.IsLeader)
	follower := coordtest.Replica(t, etcd, cfg)
	ctx := ctxT(t)
	for _, addr := range []string{leader.Addr(), follower.Addr()} {
		ca, cb, cop := tlsClient(t, addr, certs["a"]), tlsClient(t, addr, certs["b"]), tlsClient(t, addr, certs["operator"])
		a := session(t, ca, "a", 30*time.Second)
		if _, err := lock(ctx, ca, a, "L", 0); err != nil {
			t.Fatal(err)
		}
		// b has a's whole session id, and still cannot act for a.
		for rpc, err := range actAs(cb, a) {
			wantCode(t, err, codes.PermissionDenied, `"a"`, `"b"`)
			_ = rpc
		}
		// b asking for a session in a's name gets one owned by b.
		fake := session(t, cb, "a", 30*time.Second)
		if _, err := lock(ctx, cb, fake, "F", 0); err != nil {
			t.Fatal(err)
		}
		locks, err := ca.ListLocks(ctx, &coordinatorv1.ListLocksRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range locks.GetLocks() {
			if want := map[string]string{"L": "a", "F": "b"}[l.GetName()]; l.GetOwner() != want {
				t.Errorf("via %s: lock %s owned by %q, want %q", addr, l.GetName(), l.GetOwner(), want)
			}
		}
		// a still acts for its own session (through the follower too).
		if _, err := ca.KeepAlive(ctx, &coordinatorv1.KeepAliveRequest{SessionId: a}); err != nil {
			t.Fatal(err)
		}
		for _, s := range []struct {
			c  client
			id string
		}{{ca, a}, {cb, fake}} {
			if _, err := s.c.CloseSession(ctx, &coordinatorv1.CloseSessionRequest{SessionId: s.id}); err != nil {
				t.Fatal(err)
			}
		}
		// Operator RPCs.
		if _, err := ca.RegisterComponent(ctx, &coordinatorv1.RegisterComponentRequest{Name: "comp"}); err != nil {
			t.Fatal(err)
		}
		_, err = cb.DeactivateComponent(ctx, &coordinatorv1.DeactivateComponentRequest{Name: "comp"})
		wantCode(t, err, codes.PermissionDenied, "operator")
		if _, err := cop.DeactivateComponent(ctx, &coordinatorv1.DeactivateComponentRequest{Name: "comp"}); err != nil {
			t.Fatalf("operator via %s: %v", addr, err)
		}
	}
}

// Issue 9 review (a): a caller's identity forwarded by a follower is
// believed only from a configured coordinator replica. Replicas with
// certificates of their own (coordinator1, coordinator2, as deploy/pki.sh
// makes them) forward their callers' identities to each other; a client with
// a valid certificate of the mesh's CA that names another caller in the
// forwarding metadata is refused, and so is an unconfigured "replica".
func TestOnlyReplicasMayForwardACallersIdentity(t *testing.T) {
	certs := proctest.PKI(t, t.TempDir(), "coordinator1", "coordinator2", "coordinator3", "a", "b", "operator")
	etcd := coordtest.Etcd(t)
	replica := func(name string) coordtest.Config {
		c := certs[name]
		return coordtest.Config{TLSCert: c.Cert, TLSKey: c.Key, TLSCA: c.CA, ReplicaIdentities: []string{"coordinator1", "coordinator2"}}
	}
	leader := coordtest.Replica(t, etcd, replica("coordinator1"))
	eventually(t, 10*time.Second, "a leader", leader.Coord.IsLeader)
	follower := coordtest.Replica(t, etcd, replica("coordinator2"))
	ctx := ctxT(t)

	// Through the follower, a's session is a's, and a acts for it on either replica.
	viaFollower, viaLeader := tlsClient(t, follower.Addr(), certs["a"]), tlsClient(t, leader.Addr(), certs["a"])
	a := session(t, viaFollower, "a", 30*time.Second)
	if _, err := lock(ctx, viaFollower, a, "L", 0); err != nil {
		t.Fatalf("a's lock through the follower: %v", err)
	}
	locks, err := viaLeader.ListLocks(ctx, &coordinatorv1.ListLocksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(locks.GetLocks()) != 1 || locks.GetLocks()[0].GetOwner() != "a" {
		t.Fatalf("locks after a locked through the follower: %v, want L owned by \"a\"", locks.GetLocks())
	}
	if _, err := viaLeader.KeepAlive(ctx, &coordinatorv1.KeepAliveRequest{SessionId: a}); err != nil {
		t.Fatal(err)
	}

	// b, and a third coordinator certificate nobody configured, name a as
	// the caller: refused on both replicas, whatever the call.
	forged := metadata.AppendToOutgoingContext(ctx, "x-tradsys-caller", "a", "x-tradsys-forwarded", "1")
	for _, who := range []string{"b", "coordinator3"} {
		for _, addr := range []string{leader.Addr(), follower.Addr()} {
			c := tlsClient(t, addr, certs[who])
			_, err := c.ReleaseLock(forged, &coordinatorv1.ReleaseLockRequest{SessionId: a, Name: "L"})
			wantCode(t, err, codes.PermissionDenied, "replica", `"`+who+`"`)
			_, err = c.CreateSession(forged, &coordinatorv1.CreateSessionRequest{Owner: "a", Ttl: durationpb.New(time.Minute)})
			wantCode(t, err, codes.PermissionDenied, "replica")
			w, err := c.Watch(forged, &coordinatorv1.WatchRequest{})
			if err == nil {
				_, err = w.Recv()
			}
			wantCode(t, err, codes.PermissionDenied, "replica")
		}
	}
	if st := status_(t, tlsClient(t, leader.Addr(), certs["operator"])); st.GetLocks() != 1 || st.GetSessions() != 1 {
		t.Fatalf("after the forgeries: %v, want a's session and lock only", st)
	}

	// A replica identity that is also an operator's is refused at start.
	_, err = server.Start(ctx, server.Options{
		Flags:         &grpcserver.Flags{Listen: "127.0.0.1:0", TLS: config.TLS{CertFile: certs["coordinator1"].Cert, KeyFile: certs["coordinator1"].Key, CAFile: certs["coordinator1"].CA}},
		EtcdEndpoints: []string{etcd}, ReplicaIdentities: []string{"operator"},
	})
	if err == nil || !strings.Contains(err.Error(), "operator") {
		t.Fatalf("replica identity = operator identity: %v, want refused", err)
	}
}

// Issue 9 review (b): a registry row is claimed (RegisterComponent) and
// moved (ReportComponentState) only with the session's credential, not its
// public id, which anyone reads from a list.
func TestRegistryRowsNeedTheSessionCredential(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{})
	ctx := ctxT(t)
	created, err := c.CreateSession(ctx, &coordinatorv1.CreateSessionRequest{Owner: "svc", Ttl: durationpb.New(30 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	full, pub := created.GetSessionId(), created.GetPublicId()
	_, err = c.RegisterComponent(ctx, &coordinatorv1.RegisterComponentRequest{Name: "comp", Endpoint: "host:1", MemoryBytes: 1, SessionId: pub})
	wantCode(t, err, codes.PermissionDenied, pub, "prove")
	if _, err := c.RegisterComponent(ctx, &coordinatorv1.RegisterComponentRequest{Name: "comp", Endpoint: "host:1", MemoryBytes: 1, SessionId: full}); err != nil {
		t.Fatal(err)
	}
	other := session(t, c, "intruder", 30*time.Second)
	_, err = c.RegisterComponent(ctx, &coordinatorv1.RegisterComponentRequest{Name: "intruder", Endpoint: "host:1", MemoryBytes: 1, SessionId: coord.PublicID(other) + "." + strings.Repeat("0", 32)})
	wantCode(t, err, codes.PermissionDenied, "prove")
	_, err = c.ReportComponentState(ctx, &coordinatorv1.ReportComponentStateRequest{Name: "comp",
		State: coordinatorv1.ComponentState_COMPONENT_STATE_ACTIVE, SessionId: coord.PublicID(other)})
	wantCode(t, err, codes.PermissionDenied, "prove")
	rows, err := c.ListComponents(ctx, &coordinatorv1.ListComponentsRequest{Name: "comp"})
	if err != nil {
		t.Fatal(err)
	}
	if row := rows.GetComponents()[0]; row.GetSessionId() != pub || row.GetOwner() != "svc" || row.GetState() != coordinatorv1.ComponentState_COMPONENT_STATE_DORMANT {
		t.Fatalf("row after the strangers: %v, want svc's, DORMANT", row)
	}
	// The holder reports with its credential; a report from a session that
	// has ended still counts (the row is not handed to it).
	if _, err := c.ReportComponentState(ctx, &coordinatorv1.ReportComponentStateRequest{Name: "comp",
		State: coordinatorv1.ComponentState_COMPONENT_STATE_ACTIVE, SessionId: full}); err != nil {
		t.Fatal(err)
	}
}
