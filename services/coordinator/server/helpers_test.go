package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

type client = coordinatorv1.CoordinatorServiceClient

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func session(t testing.TB, c client, owner string, ttl time.Duration) string {
	t.Helper()
	resp, err := c.CreateSession(ctxT(t), &coordinatorv1.CreateSessionRequest{Owner: owner, Ttl: durationpb.New(ttl)})
	if err != nil {
		t.Fatalf("CreateSession(%s): %v", owner, err)
	}
	return resp.GetSessionId()
}

func prio(p int32) *int32 { return &p }

func acquire(ctx context.Context, c client, sid, comp string, bytes int64, p int32, preemptible bool, wait time.Duration) (*coordinatorv1.AcquireMemoryResponse, error) {
	return c.AcquireMemory(ctx, &coordinatorv1.AcquireMemoryRequest{SessionId: sid, Component: comp, Bytes: bytes,
		Priority: prio(p), Preemptible: preemptible, WaitTimeout: durationpb.New(wait)})
}

func lock(ctx context.Context, c client, sid, name string, wait time.Duration) (*coordinatorv1.AcquireLockResponse, error) {
	return c.AcquireLock(ctx, &coordinatorv1.AcquireLockRequest{SessionId: sid, Name: name, WaitTimeout: durationpb.New(wait)})
}

func unlock(ctx context.Context, c client, sid, name string) error {
	_, err := c.ReleaseLock(ctx, &coordinatorv1.ReleaseLockRequest{SessionId: sid, Name: name})
	return err
}

func wantCode(t testing.TB, err error, code codes.Code, contains ...string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("want %s, got %v", code, err)
	}
	msg := status.Convert(err).Message()
	for _, s := range contains {
		// A session is named by its public id; its secret never shows.
		if pub, secret, ok := strings.Cut(s, "."); ok && len(secret) == 32 {
			if strings.Contains(msg, secret) {
				t.Fatalf("error %q reveals the secret of session %s", msg, pub)
			}
			s = pub
		}
		if !strings.Contains(msg, s) {
			t.Fatalf("error %q does not mention %q", msg, s)
		}
	}
}

func status_(t testing.TB, c client) *coordinatorv1.GetStatusResponse {
	t.Helper()
	st, err := c.GetStatus(ctxT(t), &coordinatorv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}
