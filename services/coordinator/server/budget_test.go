package server_test

import (
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/proctest"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"google.golang.org/grpc/codes"
)

// The budget is stored once: a replica started with another --memory-budget
// uses the stored one, before and after a failover, and a budget set at
// run time survives the leader's death.
func TestBudgetStoredOnceAcrossReplicasAndLeaderKill(t *testing.T) {
	etcd := coordtest.Etcd(t)
	r1 := coordtest.Replica(t, etcd, coordtest.Config{Budget: 1000, ElectionTTL: 1})
	eventually(t, 10*time.Second, "the first replica to lead", r1.Coord.IsLeader)
	r2 := coordtest.Replica(t, etcd, coordtest.Config{Budget: 5000, ElectionTTL: 1})
	c2 := coordtest.Client(t, r2.Addr())
	if got := status_(t, c2).GetBudgetBytes(); got != 1000 {
		t.Fatalf("budget through the second replica %d, want the stored 1000 (its flag says 5000)", got)
	}
	sid := session(t, c2, "s", 30*time.Second)
	_, err := acquire(ctxT(t), c2, sid, "too-big", 2000, 50, false, 0)
	wantCode(t, err, codes.InvalidArgument, "budget")

	r1.Kill()
	eventually(t, 15*time.Second, "the second replica to lead", r2.Coord.IsLeader)
	if got := status_(t, c2).GetBudgetBytes(); got != 1000 {
		t.Fatalf("budget after failover %d, want the stored 1000", got)
	}
	_, err = acquire(ctxT(t), c2, sid, "too-big", 2000, 50, false, 0)
	wantCode(t, err, codes.InvalidArgument, "budget")

	// Set at run time on the new leader; a third replica with yet another
	// flag takes over with it.
	if _, err := c2.SetBudget(ctxT(t), &coordinatorv1.SetBudgetRequest{BudgetBytes: 3000}); err != nil {
		t.Fatal(err)
	}
	if _, err := acquire(ctxT(t), c2, sid, "fits-now", 2000, 50, false, 0); err != nil {
		t.Fatalf("2000 of a 3000 budget: %v", err)
	}
	r3 := coordtest.Replica(t, etcd, coordtest.Config{Budget: 100, ElectionTTL: 1})
	c3 := coordtest.Client(t, r3.Addr())
	r2.Kill()
	eventually(t, 15*time.Second, "the third replica to lead", r3.Coord.IsLeader)
	if got := status_(t, c3).GetBudgetBytes(); got != 3000 {
		t.Fatalf("budget on the third replica %d, want the 3000 set at run time", got)
	}
}

