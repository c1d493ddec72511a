package server_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"google.golang.org/grpc/codes"
)

// Issue 9, item 3b: 200 small waiters granted at once. One etcd
// transaction for all of them would exceed etcd's 128 operations; the
// writer must cut the batch so that every one is granted in the same term.
func TestTwoHundredWaitersGrantedAtOnceWithinEtcdTxnLimits(t *testing.T) {
	const n, each = 200, 1000
	_, c := coordtest.Start(t, coordtest.Config{Budget: n * each})
	ctx := ctxT(t)
	holder := session(t, c, "holder", 30*time.Second)
	big, err := acquire(ctx, c, holder, "big", n*each, 50, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	sessions := make([]string, 10)
	for i := range sessions {
		sessions[i] = session(t, c, fmt.Sprint("w", i), 30*time.Second)
	}
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := acquire(ctx, c, sessions[i%len(sessions)], fmt.Sprint("small/", i), each, 50, false, 30*time.Second)
			errs <- err
		}()
	}
	eventually(t, 20*time.Second, "200 memory waiters", func() bool { return status_(t, c).GetMemoryWaiters() == n })
	if _, err := c.ReleaseMemory(ctx, &coordinatorv1.ReleaseMemoryRequest{SessionId: holder, LeaseId: big.GetLeaseId()}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			failed++
			t.Log(err)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d waiters were not granted", failed, n)
	}
	if st := status_(t, c); st.GetUsedBytes() != n*each || st.GetLeases() != n {
		t.Fatalf("used %d bytes in %d leases, want %d in %d", st.GetUsedBytes(), st.GetLeases(), n*each, n)
	}
}

// Issue 9, item 3a: registry records larger than etcd accepts are refused
// with INVALID_ARGUMENT naming the field, before they reach etcd, and the
// leader goes on serving in the same term (a memory waiter queued meanwhile
// is granted, not failed with NOT_LEADER).
func TestOversizedRegistryRecordsRefusedBeforeEtcd(t *testing.T) {
	// The replica believes etcd takes requests of 64 KiB: records above
	// 8 KiB are refused by the coordinator itself.
	_, c := coordtest.Start(t, coordtest.Config{Budget: 1000, MaxRequestBytes: 64 << 10})
	ctx := ctxT(t)
	s := session(t, c, "s", 30*time.Second)
	full, err := acquire(ctx, c, s, "full", 1000, 50, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	waiter := make(chan error, 1)
	go func() {
		_, err := acquire(ctx, c, s, "waiter", 10, 50, false, 30*time.Second)
		waiter <- err
	}()
	eventually(t, 10*time.Second, "a memory waiter", func() bool { return status_(t, c).GetMemoryWaiters() == 1 })

	dep := strings.Repeat("d", 250)
	many := make([]string, 7000) // the 1.8 MB record
	for i := range many {
		many[i] = fmt.Sprintf("%s%d", dep, i)
	}
	_, err = c.RegisterComponent(ctx, &coordinatorv1.RegisterComponentRequest{Name: "huge", Dependencies: many})
	wantCode(t, err, codes.InvalidArgument, "dependencies")

	_, err = c.RegisterComponent(ctx, &coordinatorv1.RegisterComponentRequest{Name: "big", Dependencies: many[:100]})
	wantCode(t, err, codes.InvalidArgument, "dependencies", "bytes")

	if _, err := c.ReleaseMemory(ctx, &coordinatorv1.ReleaseMemoryRequest{SessionId: s, LeaseId: full.GetLeaseId()}); err != nil {
		t.Fatal(err)
	}
	if err := <-waiter; err != nil {
		t.Fatalf("a waiter of the same term: %v", err)
	}
	if _, err := c.RegisterComponent(ctx, &coordinatorv1.RegisterComponentRequest{Name: "small", Dependencies: many[:10]}); err != nil {
		t.Fatal(err)
	}
}
