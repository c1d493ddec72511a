package server_test

import (
	"testing"
	"time"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Issue 9, item 2: a request id is an idempotency key per session. A
// retry with the same id, on the same leader or on the next one after a
// kill (the grant committed, its answer lost), gets the same lease, not a
// second one; the lease lists its request id for reconciliation.
func TestRetriedAcquireMemoryWithSameRequestIDGetsTheSameLease(t *testing.T) {
	etcd := coordtest.Etcd(t)
	r1 := coordtest.Replica(t, etcd, coordtest.Config{Budget: 1000, ElectionTTL: 1})
	r2 := coordtest.Replica(t, etcd, coordtest.Config{Budget: 1000, ElectionTTL: 1})
	eventually(t, 10*time.Second, "r1 to lead", r1.Coord.IsLeader)
	c1, c2 := coordtest.Client(t, r1.Addr()), coordtest.Client(t, r2.Addr())
	s := session(t, c1, "s", 30*time.Second)
	req := func(id string) *coordinatorv1.AcquireMemoryRequest {
		return &coordinatorv1.AcquireMemoryRequest{SessionId: s, Component: "c", Bytes: 400, Priority: prio(50),
			WaitTimeout: durationpb.New(time.Second), RequestId: id}
	}
	first, err := c1.AcquireMemory(ctxT(t), req("r1"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := c1.AcquireMemory(ctxT(t), req("r1"))
	if err != nil || again.GetLeaseId() != first.GetLeaseId() || again.GetFencingToken() != first.GetFencingToken() {
		t.Fatalf("retry on the same leader: %v, %v; want lease %s token %d", again, err, first.GetLeaseId(), first.GetFencingToken())
	}
	second, err := c1.AcquireMemory(ctxT(t), req("r2"))
	if err != nil {
		t.Fatal(err)
	}
	r1.Kill()
	var after *coordinatorv1.AcquireMemoryResponse
	eventually(t, 20*time.Second, "the retry to be answered by the new leader", func() bool {
		after, err = c2.AcquireMemory(ctxT(t), req("r2"))
		return err == nil
	})
	if after.GetLeaseId() != second.GetLeaseId() || after.GetFencingToken() != second.GetFencingToken() {
		t.Fatalf("retry after the leader kill got lease %s token %d; want %s token %d",
			after.GetLeaseId(), after.GetFencingToken(), second.GetLeaseId(), second.GetFencingToken())
	}
	if st := status_(t, c2); st.GetUsedBytes() != 800 || st.GetLeases() != 2 {
		t.Fatalf("used %d bytes in %d leases; want 800 in 2 (no lease granted twice)", st.GetUsedBytes(), st.GetLeases())
	}
	list, err := c2.ListLeases(ctxT(t), &coordinatorv1.ListLeasesRequest{SessionId: s})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, l := range list.GetLeases() {
		ids[l.GetLeaseId()] = l.GetRequestId()
	}
	if ids[first.GetLeaseId()] != "r1" || ids[second.GetLeaseId()] != "r2" {
		t.Fatalf("leases list request ids %v", ids)
	}
	// A new id is a new request: 800 of 1000 used, 400 more does not fit.
	if _, err := c2.AcquireMemory(ctxT(t), &coordinatorv1.AcquireMemoryRequest{SessionId: s, Component: "c", Bytes: 400, RequestId: "r3"}); err == nil {
		t.Fatal("a new request id was answered with an existing lease")
	}
}
