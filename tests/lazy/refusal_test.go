package lazy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A lazy activation whose memory lease is refused gives the caller the
// coordinator's refusal: its code, the numbers and who holds the budget, not
// "coordinator unavailable: DeadlineExceeded" (the call's deadline used to
// race the coordinator's wait timeout). Two real service processes, a real
// coordinator with a 150 MiB budget.
func TestRefusedLeaseReachesTheCallerWithItsCause(t *testing.T) {
	r, _ := coordtest.Start(t, coordtest.Config{Budget: 150 << 20})
	holder := startService(t, r.Addr(), "--component", "holder", "--memory", "100MiB", "--priority", "30", "--pinned")
	if _, err := holder.call(context.Background(), 0); err != nil {
		t.Fatalf("holder: %v", err)
	}
	wanter := startService(t, r.Addr(), "--component", "wanter", "--memory", "100MiB", "--priority", "40", "--init-timeout", "1500ms")
	start := time.Now()
	_, err := wanter.call(context.Background(), 0)
	took := time.Since(start)
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("code %v, want RESOURCE_EXHAUSTED (the coordinator's): %v", st.Code(), err)
	}
	msg := st.Message()
	for _, want := range []string{
		"component wanter unavailable", "memory lease not granted",
		"requested 104857600 bytes (100.0MiB)", "free 52428800 (50.0MiB) of budget 157286400 (150.0MiB)",
		"held by holder 100.0MiB priority 30 not preemptible", `owner "lazytest@` + holder.Addr + `#`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("refusal lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "DeadlineExceeded") || strings.Contains(msg, "coordinator unavailable") || strings.Contains(msg, "rpc error") {
		t.Errorf("the refusal is a transport error, not the coordinator's answer:\n%s", msg)
	}
	var info *errdetails.ErrorInfo
	for _, d := range st.Details() {
		if i, ok := d.(*errdetails.ErrorInfo); ok {
			info = i
		}
	}
	if info == nil || info.GetReason() != "MEMORY_NOT_GRANTED" || info.GetMetadata()["free_bytes"] != "52428800" ||
		info.GetMetadata()["budget_bytes"] != "157286400" || !strings.HasPrefix(info.GetMetadata()["holder_0"], "holder 100.0MiB priority 30") {
		t.Errorf("ErrorInfo %v, want the coordinator's MEMORY_NOT_GRANTED with the numbers and holder_0", info)
	}
	if took > 3*time.Second {
		t.Errorf("refusal took %s with a 1.5s init timeout", took)
	}
	if s := wanter.state(t, "wanter"); !strings.Contains(s.GetCause(), "held by holder") {
		t.Errorf("LifecycleService cause %q does not name the holder", s.GetCause())
	}
}