// Lowering the budget below what is leased preempts preemptible leases,
// least important first, grants nothing until the leases fit, and says so.
func TestLoweringBudgetPreemptsAndHoldsGrants(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{Budget: 1000, PreemptGrace: 300 * time.Millisecond})
	ctx := ctxT(t)
	s := session(t, c, "holder", 30*time.Second)
	watch, err := c.Watch(ctx, &coordinatorv1.WatchRequest{Types: []coordinatorv1.EventType{coordinatorv1.EventType_EVENT_TYPE_BUDGET_CHANGED}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the watch is registered
	pinned, err := acquire(ctx, c, s, "pinned", 400, 10, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	mid, err := acquire(ctx, c, s, "mid", 300, 30, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	low, err := acquire(ctx, c, s, "low", 200, 60, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	// 900 leased; 600 leaves 300 over: "low" (priority 60) and then "mid".
	resp, err := c.SetBudget(ctx, &coordinatorv1.SetBudgetRequest{BudgetBytes: 600})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetOverBytes() != 300 || resp.GetUsedBytes() != 900 || resp.GetPreviousBudgetBytes() != 1000 || resp.GetBudgetBytes() != 600 {
		t.Fatalf("SetBudget answered %v, want 300 over of 900 used, 1000 -> 600", resp)
	}
	var asked []string
	for _, l := range resp.GetPreempted() {
		asked = append(asked, l.GetLeaseId())
		if l.GetRevokeAt() == nil {
			t.Fatalf("preempted lease %s without a deadline", l.GetLeaseId())
		}
	}
	if len(asked) != 2 || asked[0] != low.GetLeaseId() || asked[1] != mid.GetLeaseId() {
		t.Fatalf("asked to go %v, want low %s then mid %s", asked, low.GetLeaseId(), mid.GetLeaseId())
	}
	ev, err := watch.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if ev.GetEvent().GetBytes() != 600 {
		t.Fatalf("budget event %v, want bytes 600", ev.GetEvent())
	}
	// Over budget: even a small request waits; the non-preemptible lease stays.
	_, err = acquire(ctx, c, s, "small", 10, 0, false, 0)
	wantCode(t, err, codes.ResourceExhausted)
	if got := status_(t, c).GetBudgetBytes(); got != 600 {
		t.Fatalf("GetStatus budget %d, want 600", got)
	}
	// After the grace period the preempted leases are gone and grants resume.
	eventually(t, 5*time.Second, "the preempted leases to go", func() bool { return status_(t, c).GetUsedBytes() == 400 })
	if _, err := acquire(ctx, c, s, "small", 10, 0, false, 0); err != nil {
		t.Fatalf("grant after the leases fit: %v", err)
	}
	leases, err := c.ListLeases(ctx, &coordinatorv1.ListLeasesRequest{SessionId: s})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases.GetLeases() {
		if l.GetLeaseId() == pinned.GetLeaseId() {
			return
		}
	}
	t.Fatalf("the non-preemptible lease is gone: %v", leases.GetLeases())
}

func TestSetBudgetBadInput(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{Budget: 1000})
	_, err := c.SetBudget(ctxT(t), &coordinatorv1.SetBudgetRequest{BudgetBytes: 0})
	wantCode(t, err, codes.InvalidArgument, "budget_bytes")
	_, err = c.SetBudget(ctxT(t), &coordinatorv1.SetBudgetRequest{BudgetBytes: -5})
	wantCode(t, err, codes.InvalidArgument, "budget_bytes")
}

// With mTLS, setting the budget is an operator RPC (as DeactivateComponent),
// through the leader or a follower; the budget records who set it.
func TestSetBudgetNeedsAnOperatorUnderMutualTLS(t *testing.T) {
	certs := proctest.PKI(t, t.TempDir(), "coordinator", "a", "operator")
	cc := certs["coordinator"]
	etcd := coordtest.Etcd(t)
	cfg := coordtest.Config{TLSCert: cc.Cert, TLSKey: cc.Key, TLSCA: cc.CA}
	leader := coordtest.Replica(t, etcd, cfg)
	eventually(t, 10*time.Second, "a leader", leader.Coord.IsLeader)
	follower := coordtest.Replica(t, etcd, cfg)
	for i, addr := range []string{leader.Addr(), follower.Addr()} {
		ca, cop := tlsClient(t, addr, certs["a"]), tlsClient(t, addr, certs["operator"])
		_, err := ca.SetBudget(ctxT(t), &coordinatorv1.SetBudgetRequest{BudgetBytes: 1 << 20})
		wantCode(t, err, codes.PermissionDenied, "operator", `"a"`)
		want := int64(2+i) << 20
		if _, err := cop.SetBudget(ctxT(t), &coordinatorv1.SetBudgetRequest{BudgetBytes: want}); err != nil {
			t.Fatalf("operator via %s: %v", addr, err)
		}
		if got := status_(t, ca).GetBudgetBytes(); got != want {
			t.Fatalf("budget %d after the operator set %d", got, want)
		}
	}
}

// A lease revoked for a lowered budget is kept if its holder shrinks it
// until the leases fit (historical shrinks its cache rather than unload):
// a shrink that is not enough leaves the notice, one that is withdraws it,
// and the lease outlives the grace period.
func TestShrinkingARevokedLeaseToFitTheBudgetKeepsIt(t *testing.T) {
	const grace = 500 * time.Millisecond
	_, c := coordtest.Start(t, coordtest.Config{Budget: 1000, PreemptGrace: grace})
	ctx := ctxT(t)
	s := session(t, c, "historical", 30*time.Second)
	pinned, err := acquire(ctx, c, s, "orders", 400, 20, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := acquire(ctx, c, s, "historical", 500, 40, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.SetBudget(ctx, &coordinatorv1.SetBudgetRequest{BudgetBytes: 600})
	if err != nil || resp.GetOverBytes() != 300 || len(resp.GetPreempted()) != 1 {
		t.Fatalf("SetBudget: %v %v", resp, err)
	}
	// A resize to the same size says how far over the leases are.
	r, err := resize(ctx, c, s, cache.GetLeaseId(), 500, 0)
	if err != nil || r.GetBytes() != 500 || r.GetRevokeAt() == nil || r.OverBytes == nil || r.GetOverBytes() != 300 {
		t.Fatalf("asking how far over: %v %v, want over_bytes 300", r, err)
	}
	// 400 + 300 is still over 600: the notice stays, 100 over.
	r, err = resize(ctx, c, s, cache.GetLeaseId(), 300, 0)
	if err != nil || r.GetBytes() != 300 || r.GetRevokeAt() == nil || r.GetOverBytes() != 100 {
		t.Fatalf("a shrink that does not fit: %v %v, want the notice kept, 100 over", r, err)
	}
	// 400 + 200 fits: the notice is withdrawn.
	r, err = resize(ctx, c, s, cache.GetLeaseId(), 200, 0)
	if err != nil || r.GetBytes() != 200 || r.GetRevokeAt() != nil || r.OverBytes != nil {
		t.Fatalf("a shrink that fits: %v %v, want the notice withdrawn", r, err)
	}
	if l := leaseOf(t, c, s, cache.GetLeaseId()); l.GetRevokeAt() != nil {
		t.Fatalf("listed with a notice after fitting: %v", l)
	}
	time.Sleep(3 * grace)
	if l := leaseOf(t, c, s, cache.GetLeaseId()); l.GetBytes() != 200 || l.GetFencingToken() != cache.GetFencingToken() {
		t.Fatalf("kept lease after the grace period: %v", l)
	}
	if st := status_(t, c); st.GetUsedBytes() != 600 {
		t.Fatalf("used %d, want 600", st.GetUsedBytes())
	}
	_ = pinned
	// A notice for a waiter (not the budget) is not withdrawn by a shrink.
	hi := session(t, c, "gateway", 30*time.Second)
	go func() { _, _ = acquire(ctx, c, hi, "gateway", 100, 5, false, 5*time.Second) }()
	eventually(t, 5*time.Second, "the notice", func() bool { return leaseOf(t, c, s, cache.GetLeaseId()).GetRevokeAt() != nil })
	r, err = resize(ctx, c, s, cache.GetLeaseId(), 100, 0)
	if err != nil || r.GetRevokeAt() == nil || r.OverBytes != nil {
		t.Fatalf("a preemption for a waiter was withdrawn by a shrink (or said a shrink would do): %v %v", r, err)
	}
}
