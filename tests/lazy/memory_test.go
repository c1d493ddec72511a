package lazy_test

import (
	"context"
	"errors"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tradsys/mesh/pkg/coordclient"
	"github.com/tradsys/mesh/pkg/lazy"
	"github.com/tradsys/mesh/pkg/lazy/lazygrpc"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
)

// A component that reports its usage has its lease follow it: grown ahead
// with headroom, refused when the budget is full (the component is told and
// MemoryRefusal says why), shrunk when usage falls; the Go memory limit is
// the base footprint plus the lease throughout. Real coordinator.
func TestLeaseFollowsUsageAndHoldsTheGoMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	const mib = 1 << 20
	r, api := coordtest.Start(t, coordtest.Config{Budget: 64 * mib})
	cc, err := coordclient.Dial(coordclient.Options{Addresses: []string{r.Addr()}, Owner: "usage-test", TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close(context.Background()) })
	reg := prometheus.NewRegistry()
	const base = 100 * mib
	rt := lazy.New(lazy.Options{Coordinator: lazygrpc.Coordinator(cc), Registry: reg, GoMemoryLimit: true, BaseFootprint: base})
	var used atomic.Int64
	used.Store(2 * mib)
	var mu sync.Mutex
	var told []*lazy.Refusal
	comp, err := rt.Add(lazy.Spec{Name: "books", MemoryBytes: 8 * mib, Priority: 20, IdleTimeout: -1,
		Usage: used.Load, UsageInterval: 50 * time.Millisecond,
		OnMemory: func(r *lazy.Refusal) { mu.Lock(); told = append(told, r); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Shutdown(context.Background()) })
	if got := debug.SetMemoryLimit(-1); got != base {
		t.Fatalf("Go memory limit while dormant %d, want the base %d", got, base)
	}
	if err := comp.Activate(context.Background()); err != nil {
		t.Fatal(err)
	}
	lease := func() *coordinatorv1.MemoryLease {
		resp, err := api.ListLeases(context.Background(), &coordinatorv1.ListLeasesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range resp.GetLeases() {
			if l.GetComponent() == "books" {
				return l
			}
		}
		t.Fatalf("no lease of books: %v", resp)
		return nil
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (lease %v, limit %d)", what, lease(), debug.SetMemoryLimit(-1))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	first := lease()
	if first.GetBytes() != 8*mib || debug.SetMemoryLimit(-1) != base+8*mib {
		t.Fatalf("first lease %d, limit %d", first.GetBytes(), debug.SetMemoryLimit(-1))
	}
	// Usage outgrows the first lease: it grows, with headroom, same lease id.
	used.Store(20 * mib)
	waitFor("the lease to grow", func() bool { return lease().GetBytes() == 25*mib })
	if l := lease(); l.GetLeaseId() != first.GetLeaseId() || l.GetFencingToken() != first.GetFencingToken() || l.GetUsedBytes() != 20*mib {
		t.Fatalf("grown lease %v, want id %s and token %d kept, used 20MiB", l, first.GetLeaseId(), first.GetFencingToken())
	}
	waitFor("the Go limit to follow", func() bool { return debug.SetMemoryLimit(-1) == base+25*mib })

	// Past what is free: refused, the component told, the lease unchanged.
	other, err := api.CreateSession(context.Background(), &coordinatorv1.CreateSessionRequest{Owner: "other"})
	if err != nil {
		t.Fatal(err)
	}
	prio := int32(10)
	if _, err := api.AcquireMemory(context.Background(), &coordinatorv1.AcquireMemoryRequest{SessionId: other.GetSessionId(),
		Component: "other", Bytes: 30 * mib, Priority: &prio}); err != nil {
		t.Fatal(err)
	}
	used.Store(40 * mib)
	waitFor("the refusal", func() bool { return comp.MemoryRefusal() != nil })
	ref := comp.MemoryRefusal()
	if ref.Leased != 25*mib || ref.Used != 40*mib || !strings.Contains(ref.Error(), "budget 67108864") || !strings.Contains(ref.Error(), "held by other") || !strings.Contains(ref.Error(), first.GetLeaseId()) {
		t.Fatalf("refusal %v", ref)
	}
	var nf *lazy.Refusal
	if !errors.As(error(ref), &nf) {
		t.Fatal("Refusal is not an error")
	}
	if lease().GetBytes() != 25*mib {
		t.Fatalf("a refused growth changed the lease: %v", lease())
	}
	mu.Lock()
	if len(told) == 0 || told[0] == nil {
		t.Fatalf("the component was not told: %v", told)
	}
	mu.Unlock()
	if n := counterValue(t, reg, "tradsys_lazy_lease_growth_refusals_total", "books"); n < 1 {
		t.Fatalf("refusals metric %v", n)
	}

	// Usage falls: the refusal clears, the lease shrinks, never below the estimate.
	used.Store(1 * mib)
	waitFor("the lease to shrink to the estimate", func() bool { return lease().GetBytes() == 8*mib })
	waitFor("the refusal to clear", func() bool { return comp.MemoryRefusal() == nil })
	waitFor("the Go limit to follow the shrink", func() bool { return debug.SetMemoryLimit(-1) == base+8*mib })
	mu.Lock()
	if told[len(told)-1] != nil {
		t.Fatalf("the component was not told the refusal cleared")
	}
	mu.Unlock()

	if err := comp.Deactivate(context.Background(), "operator"); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != base {
		t.Fatalf("Go memory limit after release %d, want the base %d", got, base)
	}
}

// counterValue reads a component's counter from reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name, comp string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "component" && l.GetValue() == comp {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}
