package main

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
	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Issue 13: the engine's lease follows its books. Resting orders make the
// books outgrow the first lease: the lease grows (same id) and the process
// stays under the Go memory limit the lease sets; with the budget full, new
// resting orders are refused with RESOURCE_EXHAUSTED naming the lease, the
// usage and the budget, orders that cannot rest still trade, and every
// accepted order is there after a restart. A real process and coordinator.
func TestBooksGrowTheLeaseAndAFullBudgetRefusesRestingOrders(t *testing.T) {
	const mib = 1 << 20
	const budget = 64 * mib
	r, cc := coordtest.Start(t, coordtest.Config{Budget: budget})
	dir := t.TempDir()
	p := proctest.Start(t, bin, r.Addr(), "--data-dir", dir, "--memory", "1MiB", "--algorithm-memory", "1MiB", "--algorithm-priority", "10")
	mc := matchingv1.NewMatchingServiceClient(p.Conn)
	sctx, scancel := context.WithTimeout(bg, 90*time.Second)
	defer scancel()
	stream, err := mc.SubmitOrders(sctx)
	if err != nil {
		t.Fatal(err)
	}
	engineLease := func() *coordinatorv1.MemoryLease {
		ls, err := cc.ListLeases(bg, &coordinatorv1.ListLeasesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls.GetLeases() {
			if l.GetComponent() == "matching" {
				return l
			}
		}
		return nil
	}
	// Resting buys at distinct prices, in batches on one stream.
	var accepted []uint64
	var refused []*matchingv1.Rejection
	next := uint64(0)
	batch := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			next++
			if err := stream.Send(&matchingv1.SubmitOrdersRequest{Order: &matchingv1.SubmitOrderRequest{Symbol: "BTC-USD",
				OrderId: next, Account: 1 + next%50, Side: matchingv1.Side_SIDE_BUY, Type: matchingv1.OrderType_ORDER_TYPE_LIMIT,
				Price: int64(1 + next%100000), Quantity: 1}}); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < n; i++ {
			resp, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if rej := resp.GetRejection(); rej != nil {
				refused = append(refused, rej)
				continue
			}
			accepted = append(accepted, resp.GetOrderId())
		}
	}
	batch(100)
	first := engineLease()
	if first == nil || first.GetBytes() != 1*mib {
		t.Fatalf("first lease %v, want 1MiB", first)
	}
	deadline := time.Now().Add(60 * time.Second)
	for engineLease().GetBytes() <= 1*mib {
		if time.Now().After(deadline) {
			t.Fatalf("the lease did not grow after %d orders: %v", len(accepted), engineLease())
		}
		batch(2000)
	}
	grown := engineLease()
	if grown.GetLeaseId() != first.GetLeaseId() || grown.GetFencingToken() != first.GetFencingToken() || grown.UsedBytes == nil {
		t.Fatalf("grown lease %v, want %s kept, with its usage", grown, first.GetLeaseId())
	}
	t.Logf("lease grew to %d bytes after %d resting orders (used %d)", grown.GetBytes(), len(accepted), grown.GetUsedBytes())
	if len(refused) > 0 {
		t.Fatalf("refused before the budget was full: %v", refused[0])
	}
	limit, heap := metric(t, p.Admin, "tradsys_lazy_go_memory_limit_bytes"), metric(t, p.Admin, "go_memstats_heap_alloc_bytes")
	if limit < float64(grown.GetBytes()) || heap > limit {
		t.Fatalf("Go memory limit %.0f, heap %.0f, lease %d: the process is not held to its lease", limit, heap, grown.GetBytes())
	}

	// Fill the budget: the next growth is refused, and so are resting orders.
	// (The algorithm plugin is more important than the engine here, so the
	// engine's growth cannot preempt it: the refusal is the only way out.)
	st, err := cc.GetStatus(bg, &coordinatorv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	filler, err := cc.CreateSession(bg, &coordinatorv1.CreateSessionRequest{Owner: "filler", Ttl: durationpb.New(10 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	prio := int32(0)
	if _, err := cc.AcquireMemory(bg, &coordinatorv1.AcquireMemoryRequest{SessionId: filler.GetSessionId(), Component: "filler",
		Bytes: st.GetBudgetBytes() - st.GetUsedBytes(), Priority: &prio}); err != nil {
		t.Fatal(err)
	}
	for len(refused) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no order refused with the budget full after %d orders: %v", len(accepted), engineLease())
		}
		batch(1000)
	}
	rej := refused[0]
	if codes.Code(rej.GetCode()) != codes.ResourceExhausted || rej.GetReason() != "MEMORY_LEASE_FULL" {
		t.Fatalf("refusal %v, want RESOURCE_EXHAUSTED MEMORY_LEASE_FULL", rej)
	}
	for _, want := range []string{"new resting orders refused", "component matching uses", grown.GetLeaseId(), "budget " + strconv.Itoa(budget)} {
		if !strings.Contains(rej.GetMessage(), want) {
			t.Errorf("refusal lacks %q: %s", want, rej.GetMessage())
		}
	}
	// Unary too, with the numbers in ErrorInfo; an order that cannot rest still trades.
	_, err = mc.SubmitOrder(bg, &matchingv1.SubmitOrderRequest{Symbol: "BTC-USD", OrderId: next + 1, Account: 7,
		Side: matchingv1.Side_SIDE_BUY, Type: matchingv1.OrderType_ORDER_TYPE_LIMIT, Price: 5, Quantity: 1})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "budget") {
		t.Fatalf("unary resting order: %v", err)
	}
	x, err := mc.SubmitOrder(bg, &matchingv1.SubmitOrderRequest{Symbol: "BTC-USD", OrderId: next + 2, Account: 7,
		Side: matchingv1.Side_SIDE_SELL, Type: matchingv1.OrderType_ORDER_TYPE_IOC, Price: 1, Quantity: 3})
	if err != nil || len(x.GetExecution().GetTrades()) == 0 {
		t.Fatalf("an IOC sell against the bids: %v %v", x, err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}

	// Every accepted order survives a restart: a sample, asked before it
	// (resting, or finished by the IOC) and after it (the same).
	var sample []uint64
	for i := 0; i < len(accepted); i += 25 {
		sample = append(sample, accepted[i])
	}
	for _, id := range accepted[max(len(accepted)-10, 0):] {
		if sample[len(sample)-1] < id {
			sample = append(sample, id)
		}
	}
	resting := map[uint64]int64{} // id: open quantity, before the restart
	for _, id := range sample {
		o, err := mc.GetOrder(bg, &matchingv1.GetOrderRequest{Symbol: "BTC-USD", OrderId: id})
		if err != nil {
			t.Fatalf("accepted order %d before the restart: %v", id, err)
		}
		if o.GetStatus() == matchingv1.OrderStatus_ORDER_STATUS_UNSPECIFIED {
			resting[id] = o.GetOrder().GetQuantity()
		} else {
			t.Logf("accepted order %d finished before the restart: %v", id, o)
		}
	}
	if len(resting) < len(sample)-3 {
		t.Fatalf("only %d of %d sampled accepted orders rest (the IOC fills 3 at most; its trades: %v)", len(resting), len(sample), x.GetExecution().GetTrades())
	}
	p.Stop(t)
	if _, err := cc.CloseSession(bg, &coordinatorv1.CloseSessionRequest{SessionId: filler.GetSessionId()}); err != nil {
		t.Fatal(err) // the budget has room again: the engine reloads with 1.5x its books
	}
	p2 := proctest.Start(t, bin, r.Addr(), "--data-dir", dir, "--memory", "1MiB", "--algorithm-memory", "1MiB", "--algorithm-priority", "10")
	mc2 := matchingv1.NewMatchingServiceClient(p2.Conn)
	for id, qty := range resting {
		o, err := mc2.GetOrder(bg, &matchingv1.GetOrderRequest{Symbol: "BTC-USD", OrderId: id})
		if err != nil || o.GetStatus() != matchingv1.OrderStatus_ORDER_STATUS_UNSPECIFIED || o.GetOrder().GetQuantity() != qty {
			t.Fatalf("order %d rested with %d before the restart; after it: %v %v (the IOC's trades: %v)", id, qty, o, err, x.GetExecution().GetTrades())
		}
	}
	t.Logf("%d resting orders accepted, %d refused; all accepted back after the restart", len(accepted), len(refused))
}

// metric reads a metric without labels from a process's /metrics.
func metric(t *testing.T, admin, name string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("metric %s not found at %s", name, admin)
	return 0
}
