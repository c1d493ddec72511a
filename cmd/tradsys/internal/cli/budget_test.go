package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestBudgetShowAndSet(t *testing.T) {
	r, client := coordtest.Start(t, coordtest.Config{Budget: 1 << 30, PreemptGrace: 10 * time.Second})
	addr := r.Addr()
	ctx := context.Background()
	if out := mustRun(t, addr, "budget"); out != "budget 1.0GiB, 0B leased\n" {
		t.Errorf("budget: %q", out)
	}
	sess, err := client.CreateSession(ctx, &coordinatorv1.CreateSessionRequest{Owner: "cli-test", Ttl: durationpb.New(30 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	prio := int32(30)
	lease, err := client.AcquireMemory(ctx, &coordinatorv1.AcquireMemoryRequest{
		SessionId: sess.GetSessionId(), Component: "matching/algorithm/fifo", Bytes: 100 << 20, Priority: &prio, Preemptible: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, addr, "budget", "set", "2GiB")
	if out != "budget 2.0GiB (was 1.0GiB), 100.0MiB leased\n" {
		t.Errorf("budget set 2GiB: %q", out)
	}
	out = mustRun(t, addr, "budget", "set", "60MiB")
	for _, want := range []string{"budget 60.0MiB (was 2.0GiB), 100.0MiB leased", "40.0MiB over", "asked to go: " + lease.GetLeaseId() + " (matching/algorithm/fifo, 100.0MiB, priority 30)"} {
		if !strings.Contains(out, want) {
			t.Errorf("budget set 60MiB:\n%s\nmissing %q", out, want)
		}
	}
	if got := tableRow(t, mustRun(t, addr, "status"), "BUDGET"); got[1] != "60.0MiB" {
		t.Errorf("status BUDGET row %v", got)
	}
	if _, errOut, code := tradsys(t, addr, "budget", "set", "lots"); code != 2 || !strings.Contains(errOut, "lots") {
		t.Errorf("budget set lots: exit %d, %q", code, errOut)
	}
}
