package grpcerr

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/tradsys/mesh/pkg/coordclient"
	"github.com/tradsys/mesh/pkg/lazy"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var errDomain = errors.New("domain error")

// table is a service table with one domain case.
var table = Table{Domain: "test.tradsys", Classify: func(err error) (Info, bool) {
	if errors.Is(err, errDomain) {
		return Info{Code: codes.FailedPrecondition, Reason: "DOMAIN", Message: "the domain says no", Meta: map[string]string{"field": "x"}}, true
	}
	return Info{}, false
}}

// TestSharedCases walks every shared error once and asserts the code, the
// reason, the domain and the metadata a client sees.
func TestSharedCases(t *testing.T) {
	coordDown := &coordclient.Unavailable{Err: status.Error(codes.Unavailable, "connection refused")}
	coordWait := &coordclient.Unavailable{Err: status.Error(codes.DeadlineExceeded, "lock wait")}
	refused, _ := status.New(codes.ResourceExhausted, "requested 100 bytes, free 50 of budget 150").WithDetails(
		&errdetails.ErrorInfo{Reason: "MEMORY_NOT_GRANTED", Domain: "coordinator.tradsys", Metadata: map[string]string{"free_bytes": "50"}})
	cases := []struct {
		name   string
		err    error
		code   codes.Code
		reason string // "" means no ErrorInfo
		meta   map[string]string
	}{
		{"component unavailable", &lazy.UnavailableError{Component: "matching", Cause: errors.New("memory lease not granted")},
			codes.Unavailable, ReasonComponentUnavailable, map[string]string{"component": "matching"}},
		{"component unavailable after its deadline", &lazy.UnavailableError{Component: "matching", Cause: context.DeadlineExceeded},
			codes.Unavailable, ReasonComponentUnavailable, map[string]string{"component": "matching"}},
		{"component refused its lease: the coordinator's answer passes through",
			&lazy.UnavailableError{Component: "matching", Cause: fmt.Errorf("memory lease not granted: %w", refused.Err())},
			codes.ResourceExhausted, "MEMORY_NOT_GRANTED", map[string]string{"free_bytes": "50"}},
		{"component's lease may not grow: it sheds load",
			fmt.Errorf("new resting orders refused: %w", &lazy.Refusal{Component: "matching", LeaseID: "L1", Used: 90, Leased: 100, Wanted: 120,
				Err: fmt.Errorf("resize: %w", refused.Err())}),
			codes.ResourceExhausted, ReasonMemoryLeaseFull, map[string]string{"component": "matching", "lease": "L1", "used_bytes": "90", "leased_bytes": "100"}},
		{"coordinator wait timeout", fmt.Errorf("lock: %w", coordWait), codes.DeadlineExceeded, ReasonCoordinatorWaitTimeout, nil},
		{"coordinator unavailable", fmt.Errorf("acquire: %w", coordDown), codes.Unavailable, ReasonCoordinatorUnavailable, nil},
		{"coordinator session lost", coordclient.ErrSessionLost, codes.Unavailable, ReasonCoordinatorUnavailable, nil},
		{"unknown component", fmt.Errorf("%w %q", lazy.ErrUnknown, "x"), codes.NotFound, ReasonComponentNotFound, nil},
		{"cancelled", fmt.Errorf("wait: %w", context.Canceled), codes.Canceled, "", nil},
		{"deadline", fmt.Errorf("wait: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "", nil},
		{"status passes through", status.Error(codes.PermissionDenied, "not yours"), codes.PermissionDenied, "", nil},
		{"unknown error", errors.New("boom"), codes.Internal, ReasonInternal, nil},
		{"domain case first", fmt.Errorf("%w: %w", errDomain, coordDown), codes.FailedPrecondition, "DOMAIN", map[string]string{"field": "x"}},
	}
	covered := map[string]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := table.ToStatus(c.err)
			if got := status.Code(err); got != c.code {
				t.Fatalf("code %v, want %v (%v)", got, c.code, err)
			}
			info := ErrorInfo(err)
			if c.reason == "" {
				if info != nil {
					t.Fatalf("unexpected ErrorInfo %v", info)
				}
				return
			}
			domain := "test.tradsys"
			if c.reason == "MEMORY_NOT_GRANTED" {
				domain = "coordinator.tradsys"
			}
			if info == nil || info.Reason != c.reason || info.Domain != domain {
				t.Fatalf("ErrorInfo %v, want reason %s in %s", info, c.reason, domain)
			}
			for k, v := range c.meta {
				if info.Metadata[k] != v {
					t.Errorf("metadata %s = %q, want %q", k, info.Metadata[k], v)
				}
			}
			covered[c.reason] = true
		})
	}
	for _, s := range shared {
		if !covered[s.reason] {
			t.Errorf("shared reason %s has no case in this test", s.reason)
		}
	}
	if table.ToStatus(nil) != nil {
		t.Error("nil error became a status")
	}
	if msg := status.Convert(table.ToStatus(&lazy.UnavailableError{Component: "m", Cause: refused.Err()})).Message(); msg != "component m unavailable: "+refused.Err().Error() {
		t.Errorf("refusal message %q does not name the component", msg)
	}
	if msg := status.Convert(table.ToStatus(errDomain)).Message(); msg != "the domain says no" {
		t.Errorf("message %q, want the domain's", msg)
	}
}

func TestFallback(t *testing.T) {
	tb := Table{Domain: "x", Fallback: func(err error) error { return status.Error(codes.Unavailable, "storage: "+err.Error()) }}
	if err := tb.ToStatus(errors.New("etcd down")); status.Code(err) != codes.Unavailable || ErrorInfo(err) != nil {
		t.Fatalf("fallback not used: %v", err)
	}
}
