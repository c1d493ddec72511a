package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	riskv1 "github.com/tradsys/mesh/proto/tradsys/risk/v1"
	riskserver "github.com/tradsys/mesh/services/risk/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
)

func reasonsMention(t *testing.T, o *ordersv1.Order, words ...string) {
	t.Helper()
	if o.GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_REJECTED {
		t.Fatalf("order %v is %v, want REJECTED", o.GetOrderId(), o.GetStatus())
	}
	all := strings.Join(o.GetRejectReasons(), "\n")
	for _, w := range words {
		if !strings.Contains(all, w) {
			t.Fatalf("reject reasons %q do not mention %q", o.GetRejectReasons(), w)
		}
	}
}

// Each risk check rejects with its reason, and an order failing several
// lists every failed check, not only the first.
func TestRiskRejectionsListEveryFailedCheck(t *testing.T) {
	m := startMesh(t, meshConfig{})
	m.instrument(t, "BTC-USD", "0.5", "0.001")
	ctx := ctxT(t)
	if _, err := m.rc.SetLimits(ctx, &riskv1.SetLimitsRequest{Limits: &riskv1.Limits{Account: "eve",
		MaxOrderQuantity: "2", MaxNotional: "100000", MaxPosition: "3", PriceBand: "0.05"}}); err != nil {
		t.Fatal(err)
	}
	// A last trade at 50000 for the price band.
	m.submit(t, "mm", "s1", "BTC-USD", sell, "50000", "1")
	m.submit(t, "mm2", "b1", "BTC-USD", buy, "50000", "1")
	waitLastTrade(t, m, "BTC-USD", "60000")

	// Quantity 2.5 > 2; notional 2.5 x 60000 > 100000; 60000 outside
	// 47500..52500: three checks fail, named with their values.
	o := m.submit(t, "eve", "e1", "BTC-USD", buy, "60000", "2.5")
	reasonsMention(t, o, "max-order-quantity: quantity 2.5 is above", "max-notional: notional 60000 x 2.5 = 150000",
		"price-band: price 60000 is outside 47500..52500")
	if len(o.GetRejectReasons()) != 3 {
		t.Fatalf("reasons %q, want exactly 3", o.GetRejectReasons())
	}
	// Position: two resting buys of 1.5 each make 3 open; the next buy of
	// 1 would make 4 > 3.
	m.submit(t, "eve", "e2", "BTC-USD", buy, "49000", "1.5")
	m.submit(t, "eve", "e3", "BTC-USD", buy, "49000", "1.5")
	o = m.submit(t, "eve", "e4", "BTC-USD", buy, "49000", "1")
	reasonsMention(t, o, "position-limit:", "beyond the limit of +/-3")

	// Order rate: one token, refilled slowly.
	if _, err := m.rc.SetLimits(ctx, &riskv1.SetLimitsRequest{Limits: &riskv1.Limits{Account: "fast", OrdersPerSecond: 0.001, OrderBurst: 1}}); err != nil {
		t.Fatal(err)
	}
	if o := m.submit(t, "fast", "f1", "BTC-USD", buy, "49000", "0.1"); o.GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_ACCEPTED {
		t.Fatalf("first order of fast: %v", o)
	}
	reasonsMention(t, m.submit(t, "fast", "f2", "BTC-USD", buy, "49000", "0.1"), "order-rate:", "orders per second")

	// Rejected orders are kept: GetOrder answers them with their history.
	got, err := m.oc.GetOrder(ctx, &ordersv1.GetOrderRequest{OrderId: o.GetOrderId()})
	if err != nil || len(got.GetOrder().GetHistory()) != 2 {
		t.Fatalf("rejected order: %v %v", got, err)
	}
	// The limits are persisted and read back, with the defaults filled in.
	l, err := m.rc.GetLimits(ctx, &riskv1.GetLimitsRequest{Account: "eve"})
	if err != nil || l.GetStored().GetMaxPosition() != "3" || l.GetEffective().GetOrdersPerSecond() == 0 {
		t.Fatalf("limits: %v %v", l, err)
	}
	v, err := m.rc.ListValidators(ctx, &riskv1.ListValidatorsRequest{})
	if err != nil || len(v.GetValidators()) != 5 {
		t.Fatalf("validators: %v %v", v, err)
	}
	for _, val := range v.GetValidators() {
		if val.GetChecks() == 0 || val.GetLeaseId() == "" {
			t.Errorf("validator %s: %d checks, lease %q; want used and leased", val.GetName(), val.GetChecks(), val.GetLeaseId())
		}
	}
}

