package main_test

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/proctest"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	historicalv1 "github.com/tradsys/mesh/proto/tradsys/historical/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Issue 13: historical under a shrinking budget keeps serving from a
// smaller cache. The cache's lease follows the cache (grown ahead of it);
// when the operator lowers the budget below what is leased, the revocation
// notice makes historical evict and shrink its lease until the leases fit,
// so the coordinator keeps the lease (same id, no unload) instead of
// force-releasing it, and every query still answers as before. A real
// process and coordinator.
func TestLoweredBudgetShrinksTheCacheAndQueriesStillAnswer(t *testing.T) {
	const mib = 1 << 20
	const grace = 8 * time.Second
	r, coord := coordtest.Start(t, coordtest.Config{Budget: 1 << 30, PreemptGrace: grace})
	p := proctest.Start(t, historicalBin, r.Addr(), "--data-dir", t.TempDir(), "--max-cache-bytes", "256MiB",
		"--min-cache-lease", "1MiB")
	c := client(p)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := c.Backfill(ctx, &historicalv1.BackfillRequest{Source: &historicalv1.BackfillRequest_Bundled{Bundled: true}}); err != nil {
		t.Fatal(err)
	}
	cacheLease := func() *coordinatorv1.MemoryLease {
		for _, l := range leases(t, coord) {
			if l.GetComponent() == historicalComp {
				return l
			}
		}
		t.Fatal("historical holds no lease")
		return nil
	}
	stats := func() *historicalv1.GetCacheStatsResponse {
		st, err := c.GetCacheStats(ctx, &historicalv1.GetCacheStatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	// Distinct pages of 1000 one-minute candles: each one a cache entry.
	first := csvMinutes(t)[0].open
	query := func(i int) *historicalv1.GetHistoricalDataResponse {
		start := first.Add(time.Duration(i) * time.Minute)
		resp, err := c.GetHistoricalData(ctx, &historicalv1.GetHistoricalDataRequest{Symbol: "BTCUSDT", Interval: historicalv1.Interval_INTERVAL_1M,
			Start: timestamppb.New(start), End: timestamppb.New(start.Add(1000 * time.Minute)), PageSize: 1000})
		if err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		if len(resp.GetCandles()) != 1000 || !resp.GetCandles()[0].GetOpenTime().AsTime().Equal(start) {
			t.Fatalf("query %d: %d candles from %v", i, len(resp.GetCandles()), resp.GetCandles()[0].GetOpenTime().AsTime())
		}
		return resp
	}
	var answers []*historicalv1.GetHistoricalDataResponse
	granted := cacheLease()
	deadline := time.Now().Add(2 * time.Minute)
	for cacheLease().GetBytes() < 16*mib || stats().GetBytes() < 12*mib {
		if time.Now().After(deadline) {
			t.Fatalf("the cache's lease did not grow with it: lease %v, cache %v", cacheLease(), stats())
		}
		for range 20 {
			answers = append(answers, query(len(answers)))
		}
		time.Sleep(100 * time.Millisecond) // let the lease follow
	}
	grown, before := cacheLease(), stats()
	if grown.GetLeaseId() != granted.GetLeaseId() || before.GetBytes() > grown.GetBytes() || grown.UsedBytes == nil {
		t.Fatalf("grown lease %v (granted %v) with a cache of %d bytes", grown, granted, before.GetBytes())
	}
	t.Logf("after %d distinct pages: lease %d MiB, cache %d MiB in %d entries", len(answers), grown.GetBytes()/mib, before.GetBytes()/mib, before.GetEntries())

	// Lower the budget to half of what the cache leases: historical must
	// shrink, not unload.
	budget := grown.GetBytes() / 2
	resp, err := coord.SetBudget(ctx, &coordinatorv1.SetBudgetRequest{BudgetBytes: budget})
	if err != nil || resp.GetOverBytes() <= 0 || len(resp.GetPreempted()) != 1 {
		t.Fatalf("SetBudget: %v %v", resp, err)
	}
	kept := func() bool {
		l := cacheLease()
		return l.GetRevokeAt() == nil && l.GetBytes() <= budget
	}
	deadline = time.Now().Add(grace)
	for !kept() {
		if time.Now().After(deadline) {
			t.Fatalf("the cache's lease was not shrunk to fit %d bytes within the grace: %v", budget, cacheLease())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(grace + time.Second) // past the force-release time of the notice
	shrunk, after := cacheLease(), stats()
	if shrunk.GetLeaseId() != grown.GetLeaseId() || shrunk.GetBytes() > budget {
		t.Fatalf("after the budget fell to %d: lease %v, want %s kept within it", budget, shrunk, grown.GetLeaseId())
	}
	if !after.GetLoaded() || after.GetLoads() != before.GetLoads() || after.GetEvictions() <= before.GetEvictions() ||
		after.GetBytes() > shrunk.GetBytes() || after.GetBytes() >= before.GetBytes() {
		t.Fatalf("cache before %v, after %v (lease %d bytes): want the same load, evicted, within its lease", before, after, shrunk.GetBytes())
	}
	if s := state(t, p); s != coordinatorv1.ComponentState_COMPONENT_STATE_ACTIVE {
		t.Fatalf("state %v, want ACTIVE throughout", s)
	}
	t.Logf("budget %d MiB: lease %d MiB, cache %d MiB in %d entries (%d evictions)", budget/mib, shrunk.GetBytes()/mib,
		after.GetBytes()/mib, after.GetEntries(), after.GetEvictions())
	// It gave back what the leases were over the budget (the coordinator
	// says how much) and a MiB of headroom, rounded to MiB, not half its
	// lease at a time: the rest of the budget is its to keep.
	st, err := coord.GetStatus(ctx, &coordinatorv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if others := st.GetUsedBytes() - shrunk.GetBytes(); shrunk.GetBytes() < budget-others-3*mib {
		t.Fatalf("the lease shrank to %d bytes under a budget of %d with %d leased by others: over-evicted", shrunk.GetBytes(), budget, others)
	}

	// Every query answers as before, from the smaller cache and the store,
	// and the cache stays within its lease.
	for i, want := range answers {
		if got := query(i); !proto.Equal(got, want) {
			t.Fatalf("query %d answers differently after the cache shrank", i)
		}
	}
	if st, l := stats(), cacheLease(); st.GetBytes() > l.GetBytes() || l.GetBytes() > budget || st.GetLoads() != before.GetLoads() {
		t.Fatalf("after querying again: cache %v, lease %v, budget %d", st, l, budget)
	}
	if st, err := coord.GetStatus(ctx, &coordinatorv1.GetStatusRequest{}); err != nil || st.GetUsedBytes() > budget {
		t.Fatalf("coordinator: %v %v, want used within %d", st, err, budget)
	}
	// The pages asked again need more than the budget: the cache's growth
	// is refused, and it keeps serving within its lease, evicting.
	deadline = time.Now().Add(30 * time.Second)
	for refusals(t, p) < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no refused growth with the cache at %v and its lease %v", stats(), cacheLease())
		}
		query(len(answers) - 1)
		time.Sleep(100 * time.Millisecond)
	}
	if st, l := stats(), cacheLease(); st.GetBytes() > l.GetBytes() || l.GetBytes() > budget || st.GetEvictions() <= after.GetEvictions() {
		t.Fatalf("after a refused growth: cache %v, lease %v, budget %d", st, l, budget)
	}
}

// refusals is the growths of the cache's lease the coordinator refused
// (tradsys_lazy_lease_growth_refusals_total on the process's /metrics).
func refusals(t *testing.T, p *proctest.Proc) float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == `tradsys_lazy_lease_growth_refusals_total{component="historical"}` {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	return 0
}
