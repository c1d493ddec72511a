package server_test

import (
	"context"
	"io"
	"testing"
	"time"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	lifecyclev1 "github.com/tradsys/mesh/proto/tradsys/lifecycle/v1"
	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	"github.com/tradsys/mesh/services/matching/server"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
)

var bg = context.Background()

func leaseNames(t *testing.T, c coordinatorv1.CoordinatorServiceClient) map[string]bool {
	t.Helper()
	resp, err := c.ListLeases(bg, &coordinatorv1.ListLeasesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, l := range resp.GetLeases() {
		out[l.GetComponent()] = true
	}
	return out
}

func TestDormantUntilFirstOrder(t *testing.T) {
	e := startEnv(t, server.Options{})
	lc := lifecyclev1.NewLifecycleServiceClient(e.conn)
	// Cheap calls do not load anything.
	if _, err := e.mc.ListAlgorithms(bg, &matchingv1.ListAlgorithmsRequest{}); err != nil {
		t.Fatal(err)
	}
	_, err := e.mc.SubmitOrder(bg, &matchingv1.SubmitOrderRequest{Symbol: "X"}) // invalid: never activates
	wantCode(t, err, codes.InvalidArgument, "order_id")
	st, err := lc.GetState(bg, &lifecyclev1.GetStateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st.GetComponents() {
		if c.GetState() != coordinatorv1.ComponentState_COMPONENT_STATE_DORMANT {
			t.Fatalf("%s is %v before any order", c.GetName(), c.GetState())
		}
	}
	if l := leaseNames(t, e.coord); len(l) != 0 {
		t.Fatalf("dormant service holds leases %v", l)
	}
	if _, err := e.mc.SubmitOrder(bg, limit("BTC", 1, buy, 100, 5)); err != nil {
		t.Fatal(err)
	}
	if l := leaseNames(t, e.coord); !l["matching"] || !l["matching/algorithm/fifo"] || len(l) != 2 {
		t.Fatalf("after the first order: leases %v", l)
	}
}

func TestOrderTypes(t *testing.T) {
	e := startEnv(t, server.Options{})
	sub := func(r *matchingv1.SubmitOrderRequest) *matchingv1.Execution {
		t.Helper()
		resp, err := e.mc.SubmitOrder(bg, r)
		if err != nil {
			t.Fatalf("submit %v: %v", r, err)
		}
		return resp.GetExecution()
	}
	const sym = "ETH-USD"
	// Limit orders rest.
	if x := sub(limit(sym, 1, sell, 101, 10)); x.GetStatus() != matchingv1.OrderStatus_ORDER_STATUS_NEW || x.GetRestingQuantity() != 10 {
		t.Fatalf("resting sell: %v", x)
	}
	sub(limit(sym, 2, sell, 102, 10))
	sub(limit(sym, 3, buy, 99, 10))
	// A crossing limit trades at the maker's price and rests the remainder.
	x := sub(limit(sym, 4, buy, 101, 15))
	if x.GetStatus() != matchingv1.OrderStatus_ORDER_STATUS_PARTIALLY_FILLED || x.GetFilledQuantity() != 10 || x.GetRestingQuantity() != 5 ||
		len(x.GetTrades()) != 1 || x.GetTrades()[0].GetPrice() != 101 || x.GetTrades()[0].GetSequence() != 1 || x.GetTrades()[0].GetMakerOrderId() != 1 {
		t.Fatalf("crossing limit: %v", x)
	}
	if at := x.GetTrades()[0].GetExecutedAt(); at == nil || time.Since(at.AsTime()) > time.Minute || time.Since(at.AsTime()) < 0 {
		t.Fatalf("executed_at %v", at)
	}
	// Market: fills what it can, cancels the rest.
	x = sub(&matchingv1.SubmitOrderRequest{Symbol: sym, OrderId: 5, Account: 5, Side: buy, Type: matchingv1.OrderType_ORDER_TYPE_MARKET, Quantity: 12})
	if x.GetStatus() != matchingv1.OrderStatus_ORDER_STATUS_CANCELLED || x.GetFilledQuantity() != 10 || x.GetCancelledQuantity() != 2 ||
		len(x.GetCancellations()) != 1 || x.GetCancellations()[0].GetReason() != matchingv1.CancelReason_CANCEL_REASON_UNFILLED {
		t.Fatalf("market: %v", x)
	}
	// IOC against the bids (101 x5 from order 4, 99 x10).
	x = sub(&matchingv1.SubmitOrderRequest{Symbol: sym, OrderId: 6, Account: 6, Side: sell, Type: matchingv1.OrderType_ORDER_TYPE_IOC, Price: 100, Quantity: 8})
	if x.GetFilledQuantity() != 5 || x.GetCancelledQuantity() != 3 || x.GetRestingQuantity() != 0 {
		t.Fatalf("ioc: %v", x)
	}
	// FOK: not fillable is FAILED_PRECONDITION and changes nothing; fillable fills.
	_, err := e.mc.SubmitOrder(bg, &matchingv1.SubmitOrderRequest{Symbol: sym, OrderId: 7, Account: 7, Side: sell, Type: matchingv1.OrderType_ORDER_TYPE_FOK, Price: 99, Quantity: 11})
	wantCode(t, err, codes.FailedPrecondition, "fill-or-kill")
	x = sub(&matchingv1.SubmitOrderRequest{Symbol: sym, OrderId: 7, Account: 7, Side: sell, Type: matchingv1.OrderType_ORDER_TYPE_FOK, Price: 99, Quantity: 4})
	if x.GetStatus() != matchingv1.OrderStatus_ORDER_STATUS_FILLED || x.GetFilledQuantity() != 4 {
		t.Fatalf("fok: %v", x)
	}
	// Post-only: crossing is refused, passive rests.
	_, err = e.mc.SubmitOrder(bg, &matchingv1.SubmitOrderRequest{Symbol: sym, OrderId: 8, Account: 8, Side: sell, Type: matchingv1.OrderType_ORDER_TYPE_POST_ONLY, Price: 99, Quantity: 1})
	wantCode(t, err, codes.FailedPrecondition, "post-only")
	x = sub(&matchingv1.SubmitOrderRequest{Symbol: sym, OrderId: 8, Account: 8, Side: sell, Type: matchingv1.OrderType_ORDER_TYPE_POST_ONLY, Price: 100, Quantity: 1})
	if x.GetRestingQuantity() != 1 {
		t.Fatalf("post-only: %v", x)
	}
	// Duplicate id of a resting order.
	_, err = e.mc.SubmitOrder(bg, limit(sym, 8, buy, 50, 1))
	wantCode(t, err, codes.AlreadyExists, "duplicate")
	// Self-trade prevention cancels the resting order.
	sub(limit("STP", 20, sell, 110, 3))
	r := limit("STP", 21, buy, 110, 3)
	r.Account = 20
	x = sub(r)
	if len(x.GetCancellations()) != 1 || x.GetCancellations()[0].GetReason() != matchingv1.CancelReason_CANCEL_REASON_SELF_TRADE || x.GetRestingQuantity() != 3 {
		t.Fatalf("self trade: %v", x)
	}
	sub(limit(sym, 9, sell, 120, 6))
	// Book.
	book, err := e.mc.GetOrderBook(bg, &matchingv1.GetOrderBookRequest{Symbol: sym, Depth: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(book.GetBids()) != 1 || book.GetBids()[0].GetPrice() != 99 || len(book.GetAsks()) != 2 || book.GetAsks()[0].GetPrice() != 100 ||
		book.GetLastTradeSequence() != 4 || book.GetAlgorithm() != "fifo" {
		t.Fatalf("book: %v", book)
	}
	// Replace, cancel, get.
	rx, err := e.mc.ReplaceOrder(bg, &matchingv1.ReplaceOrderRequest{Symbol: sym, OrderId: 9, Price: 105, Quantity: 4})
	if err != nil || rx.GetExecution().GetRestingQuantity() != 4 {
		t.Fatalf("replace: %v %v", rx, err)
	}
	o, err := e.mc.GetOrder(bg, &matchingv1.GetOrderRequest{Symbol: sym, OrderId: 9})
	if err != nil || o.GetOrder().GetPrice() != 105 || o.GetOrder().GetQuantity() != 4 {
		t.Fatalf("get: %v %v", o, err)
	}
	c, err := e.mc.CancelOrder(bg, &matchingv1.CancelOrderRequest{Symbol: sym, OrderId: 9})
	if err != nil || c.GetCancelledQuantity() != 4 {
		t.Fatalf("cancel: %v %v", c, err)
	}
	_, err = e.mc.CancelOrder(bg, &matchingv1.CancelOrderRequest{Symbol: sym, OrderId: 9})
	wantCode(t, err, codes.NotFound, "order_id 9")
	_, err = e.mc.ReplaceOrder(bg, &matchingv1.ReplaceOrderRequest{Symbol: sym, OrderId: 999, Price: 1, Quantity: 1})
	wantCode(t, err, codes.NotFound, "order_id 999")
	if o, err := e.mc.GetOrder(bg, &matchingv1.GetOrderRequest{Symbol: sym, OrderId: 9}); err != nil ||
		o.GetStatus() != matchingv1.OrderStatus_ORDER_STATUS_CANCELLED || o.GetCancelReason() != matchingv1.CancelReason_CANCEL_REASON_USER {
		t.Fatalf("get of the cancelled order: %v %v", o, err)
	}
	_, err = e.mc.GetOrder(bg, &matchingv1.GetOrderRequest{Symbol: sym, OrderId: 999})
	wantCode(t, err, codes.NotFound, "order_id 999")
	_, err = e.mc.GetOrderBook(bg, &matchingv1.GetOrderBookRequest{Symbol: "NOPE"})
	wantCode(t, err, codes.NotFound, "NOPE")
	_, err = e.mc.CancelOrder(bg, &matchingv1.CancelOrderRequest{Symbol: "NOPE", OrderId: 1})
	wantCode(t, err, codes.NotFound, "order_id 1")
	// A post-only replace that would cross is refused.
	_, err = e.mc.ReplaceOrder(bg, &matchingv1.ReplaceOrderRequest{Symbol: sym, OrderId: 8, Price: 99, Quantity: 1})
	wantCode(t, err, codes.FailedPrecondition, "post-only")
}

func TestBadInputNamesTheField(t *testing.T) {
	e := startEnv(t, server.Options{})
	long := string(make([]byte, 65))
	ok := limit("S", 1, buy, 10, 1)
	mod := func(f func(r *matchingv1.SubmitOrderRequest)) *matchingv1.SubmitOrderRequest {
		r := limit("S", 1, buy, 10, 1)
		f(r)
		return r
	}
	for _, tc := range []struct {
		name  string
		call  func() error
		field string
	}{
		{"zero quantity", func() error {
			_, err := e.mc.SubmitOrder(bg, mod(func(r *matchingv1.SubmitOrderRequest) { r.Quantity = 0 }))
			return err
		}, "quantity"},
		{"negative quantity", func() error {
			_, err := e.mc.SubmitOrder(bg, mod(func(r *matchingv1.SubmitOrderRequest) { r.Quantity = -5 }))
			return err
		}, "quantity"},
		{"huge quantity", func() error {
			_, err := e.mc.SubmitOrder(bg, mod(func(r *matchingv1.SubmitOrderRequest) { r.Quantity = 1 << 62 }))
			return err
		}, "quantity"},
		{"zero price", func() error {
			_, err := e.mc.SubmitOrder(bg, mod(func(r *matchingv1.SubmitOrderRequest) { r.Price = 0 }))
			return err
		}, "price"},
		{"negative price", func() error {
			_, err := e.mc.SubmitOrder(bg, mod(func(r *matchingv1.SubmitOrderRequest) { r.Price = -1 }))
			return err
		}, "price"},
		{"market with price", func() error {
			_, err := e.mc.SubmitOrder(bg, mod(func(r *matchingv1.SubmitOrderRequest) { r.Type = matchingv1.OrderType_ORDER_TYPE_MARKET }))
			return err
		}, "price"},
		{"empty symbol", func() error {
			_, err := e.mc.SubmitOrder(bg, mod(func(r *matchingv1.SubmitOrderRequest) { r.Symbol = "" }))
			return err
		}, "symbol"},
		{"long symbol", func() error {
			_, err := e.mc.SubmitOrder(bg, mod(func(r *matchingv1.SubmitOrderRequest) { r.Symbol = long }))
			return err
		}, "symbol"},
		{"zero id", func() error {
			_, err := e.mc.SubmitOrder(bg, mod(func(r *matchingv1.SubmitOrderRequest) { r.OrderId = 0 }))
			return err
		}, "order_id"},
		{"no side", func() error {
			_, err := e.mc.SubmitOrder(bg, mod(func(r *matchingv1.SubmitOrderRequest) { r.Side = 0 }))
			return err
		}, "side"},
		{"unknown side", func() error {
			_, err := e.mc.SubmitOrder(bg, mod(func(r *matchingv1.SubmitOrderRequest) { r.Side = 7 }))
			return err
		}, "side"},
		{"no type", func() error {
			_, err := e.mc.SubmitOrder(bg, mod(func(r *matchingv1.SubmitOrderRequest) { r.Type = 0 }))
			return err
		}, "type"},
		{"unknown type", func() error {
			_, err := e.mc.SubmitOrder(bg, mod(func(r *matchingv1.SubmitOrderRequest) { r.Type = 42 }))
			return err
		}, "type"},
		{"cancel no id", func() error { _, err := e.mc.CancelOrder(bg, &matchingv1.CancelOrderRequest{Symbol: "S"}); return err }, "order_id"},
		{"cancel no symbol", func() error { _, err := e.mc.CancelOrder(bg, &matchingv1.CancelOrderRequest{OrderId: 1}); return err }, "symbol"},
		{"replace zero qty", func() error {
			_, err := e.mc.ReplaceOrder(bg, &matchingv1.ReplaceOrderRequest{Symbol: "S", OrderId: 1, Price: 5})
			return err
		}, "quantity"},
		{"replace zero price", func() error {
			_, err := e.mc.ReplaceOrder(bg, &matchingv1.ReplaceOrderRequest{Symbol: "S", OrderId: 1, Quantity: 5})
			return err
		}, "price"},
		{"depth negative", func() error {
			_, err := e.mc.GetOrderBook(bg, &matchingv1.GetOrderBookRequest{Symbol: "S", Depth: -1})
			return err
		}, "depth"},
		{"depth too big", func() error {
			_, err := e.mc.GetOrderBook(bg, &matchingv1.GetOrderBookRequest{Symbol: "S", Depth: 1001})
			return err
		}, "depth"},
		{"stream no symbol", func() error {
			s, err := e.mc.StreamTrades(bg, &matchingv1.StreamTradesRequest{})
			if err == nil {
				_, err = s.Recv()
			}
			return err
		}, "symbol"},
		{"load no name", func() error { _, err := e.mc.LoadAlgorithm(bg, &matchingv1.LoadAlgorithmRequest{}); return err }, "name"},
		{"set no algorithm", func() error {
			_, err := e.mc.SetSymbolAlgorithm(bg, &matchingv1.SetSymbolAlgorithmRequest{Symbol: "S"})
			return err
		}, "algorithm"},
		{"stream order no quantity", func() error {
			s, err := e.mc.SubmitOrders(bg)
			if err != nil {
				return err
			}
			r := limit("S", 1, buy, 10, 0)
			if err := s.Send(&matchingv1.SubmitOrdersRequest{Order: r}); err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		}, "order.quantity"},
		{"stream no order", func() error {
			s, err := e.mc.SubmitOrders(bg)
			if err != nil {
				return err
			}
			if err := s.Send(&matchingv1.SubmitOrdersRequest{}); err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		}, "order"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.call(), codes.InvalidArgument, tc.field) })
	}
	_ = ok
	// Unknown algorithms are NOT_FOUND naming them.
	_, err := e.mc.LoadAlgorithm(bg, &matchingv1.LoadAlgorithmRequest{Name: "best-execution"})
	wantCode(t, err, codes.NotFound, "best-execution")
	_, err = e.mc.SetSymbolAlgorithm(bg, &matchingv1.SetSymbolAlgorithmRequest{Symbol: "S", Algorithm: "lottery"})
	wantCode(t, err, codes.NotFound, "lottery")
}

func TestStreamTradesResumesAndOutOfRange(t *testing.T) {
	e := startEnv(t, server.Options{TradeRing: 4})
	const sym = "SOL"
	// 6 trades: 6 resting sells of 1, one buy for 6.
	for i := uint64(1); i <= 6; i++ {
		if _, err := e.mc.SubmitOrder(bg, limit(sym, i, sell, 100+int64(i), 1)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.mc.SubmitOrder(bg, limit(sym, 100, buy, 200, 6)); err != nil {
		t.Fatal(err)
	}
	// The ring keeps 3..6.
	s, err := e.mc.StreamTrades(bg, &matchingv1.StreamTradesRequest{Symbol: sym, FromSequence: 2})
	if err == nil {
		_, err = s.Recv()
	}
	wantCode(t, err, codes.OutOfRange, "oldest available sequence is 3")
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	s, err = e.mc.StreamTrades(ctx, &matchingv1.StreamTradesRequest{Symbol: sym, FromSequence: 4})
	if err != nil {
		t.Fatal(err)
	}
	for want := uint64(4); want <= 6; want++ {
		m, err := s.Recv()
		if err != nil || m.GetTrade().GetSequence() != want || m.GetTrade().GetMakerOrderId() != want || m.GetTrade().GetExecutedAt() == nil {
			t.Fatalf("want trade %d: %v %v", want, m, err)
		}
	}
	// Live: a new trade arrives on the open stream.
	if _, err := e.mc.SubmitOrder(bg, limit(sym, 7, sell, 150, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.mc.SubmitOrder(bg, limit(sym, 101, buy, 150, 2)); err != nil {
		t.Fatal(err)
	}
	m, err := s.Recv()
	if err != nil || m.GetTrade().GetSequence() != 7 || m.GetTrade().GetQuantity() != 2 {
		t.Fatalf("live trade: %v %v", m, err)
	}
	// A symbol with no book yet: the stream waits for its first trade.
	s, err = e.mc.StreamTrades(ctx, &matchingv1.StreamTradesRequest{Symbol: "NEW"})
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan *matchingv1.StreamTradesResponse, 1)
	go func() {
		m, err := s.Recv()
		if err != nil {
			t.Errorf("stream of a symbol with no book: %v, want it to wait for the first trade", err)
		}
		first <- m
	}()
	select {
	case m := <-first:
		t.Fatalf("a trade before any order: %v", m)
	case <-time.After(600 * time.Millisecond): // past the stream's 250ms re-check
	}
	if _, err := e.mc.SubmitOrder(bg, limit("NEW", 1, sell, 10, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.mc.SubmitOrder(bg, limit("NEW", 2, buy, 10, 1)); err != nil {
		t.Fatal(err)
	}
	if m := <-first; m.GetTrade().GetSequence() != 1 || m.GetTrade().GetSymbol() != "NEW" {
		t.Fatalf("first trade %v", m)
	}
}

func TestSubmitOrdersStream(t *testing.T) {
	e := startEnv(t, server.Options{})
	s, err := e.mc.SubmitOrders(bg)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	go func() {
		for i := uint64(1); i <= n; i++ {
			side, price := sell, int64(100+i%5)
			if i%2 == 0 {
				side, price = buy, int64(98+i%5)
			}
			_ = s.Send(&matchingv1.SubmitOrdersRequest{Order: limit("STR", i, side, price, 3)})
		}
		// a duplicate of a resting order: rejected, the stream goes on
		_ = s.Send(&matchingv1.SubmitOrdersRequest{Order: limit("STR", n+1, sell, 500, 1)})
		_ = s.Send(&matchingv1.SubmitOrdersRequest{Order: limit("STR", n+1, sell, 500, 1)})
		_ = s.CloseSend()
	}()
	var trades int
	for i := uint64(1); i <= n+2; i++ {
		m, err := s.Recv()
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		if want := min(i, n+1); m.GetOrderId() != want {
			t.Fatalf("answer %d is for order %d", i, m.GetOrderId())
		}
		if i == n+2 {
			if rj := m.GetRejection(); rj == nil || codes.Code(rj.GetCode()) != codes.AlreadyExists || rj.GetReason() != "DUPLICATE_ORDER_ID" {
				t.Fatalf("duplicate: %v", m)
			}
			continue
		}
		if m.GetExecution() == nil {
			t.Fatalf("answer %d: %v", i, m)
		}
		trades += len(m.GetExecution().GetTrades())
	}
	if _, err := s.Recv(); err != io.EOF {
		t.Fatalf("end of stream: %v", err)
	}
	book, err := e.mc.GetOrderBook(bg, &matchingv1.GetOrderBookRequest{Symbol: "STR"})
	if err != nil || book.GetLastTradeSequence() != uint64(trades) || trades == 0 {
		t.Fatalf("book %v trades %d err %v", book, trades, err)
	}
}

// takeLock takes matching/algorithms in its own coordinator session and
// returns the token and a release function.
func takeLock(t *testing.T, c coordinatorv1.CoordinatorServiceClient) (uint64, func()) {
	t.Helper()
	s, err := c.CreateSession(bg, &coordinatorv1.CreateSessionRequest{Owner: "operator", Ttl: durationpb.New(10 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.AcquireLock(bg, &coordinatorv1.AcquireLockRequest{SessionId: s.GetSessionId(), Name: "matching/algorithms", WaitTimeout: durationpb.New(5 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	return l.GetFencingToken(), func() {
		_, _ = c.CloseSession(bg, &coordinatorv1.CloseSessionRequest{SessionId: s.GetSessionId()})
	}
}

func TestAlgorithmsLoadUnloadSwitchWithFencing(t *testing.T) {
	e := startEnv(t, server.Options{})
	// Load pro-rata with the service taking the lock itself.
	ld, err := e.mc.LoadAlgorithm(bg, &matchingv1.LoadAlgorithmRequest{Name: "pro-rata"})
	if err != nil {
		t.Fatal(err)
	}
	t1 := ld.GetFencingToken()
	if t1 == 0 || ld.GetAlgorithm().GetState() != coordinatorv1.ComponentState_COMPONENT_STATE_ACTIVE || ld.GetAlgorithm().GetLeaseId() == "" {
		t.Fatalf("load: %v", ld)
	}
	if l := leaseNames(t, e.coord); !l["matching/algorithm/pro-rata"] || l["matching"] {
		t.Fatalf("leases after load %v", l)
	}
	// An operator holds the lock and switches a symbol with its token.
	t2, release := takeLock(t, e.coord)
	if t2 <= t1 {
		t.Fatalf("token %d after %d", t2, t1)
	}
	const sym = "PR"
	for i, q := range []int64{10, 30} {
		if _, err := e.mc.SubmitOrder(bg, limit(sym, uint64(i+1), sell, 100, q)); err != nil {
			t.Fatal(err)
		}
	}
	// While the operator holds the lock, a change without a token waits for it and times out...
	ctx, cancel := context.WithTimeout(bg, 300*time.Millisecond)
	_, err = e.mc.SetSymbolAlgorithm(ctx, &matchingv1.SetSymbolAlgorithmRequest{Symbol: sym, Algorithm: "pro-rata"})
	cancel()
	wantCode(t, err, codes.DeadlineExceeded)
	// ...the holder's token works...
	sw, err := e.mc.SetSymbolAlgorithm(bg, &matchingv1.SetSymbolAlgorithmRequest{Symbol: sym, Algorithm: "pro-rata", FencingToken: t2})
	if err != nil || sw.GetPreviousAlgorithm() != "fifo" || sw.GetAlgorithm() != "pro-rata" || sw.GetFencingToken() != t2 {
		t.Fatalf("switch: %v %v", sw, err)
	}
	// ...and the older token is refused.
	_, err = e.mc.SetSymbolAlgorithm(bg, &matchingv1.SetSymbolAlgorithmRequest{Symbol: sym, Algorithm: "fifo", FencingToken: t1})
	wantCode(t, err, codes.FailedPrecondition, "fencing_token", "stale")
	_, err = e.mc.UnloadAlgorithm(bg, &matchingv1.UnloadAlgorithmRequest{Name: "pro-rata", FencingToken: t1})
	wantCode(t, err, codes.FailedPrecondition, "fencing_token")
	release()
	// Pro-rata now allocates 20 as 5 and 15.
	x, err := e.mc.SubmitOrder(bg, limit(sym, 3, buy, 100, 20))
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint64]int64{}
	for _, tr := range x.GetExecution().GetTrades() {
		got[tr.GetMakerOrderId()] = tr.GetQuantity()
	}
	if got[1] != 5 || got[2] != 15 {
		t.Fatalf("pro-rata fills %v", got)
	}
	list, err := e.mc.ListAlgorithms(bg, &matchingv1.ListAlgorithmsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range list.GetAlgorithms() {
		if a.GetName() == "pro-rata" && (len(a.GetSymbols()) != 1 || a.GetSymbols()[0] != sym) {
			t.Fatalf("list: %v", list)
		}
	}
	// Unload (the service takes the lock again: a newer token).
	ul, err := e.mc.UnloadAlgorithm(bg, &matchingv1.UnloadAlgorithmRequest{Name: "pro-rata"})
	if err != nil || ul.GetFencingToken() <= t2 || ul.GetAlgorithm().GetState() != coordinatorv1.ComponentState_COMPONENT_STATE_DORMANT {
		t.Fatalf("unload: %v %v", ul, err)
	}
	if l := leaseNames(t, e.coord); l["matching/algorithm/pro-rata"] {
		t.Fatalf("leases after unload %v", l)
	}
	// The symbol's next order loads it again, on demand.
	if _, err := e.mc.SubmitOrder(bg, limit(sym, 4, sell, 100, 1)); err != nil {
		t.Fatal(err)
	}
	if l := leaseNames(t, e.coord); !l["matching/algorithm/pro-rata"] {
		t.Fatalf("leases after use %v", l)
	}
	// The fence survives a restart: t2 stays stale for the same data dir.
	dir := e.srv.Matcher()
	_ = dir
}

func TestListSymbols(t *testing.T) {
	e := startEnv(t, server.Options{})
	for _, o := range []*matchingv1.SubmitOrderRequest{
		limit("ETH", 1, buy, 90, 2), limit("ETH", 2, sell, 110, 1), limit("BTC", 3, sell, 500, 1), limit("BTC", 4, buy, 500, 1),
	} {
		if _, err := e.mc.SubmitOrder(bg, o); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := e.mc.ListSymbols(bg, &matchingv1.ListSymbolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := resp.GetSymbols()
	if len(got) != 2 || got[0].GetSymbol() != "BTC" || got[1].GetSymbol() != "ETH" {
		t.Fatalf("symbols %v, want BTC and ETH in order", got)
	}
	if b := got[0]; b.GetLastTradeSequence() != 1 || b.GetRestingOrders() != 0 || b.GetBestBid() != 0 || b.GetBestAsk() != 0 || b.GetAlgorithm() == "" {
		t.Errorf("BTC %v: one trade, an empty book", b)
	}
	if eth := got[1]; eth.GetRestingOrders() != 2 || eth.GetBestBid() != 90 || eth.GetBestAsk() != 110 || eth.GetLastTradeSequence() != 0 {
		t.Errorf("ETH %v", eth)
	}
}

// GetOrder answers for filled and cancelled orders too, for a bounded count
// and time.
func TestGetOrderAnswersForFinishedOrders(t *testing.T) {
	e := startEnv(t, server.Options{DoneOrders: 3, DoneOrderTTL: time.Hour})
	get := func(id uint64) (*matchingv1.GetOrderResponse, error) {
		return e.mc.GetOrder(bg, &matchingv1.GetOrderRequest{Symbol: "DONE", OrderId: id})
	}
	for _, o := range []*matchingv1.SubmitOrderRequest{limit("DONE", 1, sell, 100, 2), limit("DONE", 2, buy, 100, 2), limit("DONE", 3, buy, 90, 5)} {
		if _, err := e.mc.SubmitOrder(bg, o); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []uint64{1, 2} {
		o, err := get(id)
		if err != nil || o.GetStatus() != matchingv1.OrderStatus_ORDER_STATUS_FILLED || o.GetOrder().GetPrice() != 100 ||
			o.GetOrder().GetQuantity() != 0 || o.GetFinishedAt() == nil {
			t.Errorf("filled order %d: %v %v", id, o, err)
		}
	}
	if o, err := get(3); err != nil || o.GetStatus() != matchingv1.OrderStatus_ORDER_STATUS_UNSPECIFIED || o.GetOrder().GetQuantity() != 5 {
		t.Errorf("resting order 3: %v %v", o, err)
	}
	if _, err := e.mc.CancelOrder(bg, &matchingv1.CancelOrderRequest{Symbol: "DONE", OrderId: 3}); err != nil {
		t.Fatal(err)
	}
	if o, err := get(3); err != nil || o.GetStatus() != matchingv1.OrderStatus_ORDER_STATUS_CANCELLED {
		t.Errorf("cancelled order 3: %v %v", o, err)
	}
	// A fourth finished order pushes out the oldest (count bound 3).
	if _, err := e.mc.SubmitOrder(bg, limit("DONE", 4, buy, 1, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.mc.CancelOrder(bg, &matchingv1.CancelOrderRequest{Symbol: "DONE", OrderId: 4}); err != nil {
		t.Fatal(err)
	}
	_, err := get(1)
	wantCode(t, err, codes.NotFound, "order_id 1")
	if o, err := get(2); err != nil || o.GetStatus() != matchingv1.OrderStatus_ORDER_STATUS_FILLED {
		t.Errorf("order 2 within the bound: %v %v", o, err)
	}

	// The time bound.
	e = startEnv(t, server.Options{DoneOrderTTL: 100 * time.Millisecond})
	if _, err := e.mc.SubmitOrder(bg, limit("DONE", 1, buy, 1, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.mc.CancelOrder(bg, &matchingv1.CancelOrderRequest{Symbol: "DONE", OrderId: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := get(1); err != nil {
		t.Fatalf("just cancelled: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	_, err = get(1)
	wantCode(t, err, codes.NotFound, "order_id 1")
}
