package faulttest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Issue 9, item 1: A holds L and B waits; etcd stalls (its only member,
// the raft leader, is SIGSTOPped) while A releases. Nothing can commit
// while etcd is stopped, so every answer A gets meanwhile must say "not
// settled" (retryable), never "released" or "not held". Once etcd is back,
// A's retries settle it, and what they say is what etcd holds.
func TestRetriedReleaseLockDuringEtcdStallAnswersOnlyTheTruth(t *testing.T) {
	etcd := coordtest.StartEtcdCluster(t, 1)
	r := coordtest.Replica(t, strings.Join(etcd.Endpoints(), ","), coordtest.Config{ElectionTTL: 2})
	c := coordtest.Client(t, r.Addr())
	ctx := context.Background()
	a, b := newSession(t, c, "a"), newSession(t, c, "b")
	got, err := c.AcquireLock(ctx, &coordinatorv1.AcquireLockRequest{SessionId: a, Name: "L"})
	if err != nil {
		t.Fatal(err)
	}
	aToken := got.GetFencingToken()
	bDone := make(chan error, 1)
	go func() {
		_, err := c.AcquireLock(ctx, &coordinatorv1.AcquireLockRequest{SessionId: b, Name: "L", WaitTimeout: durationpb.New(60 * time.Second)})
		bDone <- err
	}()
	waitFor(t, 10*time.Second, "B queued on L", func() bool {
		l, err := c.ListLocks(ctx, &coordinatorv1.ListLocksRequest{})
		return err == nil && len(l.GetLocks()) == 1 && len(l.GetLocks()[0].GetWaiters()) == 1
	})

	etcd.Members[0].Pause()
	stalledUntil := time.Now().Add(7 * time.Second) // past the leader's 5 s commit timeout
	for time.Now().Before(stalledUntil) {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := c.ReleaseLock(rctx, &coordinatorv1.ReleaseLockRequest{SessionId: a, Name: "L"})
		cancel()
		switch status.Code(err) {
		case codes.DeadlineExceeded, codes.Unavailable:
		default:
			etcd.Members[0].Resume()
			t.Fatalf("ReleaseLock while etcd is stopped answered %v: nothing can have committed", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	etcd.Members[0].Resume()

	// Retry until the release settles.
	var settled error
	waitFor(t, 30*time.Second, "A's release to settle", func() bool {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, settled = c.ReleaseLock(rctx, &coordinatorv1.ReleaseLockRequest{SessionId: a, Name: "L"})
		code := status.Code(settled)
		return code == codes.OK || code == codes.FailedPrecondition
	})
	// Released or not held: either way etcd's key must not name A now.
	cli := etcd.Client(t)
	resp, err := cli.Get(ctx, "/tradsys/locks/L")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 1 {
		var rec struct{ Session string }
		_ = json.Unmarshal(resp.Kvs[0].Value, &rec)
		if rec.Session == a {
			t.Fatalf("A was told %v, yet etcd's key for L still names A's session", settled)
		}
	}
	// B gets the lock (its first wait may have ended with the old term; it
	// retries as a client would), with a token above A's.
	if err := <-bDone; err != nil {
		t.Logf("B's first wait ended with %v; retrying", err)
	}
	var bToken uint64
	waitFor(t, 30*time.Second, "B to hold L", func() bool {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		got, err := c.AcquireLock(rctx, &coordinatorv1.AcquireLockRequest{SessionId: b, Name: "L", WaitTimeout: durationpb.New(2 * time.Second)})
		bToken = got.GetFencingToken()
		return err == nil
	})
	if bToken <= aToken {
		t.Fatalf("B's token %d is not above A's %d", bToken, aToken)
	}
}
