package server_test

import (
	"context"
	"testing"
	"time"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
)

func resize(ctx context.Context, c client, sid, lease string, bytes int64, wait time.Duration) (*coordinatorv1.ResizeMemoryResponse, error) {
	return c.ResizeMemory(ctx, &coordinatorv1.ResizeMemoryRequest{SessionId: sid, LeaseId: lease, Bytes: bytes, WaitTimeout: durationpb.New(wait)})
}

func leaseOf(t *testing.T, c client, sid, id string) *coordinatorv1.MemoryLease {
	t.Helper()
	resp, err := c.ListLeases(ctxT(t), &coordinatorv1.ListLeasesRequest{SessionId: sid})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range resp.GetLeases() {
		if l.GetLeaseId() == id {
			return l
		}
	}
	t.Fatalf("lease %s not listed", id)
	return nil
}

func TestResizeShrinksAtOnceAndGrowsWhenItFits(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{Budget: 1000})
	ctx := ctxT(t)
	s := session(t, c, "matching", 30*time.Second)
	l, err := acquire(ctx, c, s, "matching", 600, 20, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	other := session(t, c, "other", 30*time.Second)
	o, err := acquire(ctx, c, other, "other", 300, 20, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Growth by 200 with 100 free: refused after its wait, lease unchanged.
	_, err = resize(ctx, c, s, l.GetLeaseId(), 800, 100*time.Millisecond)
	wantCode(t, err, codes.ResourceExhausted, "requested 200", "free 100")
	if got := leaseOf(t, c, s, l.GetLeaseId()); got.GetBytes() != 600 || got.GetFencingToken() != l.GetFencingToken() {
		t.Fatalf("after a refused growth: %v", got)
	}
	if st := status_(t, c); st.GetUsedBytes() != 900 || st.GetMemoryWaiters() != 0 {
		t.Fatalf("after a refused growth: used %d, waiters %d", st.GetUsedBytes(), st.GetMemoryWaiters())
	}
	// A waiting growth is granted when the other lease is released.
	grown := make(chan error, 1)
	go func() {
		r, err := resize(ctx, c, s, l.GetLeaseId(), 800, 5*time.Second)
		if err == nil && (r.GetBytes() != 800 || r.GetFencingToken() != l.GetFencingToken()) {
			t.Errorf("grown lease answered %v", r)
		}
		grown <- err
	}()
	eventually(t, 5*time.Second, "the growth to wait", func() bool { return status_(t, c).GetMemoryWaiters() == 1 })
	// A second resize while one is waiting is refused as in progress.
	_, err = resize(ctx, c, s, l.GetLeaseId(), 300, 0)
	wantCode(t, err, codes.Unavailable, "in progress")
	if _, err := c.ReleaseMemory(ctx, &coordinatorv1.ReleaseMemoryRequest{SessionId: other, LeaseId: o.GetLeaseId()}); err != nil {
		t.Fatal(err)
	}
	if err := <-grown; err != nil {
		t.Fatalf("growth after the release: %v", err)
	}
	if got := leaseOf(t, c, s, l.GetLeaseId()); got.GetBytes() != 800 {
		t.Fatalf("lease after growth: %v", got)
	}
	// Shrinking is immediate and frees the bytes for others.
	if r, err := resize(ctx, c, s, l.GetLeaseId(), 100, 0); err != nil || r.GetBytes() != 100 {
		t.Fatalf("shrink: %v %v", r, err)
	}
	if _, err := acquire(ctx, c, other, "other", 900, 20, false, 0); err != nil {
		t.Fatalf("the shrunk bytes are not free: %v", err)
	}
	// Reporting use without a size change.
	used := int64(42)
	if _, err := c.ResizeMemory(ctx, &coordinatorv1.ResizeMemoryRequest{SessionId: s, LeaseId: l.GetLeaseId(), Bytes: 100, UsedBytes: &used}); err != nil {
		t.Fatal(err)
	}
	if got := leaseOf(t, c, s, l.GetLeaseId()); got.GetUsedBytes() != 42 || got.UsedBytes == nil {
		t.Fatalf("used not recorded: %v", got)
	}
}

// A growth preempts as an acquire at the lease's priority would: strictly
// less important preemptible leases only.
func TestResizeGrowthPreemptsLowerPriority(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{Budget: 1000, PreemptGrace: 200 * time.Millisecond})
	ctx := ctxT(t)
	s := session(t, c, "matching", 30*time.Second)
	l, err := acquire(ctx, c, s, "matching", 500, 20, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	low := session(t, c, "strategy", 30*time.Second)
	same, err := acquire(ctx, c, low, "same-priority", 200, 20, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	victim, err := acquire(ctx, c, low, "strategy", 300, 30, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	r, err := resize(ctx, c, s, l.GetLeaseId(), 800, 5*time.Second)
	if err != nil || r.GetBytes() != 800 {
		t.Fatalf("growth with preemption: %v %v", r, err)
	}
	leases, err := c.ListLeases(ctx, &coordinatorv1.ListLeasesRequest{SessionId: low})
	if err != nil {
		t.Fatal(err)
	}
	if len(leases.GetLeases()) != 1 || leases.GetLeases()[0].GetLeaseId() != same.GetLeaseId() {
		t.Fatalf("want only %s (same priority) left of the strategy's, not %s: %v", same.GetLeaseId(), victim.GetLeaseId(), leases.GetLeases())
	}
	// Growing a preempted lease is refused: it is to be released.
	hi := session(t, c, "gateway", 30*time.Second)
	go func() { _, _ = acquire(ctx, c, hi, "gateway", 200, 5, false, 5*time.Second) }()
	eventually(t, 5*time.Second, "the notice", func() bool { return leaseOf(t, c, low, same.GetLeaseId()).GetRevokeAt() != nil })
	_, err = resize(ctx, c, low, same.GetLeaseId(), 300, time.Second)
	wantCode(t, err, codes.FailedPrecondition, "being revoked")
}

func TestResizeBadInput(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{Budget: 1000})
	ctx := ctxT(t)
	s := session(t, c, "a", 30*time.Second)
	b := session(t, c, "b", 30*time.Second)
	l, err := acquire(ctx, c, s, "a", 100, 20, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = resize(ctx, c, s, l.GetLeaseId(), 0, 0)
	wantCode(t, err, codes.InvalidArgument, "bytes")
	_, err = resize(ctx, c, s, l.GetLeaseId(), 1001, 0)
	wantCode(t, err, codes.InvalidArgument, "budget")
	_, err = resize(ctx, c, s, "nope", 10, 0)
	wantCode(t, err, codes.NotFound, "nope")
	_, err = resize(ctx, c, b, l.GetLeaseId(), 10, 0)
	wantCode(t, err, codes.PermissionDenied)
	neg := int64(-1)
	_, err = c.ResizeMemory(ctx, &coordinatorv1.ResizeMemoryRequest{SessionId: s, LeaseId: l.GetLeaseId(), Bytes: 10, UsedBytes: &neg})
	wantCode(t, err, codes.InvalidArgument, "used_bytes")
}

// A component's growth never preempts its own plugins (the matching
// engine, priority 20, runs every order through its algorithm plugin,
// priority 30): the growth is refused instead, and the plugin stays.
// Another session's request at the same priority may still preempt it.
func TestGrowthDoesNotPreemptOwnPlugin(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{Budget: 1000, PreemptGrace: 200 * time.Millisecond})
	ctx := ctxT(t)
	s := session(t, c, "matching", 30*time.Second)
	engine, err := acquire(ctx, c, s, "matching", 600, 20, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	algo, err := acquire(ctx, c, s, "matching/algorithm/fifo", 400, 30, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = resize(ctx, c, s, engine.GetLeaseId(), 800, 300*time.Millisecond)
	wantCode(t, err, codes.ResourceExhausted, "requested 200")
	if got := leaseOf(t, c, s, algo.GetLeaseId()); got.GetRevokeAt() != nil {
		t.Fatalf("the engine's growth revoked its own algorithm plugin: %v", got)
	}
	// A plugin of the same name prefix in another session is fair game, and
	// so is this plugin for another session's request.
	other := session(t, c, "gateway", 30*time.Second)
	if _, err := acquire(ctx, c, other, "matching", 300, 20, false, 5*time.Second); err != nil {
		t.Fatalf("another session's request at priority 20 could not preempt the plugin: %v", err)
	}
	leases, err := c.ListLeases(ctx, &coordinatorv1.ListLeasesRequest{SessionId: s})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases.GetLeases() {
		if l.GetLeaseId() == algo.GetLeaseId() {
			t.Fatalf("the plugin survived another session's preemption: %v", l)
		}
	}
}

// The usage a holder reports is written with its lease, so it survives a
// leader kill: the new leader lists it without the holder reporting again.
// Reports of a size change and of the usage alone both count.
func TestReportedUsageSurvivesLeaderKill(t *testing.T) {
	etcd := coordtest.Etcd(t)
	r1 := coordtest.Replica(t, etcd, coordtest.Config{Budget: 1000, ElectionTTL: 1})
	eventually(t, 10*time.Second, "the first replica to lead", r1.Coord.IsLeader)
	r2 := coordtest.Replica(t, etcd, coordtest.Config{Budget: 1000, ElectionTTL: 1})
	c2 := coordtest.Client(t, r2.Addr())
	ctx := ctxT(t)
	s := session(t, c2, "historical", 60*time.Second)
	grown, err := acquire(ctx, c2, s, "historical", 100, 40, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	alone, err := acquire(ctx, c2, s, "matching", 100, 20, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	used := int64(150)
	if _, err := c2.ResizeMemory(ctx, &coordinatorv1.ResizeMemoryRequest{SessionId: s, LeaseId: grown.GetLeaseId(), Bytes: 200, UsedBytes: &used}); err != nil {
		t.Fatal(err)
	}
	used2 := int64(42)
	if _, err := c2.ResizeMemory(ctx, &coordinatorv1.ResizeMemoryRequest{SessionId: s, LeaseId: alone.GetLeaseId(), Bytes: 100, UsedBytes: &used2}); err != nil {
		t.Fatal(err)
	}
	r1.Kill()
	eventually(t, 15*time.Second, "the second replica to lead", r2.Coord.IsLeader)
	var g, a *coordinatorv1.MemoryLease
	eventually(t, 10*time.Second, "the new leader to list the leases", func() bool {
		resp, err := c2.ListLeases(ctx, &coordinatorv1.ListLeasesRequest{SessionId: s})
		if err != nil || len(resp.GetLeases()) != 2 {
			return false
		}
		for _, l := range resp.GetLeases() {
			switch l.GetLeaseId() {
			case grown.GetLeaseId():
				g = l
			case alone.GetLeaseId():
				a = l
			}
		}
		return g != nil && a != nil
	})
	if g.UsedBytes == nil || g.GetUsedBytes() != 150 || g.GetBytes() != 200 {
		t.Fatalf("grown lease after the leader kill: %v, want 200 bytes leased, 150 used", g)
	}
	if a.UsedBytes == nil || a.GetUsedBytes() != 42 || a.GetBytes() != 100 {
		t.Fatalf("reported lease after the leader kill: %v, want 100 bytes leased, 42 used", a)
	}
}

// Nor does a request preempt what its component depends on (registered
// dependencies, through others too), whoever holds it: the requester would
// only have to bring it back.
func TestRequestDoesNotPreemptItsDependencies(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{Budget: 1000, PreemptGrace: 200 * time.Millisecond})
	ctx := ctxT(t)
	svc := session(t, c, "connectors", 30*time.Second)
	for _, r := range []*coordinatorv1.RegisterComponentRequest{
		{Name: "connectors/exchange/binance", Endpoint: "host:1", MemoryBytes: 1, Dependencies: []string{"connectors"}, SessionId: svc},
		{Name: "connectors", Endpoint: "host:1", MemoryBytes: 1, Dependencies: []string{"feed"}, SessionId: svc},
	} {
		if _, err := c.RegisterComponent(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	other := session(t, c, "feed", 30*time.Second)
	feed, err := acquire(ctx, c, other, "feed", 600, 40, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = acquire(ctx, c, svc, "connectors/exchange/binance", 600, 10, false, 300*time.Millisecond)
	wantCode(t, err, codes.ResourceExhausted, "requested 600")
	if got := leaseOf(t, c, other, feed.GetLeaseId()); got.GetRevokeAt() != nil {
		t.Fatalf("a request revoked what it depends on (through connectors): %v", got)
	}
	// Anything else at priority 10 may still preempt it.
	if _, err := acquire(ctx, c, svc, "gateway", 600, 10, false, 5*time.Second); err != nil {
		t.Fatalf("an unrelated request could not preempt: %v", err)
	}
}
