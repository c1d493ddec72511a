package faulttest

import (
	"context"
	"testing"
	"time"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

func newSession(t testing.TB, c coordinatorv1.CoordinatorServiceClient, owner string) string {
	t.Helper()
	var id string
	waitFor(t, 30*time.Second, "a session for "+owner, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := c.CreateSession(ctx, &coordinatorv1.CreateSessionRequest{Owner: owner, Ttl: durationpb.New(60 * time.Second)})
		id = resp.GetSessionId()
		return err == nil
	})
	return id
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