// A validator whose memory lease cannot be had fails its check with that
// cause: the order is rejected, never passed unchecked.
func TestValidatorLeaseRefusedRejects(t *testing.T) {
	m := startMesh(t, meshConfig{budget: 512 << 20, riskOpts: func(o *riskserver.Options) {
		o.Validator.MemoryBytes = 1 << 30 // more than the whole budget: refused at once
	}})
	m.instrument(t, "BTC-USD", "0.01", "0.001")
	o := m.submit(t, "gina", "g1", "BTC-USD", buy, "100", "1")
	reasonsMention(t, o, "risk/validator/max-order-quantity", "risk/validator/order-rate", "not passed unchecked")
	if len(o.GetRejectReasons()) != 5 {
		t.Fatalf("reasons %q, want one per validator", o.GetRejectReasons())
	}
	book, err := m.mc.GetOrderBook(ctxT(t), &matchingv1.GetOrderBookRequest{Symbol: "BTC-USD"})
	if err == nil && len(book.GetBids()) != 0 {
		t.Fatalf("a rejected order reached the book: %v", book)
	}
}

// waitLastTrade waits until risk's price band knows a last trade that puts
// price outside the band (risk follows matching's trades asynchronously).
func waitLastTrade(t *testing.T, m *mesh, sym, price string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		r, err := m.rc.ValidateOrder(ctxT(t), &riskv1.ValidateOrderRequest{Account: "probe", Symbol: sym, Side: riskv1.Side_SIDE_BUY,
			Price: price, Quantity: "0.001", TickSize: "0.5"})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range r.GetResults() {
			if c.GetValidator() == "price-band" && !c.GetPassed() {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("risk never saw the last trade")
}

// Issue 13: a validator leases what it holds, not the seed's 30 MB. Each
// leases 1 MiB; the order rate's lease grows with its buckets (one per
// account) while the checks that hold nothing stay at 1 MiB, and
// ListValidators shows each lease's size. A real coordinator.
func TestValidatorsLeaseWhatTheyHold(t *testing.T) {
	const mib = 1 << 20
	m := startMesh(t, meshConfig{})
	m.instrument(t, "BTC-USD", "0.01", "0.001")
	cconn, err := grpc.NewClient(m.CoordAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cconn.Close()
	cc := coordinatorv1.NewCoordinatorServiceClient(cconn)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	leases := func() map[string]*coordinatorv1.MemoryLease {
		t.Helper()
		ls, err := cc.ListLeases(ctx, &coordinatorv1.ListLeasesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*coordinatorv1.MemoryLease{}
		for _, l := range ls.GetLeases() {
			if name, ok := strings.CutPrefix(l.GetComponent(), "risk/validator/"); ok {
				out[name] = l
			}
		}
		return out
	}
	// Orders from many accounts: each leaves a bucket in the order rate.
	const accounts = 16000
	orders := func(from, to int) {
		t.Helper()
		s, err := m.rc.ValidateOrders(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i := from; i < to; i += 500 {
			for j := i; j < i+500; j++ {
				if err := s.Send(&riskv1.ValidateOrdersRequest{RequestId: uint64(j), Order: &riskv1.ValidateOrderRequest{
					Account: fmt.Sprintf("account-%06d", j), Symbol: "BTC-USD", Side: riskv1.Side_SIDE_BUY, Price: "100", Quantity: "1",
					TickSize: "0.01", LotSize: "0.001"}}); err != nil {
					t.Fatal(err)
				}
			}
			for j := i; j < i+500; j++ {
				resp, err := s.Recv()
				if err != nil {
					t.Fatal(err)
				}
				if resp.GetError() != nil || !resp.GetVerdict().GetApproved() {
					t.Fatalf("order %d: %v", resp.GetRequestId(), resp)
				}
			}
		}
		if err := s.CloseSend(); err != nil {
			t.Fatal(err)
		}
	}
	orders(0, accounts)
	deadline := time.Now().Add(60 * time.Second)
	for leases()["order-rate"].GetBytes() <= 1*mib {
		if time.Now().After(deadline) {
			t.Fatalf("the order rate's lease did not grow with %d accounts: %v", accounts, leases()["order-rate"])
		}
		time.Sleep(100 * time.Millisecond)
	}
	ls := leases()
	rate := ls["order-rate"]
	// The usage it grew on (reported again only once it moves a tenth and
	// a MiB): past 1 MiB less half the headroom, within the new lease.
	if rate.GetUsedBytes() < 800<<10 || rate.GetUsedBytes() > rate.GetBytes() {
		t.Errorf("order rate's lease %v: want the usage it grew on, within it", rate)
	}
	t.Logf("order rate: lease %d bytes, used %d for %d accounts", rate.GetBytes(), rate.GetUsedBytes(), accounts)
	for _, name := range []string{"max-order-quantity", "max-notional", "position-limit", "price-band"} {
		if l := ls[name]; l.GetBytes() != 1*mib {
			t.Errorf("validator %s leases %v, want 1 MiB", name, l)
		}
	}
	v, err := m.rc.ListValidators(ctx, &riskv1.ListValidatorsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, val := range v.GetValidators() {
		if l := ls[val.GetName()]; val.GetMemoryBytes() != l.GetBytes() {
			t.Errorf("ListValidators shows %s with %d bytes, its lease is %v", val.GetName(), val.GetMemoryBytes(), l)
		}
	}

	// With the budget full, more accounts outgrow the order rate's lease:
	// its growth is refused and it forgets the buckets that have refilled
	// (what new ones would be), so it fits its lease again (which then
	// follows it down) and every order is still checked.
	st, err := cc.GetStatus(ctx, &coordinatorv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	filler, err := cc.CreateSession(ctx, &coordinatorv1.CreateSessionRequest{Owner: "filler", Ttl: durationpb.New(10 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	prio := int32(0)
	if _, err := cc.AcquireMemory(ctx, &coordinatorv1.AcquireMemoryRequest{SessionId: filler.GetSessionId(), Component: "filler",
		Bytes: st.GetBudgetBytes() - st.GetUsedBytes(), Priority: &prio}); err != nil {
		t.Fatal(err)
	}
	orders(accounts, 2*accounts)
	for {
		l := leases()["order-rate"]
		if l.GetBytes() > rate.GetBytes() || l.GetLeaseId() != rate.GetLeaseId() {
			t.Fatalf("order rate's lease %v with the budget full, want %v kept, not grown", l, rate)
		}
		if l.GetUsedBytes() < 1*mib/2 {
			t.Logf("with the budget full: lease %d bytes, used %d after forgetting full buckets", l.GetBytes(), l.GetUsedBytes())
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the order rate did not shed its full buckets: %v", l)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A replace moves the account's open quantity by its change, so the
// position limit counts the order at its new size: grown, the next order
// is rejected; shrunk, an order that fits is accepted.
func TestReplaceCountsTowardsThePositionLimit(t *testing.T) {
	m := startMesh(t, meshConfig{})
	m.instrument(t, "BTC-USD", "0.01", "0.001")
	ctx := ctxT(t)
	if _, err := m.rc.SetLimits(ctx, &riskv1.SetLimitsRequest{Limits: &riskv1.Limits{Account: "rita", MaxPosition: "3"}}); err != nil {
		t.Fatal(err)
	}
	first := m.submit(t, "rita", "r1", "BTC-USD", buy, "100", "1")
	replace := func(qty string) {
		t.Helper()
		if _, err := m.oc.ReplaceOrder(ctx, &ordersv1.ReplaceOrderRequest{Account: "rita", OrderId: first.GetOrderId(), Price: "100", Quantity: qty}); err != nil {
			t.Fatalf("replace to %s: %v", qty, err)
		}
	}
	replace("2.5")
	reasonsMention(t, m.submit(t, "rita", "r2", "BTC-USD", buy, "100", "1"), "position-limit:", "would be 3.5")
	replace("0.5")
	if o := m.submit(t, "rita", "r3", "BTC-USD", buy, "100", "2.5"); o.GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_ACCEPTED {
		t.Fatalf("buy of 2.5 beside 0.5 open, limit 3: %v %v", o.GetStatus(), o.GetRejectReasons())
	}
	// Both open orders grown by a replace each: the second would make 3.5.
	if _, err := m.oc.ReplaceOrder(ctx, &ordersv1.ReplaceOrderRequest{Account: "rita", OrderId: first.GetOrderId(), Price: "100", Quantity: "1"}); err == nil ||
		!strings.Contains(err.Error(), "would be 3.5") {
		t.Fatalf("replace of 0.5 to 1 beside 2.5 open, limit 3: %v", err)
	}
}

// The price band has the last trade's price from its first check after it
// is loaded: an order far from it right after an UnloadValidator (as
// after an idle unload or a restart) is rejected, not passed because the
// price was still on its way from matching.
func TestPriceBandChecksTheFirstOrderAfterALoad(t *testing.T) {
	m := startMesh(t, meshConfig{})
	m.instrument(t, "BTC-USD", "0.5", "0.001")
	ctx := ctxT(t)
	if _, err := m.rc.SetLimits(ctx, &riskv1.SetLimitsRequest{Limits: &riskv1.Limits{Account: "far", PriceBand: "0.05"}}); err != nil {
		t.Fatal(err)
	}
	m.submit(t, "mm", "s1", "BTC-USD", sell, "50000", "1")
	m.submit(t, "mm2", "b1", "BTC-USD", buy, "50000", "1")
	waitLastTrade(t, m, "BTC-USD", "60000")
	for i := range 3 {
		if _, err := m.rc.UnloadValidator(ctx, &riskv1.UnloadValidatorRequest{Name: "price-band"}); err != nil {
			t.Fatal(err)
		}
		reasonsMention(t, m.submit(t, "far", fmt.Sprint("f", i), "BTC-USD", buy, "60000", "0.001"), "price-band: price 60000 is outside 47500..52500")
	}
}

// The first order of a symbol matching has no book for yet is not held
// up waiting for a last trade price there is none of.
func TestPriceBandDoesNotWaitForASymbolWithoutBook(t *testing.T) {
	m := startMesh(t, meshConfig{})
	m.instrument(t, "NEW-USD", "0.01", "0.001")
	m.submit(t, "warm", "w1", "NEW-USD", buy, "1", "0.001") // loads the validators
	if _, err := m.rc.UnloadValidator(ctxT(t), &riskv1.UnloadValidatorRequest{Name: "price-band"}); err != nil {
		t.Fatal(err)
	}
	m.instrument(t, "FRESH-USD", "0.01", "0.001")
	start := time.Now()
	if o := m.submit(t, "first", "f1", "FRESH-USD", buy, "100", "1"); o.GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_ACCEPTED {
		t.Fatalf("first order of a new symbol: %v", o)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("the first order of a symbol without a book took %v", took)
	}
}

// A market order under a notional limit is valued at the last trade: with
// no trade in the symbol yet it is rejected (NO_REFERENCE_PRICE), not
// passed for any quantity; once there is one, it is checked against it.
func TestMarketOrderNotionalNeedsAPrice(t *testing.T) {
	m := startMesh(t, meshConfig{})
	m.instrument(t, "SOL-USD", "0.01", "0.1")
	ctx := ctxT(t)
	if _, err := m.rc.SetLimits(ctx, &riskv1.SetLimitsRequest{Limits: &riskv1.Limits{Account: "mn", MaxNotional: "100"}}); err != nil {
		t.Fatal(err)
	}
	m.submit(t, "maker", "s1", "SOL-USD", sell, "1000", "5")
	market := func(coid, qty string) *ordersv1.Order {
		resp, err := m.oc.SubmitOrder(ctx, &ordersv1.SubmitOrderRequest{Account: "mn", ClientOrderId: coid, Symbol: "SOL-USD", Side: buy,
			Type: ordersv1.OrderType_ORDER_TYPE_MARKET, Quantity: qty})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetOrder()
	}
	reasonsMention(t, market("m1", "5"), "max-notional: a market order cannot be valued", "no trade in SOL-USD yet")
	m.submit(t, "taker", "b1", "SOL-USD", buy, "1000", "0.1") // a trade at 1000
	waitLastTrade(t, m, "SOL-USD", "2000")
	reasonsMention(t, market("m2", "1"), "max-notional: notional 1000 x 1 = 1000 is above the account's maximum notional 100")
}
