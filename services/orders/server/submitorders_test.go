package server_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	lifecyclev1 "github.com/tradsys/mesh/proto/tradsys/lifecycle/v1"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

type entryStream = grpc.BidiStreamingClient[ordersv1.SubmitOrdersRequest, ordersv1.SubmitOrdersResponse]

func openEntry(t *testing.T, m *mesh) entryStream {
	t.Helper()
	st, err := m.oc.SubmitOrders(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func limitOrder(acct, coid string, side ordersv1.Side, price, qty string) *ordersv1.SubmitOrderRequest {
	return &ordersv1.SubmitOrderRequest{Account: acct, ClientOrderId: coid, Symbol: "BTC-USD", Side: side,
		Type: ordersv1.OrderType_ORDER_TYPE_LIMIT, Price: price, Quantity: qty}
}

// ask sends one order on st and waits for its answer.
func ask(t *testing.T, st entryStream, id uint64, o *ordersv1.SubmitOrderRequest) *ordersv1.SubmitOrdersResponse {
	t.Helper()
	if err := st.Send(&ordersv1.SubmitOrdersRequest{RequestId: id, Order: o}); err != nil {
		t.Fatal(err)
	}
	resp, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetRequestId() != id {
		t.Fatalf("answer to request %d carries id %d", id, resp.GetRequestId())
	}
	return resp
}

// Orders sent back to back on one stream are all placed, each answer
// carrying its request's id and that request's order, in decimals; the
// stream ends cleanly after the client closes its side and the last
// answer.
func TestSubmitOrdersStreamPlacesEveryOrder(t *testing.T) {
	m := startMesh(t, meshConfig{})
	m.instrument(t, "BTC-USD", "0.01", "0.001")
	st := openEntry(t, m)
	const n = 1500 // more than a stream handles at once (1024): the handler stops reading, then goes on
	want := map[uint64]*ordersv1.SubmitOrderRequest{}
	for i := range n {
		id := uint64(1000 + i)
		// Bids below the asks: nothing crosses, whatever order they are
		// handled in.
		o := limitOrder("alice", fmt.Sprint("s", i), buy, fmt.Sprintf("%d.%02d", 90+i%10, i%100), "0.015")
		if i%2 == 1 {
			o = limitOrder("bob", fmt.Sprint("s", i), sell, fmt.Sprintf("%d.%02d", 110+i%10, i%100), "1.25")
		}
		want[id] = o
		if err := st.Send(&ordersv1.SubmitOrdersRequest{RequestId: id, Order: o}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]uint64{} // request id -> order id
	for {
		resp, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d answers: %v", len(seen), err)
		}
		req, ok := want[resp.GetRequestId()]
		if !ok {
			t.Fatalf("answer with unknown request id %d", resp.GetRequestId())
		}
		if _, again := seen[resp.GetRequestId()]; again {
			t.Fatalf("request %d answered twice", resp.GetRequestId())
		}
		o := resp.GetSubmitted().GetOrder()
		if o.GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_ACCEPTED || resp.GetSubmitted().GetDuplicate() ||
			o.GetClientOrderId() != req.GetClientOrderId() || o.GetAccount() != req.GetAccount() ||
			o.GetPrice() != trimDecimal(req.GetPrice()) || o.GetQuantity() != req.GetQuantity() || o.GetOpenQuantity() != req.GetQuantity() {
			t.Fatalf("request %d (%v) answered %v", resp.GetRequestId(), req, resp)
		}
		seen[resp.GetRequestId()] = o.GetOrderId()
	}
	if len(seen) != n {
		t.Fatalf("%d answers for %d orders", len(seen), n)
	}
	// They are the orders GetOrder knows.
	for id, oid := range seen {
		g, err := m.oc.GetOrder(ctxT(t), &ordersv1.GetOrderRequest{OrderId: oid})
		if err != nil || g.GetOrder().GetClientOrderId() != want[id].GetClientOrderId() {
			t.Fatalf("order %d of request %d: %v %v", oid, id, g, err)
		}
	}
}

// trimDecimal is a decimal in its shortest form ("90.10" -> "90.1").
func trimDecimal(s string) string {
	for len(s) > 0 && s[len(s)-1] == '0' {
		s = s[:len(s)-1]
	}
	if len(s) > 0 && s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	return s
}

// A bad message gets its own INVALID_ARGUMENT answer naming the field, as
// SubmitOrder would; the stream goes on and answers the next order. An
// order refused by risk or matching is an order answered REJECTED, as
// with SubmitOrder.
func TestSubmitOrdersBadMessageDoesNotEndTheStream(t *testing.T) {
	m := startMesh(t, meshConfig{})
	m.instrument(t, "BTC-USD", "0.01", "0.001")
	st := openEntry(t, m)
	for _, c := range []struct {
		name  string
		order *ordersv1.SubmitOrderRequest
		field string
		words []string
	}{
		{"no order", nil, "order", []string{"invalid order", "must be set"}},
		{"no side", limitOrder("alice", "x1", ordersv1.Side_SIDE_UNSPECIFIED, "100", "1"), "side", []string{"invalid side"}},
		{"bad price", limitOrder("alice", "x2", buy, "1e5", "1"), "price", []string{"invalid price"}},
		{"price off the tick grid", limitOrder("alice", "x3", buy, "100.001", "1"), "price", []string{"price", "0.01"}},
		{"quantity off the lot grid", limitOrder("alice", "x4", buy, "100", "0.0001"), "quantity", []string{"quantity", "0.001"}},
	} {
		e := ask(t, st, 7, c.order).GetError()
		if codes.Code(e.GetCode()) != codes.InvalidArgument || e.GetReason() != "INVALID_ARGUMENT" || e.GetField() != c.field {
			t.Fatalf("%s: %v", c.name, e)
		}
		for _, w := range c.words {
			if !strings.Contains(e.GetMessage(), w) {
				t.Fatalf("%s: message %q does not mention %q", c.name, e.GetMessage(), w)
			}
		}
		// The unary call says the same.
		_, err := m.oc.SubmitOrder(ctxT(t), c.order)
		if c.order == nil {
			continue // the unary call has no "no order" case
		}
		wantCode(t, err, codes.InvalidArgument, c.words...)
	}
	if e := ask(t, st, 8, &ordersv1.SubmitOrderRequest{Account: "alice", ClientOrderId: "y", Symbol: "NOPE", Side: buy,
		Type: ordersv1.OrderType_ORDER_TYPE_LIMIT, Price: "1", Quantity: "1"}).GetError(); codes.Code(e.GetCode()) != codes.NotFound || e.GetReason() != "UNKNOWN_SYMBOL" {
		t.Fatalf("unknown symbol: %v", e)
	}
	o := ask(t, st, 9, limitOrder("alice", "ok", buy, "100.25", "0.5")).GetSubmitted().GetOrder()
	if o.GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_ACCEPTED || o.GetPrice() != "100.25" {
		t.Fatalf("order after the bad ones: %v", o)
	}
	fok := limitOrder("bob", "fok", sell, "90", "5")
	fok.Type = ordersv1.OrderType_ORDER_TYPE_FOK
	if o := ask(t, st, 10, fok).GetSubmitted().GetOrder(); o.GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_REJECTED || len(o.GetRejectReasons()) == 0 {
		t.Fatalf("unfillable FOK: %v", o)
	}
}

// Resending an order (same account and client_order_id), on the same
// stream, a new one or with SubmitOrder, answers the same order with
// duplicate set: what a client does after a broken stream is safe.
func TestSubmitOrdersResendIsIdempotent(t *testing.T) {
	m := startMesh(t, meshConfig{})
	m.instrument(t, "BTC-USD", "0.01", "0.001")
	st := openEntry(t, m)
	o := limitOrder("alice", "once", buy, "99.99", "0.002")
	first := ask(t, st, 1, o).GetSubmitted()
	if first.GetDuplicate() || first.GetOrder().GetOrderId() == 0 {
		t.Fatalf("first submit: %v", first)
	}
	again := ask(t, st, 2, o).GetSubmitted()
	if !again.GetDuplicate() || again.GetOrder().GetOrderId() != first.GetOrder().GetOrderId() {
		t.Fatalf("resend on the stream: %v, first %v", again, first)
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	onNew := ask(t, openEntry(t, m), 1, o).GetSubmitted()
	if !onNew.GetDuplicate() || onNew.GetOrder().GetOrderId() != first.GetOrder().GetOrderId() {
		t.Fatalf("resend on a new stream: %v", onNew)
	}
	unary, err := m.oc.SubmitOrder(ctxT(t), o)
	if err != nil || !unary.GetDuplicate() || unary.GetOrder().GetOrderId() != first.GetOrder().GetOrderId() {
		t.Fatalf("resend with SubmitOrder: %v %v", unary, err)
	}
	list, err := m.oc.ListOrders(ctxT(t), &ordersv1.ListOrdersRequest{Account: "alice"})
	if err != nil || len(list.GetOrders()) != 1 {
		t.Fatalf("alice's orders after 4 sends of one: %v %v", list, err)
	}
}

// An open stream does not keep the orders component loaded: unloading it
// does not wait for the stream, and the next order on the stream loads it
// again.
func TestSubmitOrdersStreamDoesNotPinOrders(t *testing.T) {
	m := startMesh(t, meshConfig{})
	m.instrument(t, "BTC-USD", "0.01", "0.001")
	st := openEntry(t, m)
	if o := ask(t, st, 1, limitOrder("alice", "before", buy, "100", "1")).GetSubmitted().GetOrder(); o.GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_ACCEPTED {
		t.Fatalf("order before unloading: %v", o)
	}
	lc := lifecyclev1.NewLifecycleServiceClient(m.Orders.Conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t0 := time.Now()
	resp, err := lc.Deactivate(ctx, &lifecyclev1.DeactivateRequest{Component: "orders"})
	if err != nil || resp.GetComponent().GetState() != coordinatorv1.ComponentState_COMPONENT_STATE_DORMANT {
		t.Fatalf("deactivate orders with a stream open: %v %v", resp, err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("deactivating orders took %v with a stream open", d)
	}
	if o := ask(t, st, 2, limitOrder("alice", "after", buy, "100.5", "1")).GetSubmitted().GetOrder(); o.GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_ACCEPTED {
		t.Fatalf("order after orders unloaded: %v", o)
	}
	state, err := lc.GetState(ctx, &lifecyclev1.GetStateRequest{Component: "orders"})
	if err != nil || len(state.GetComponents()) != 1 || state.GetComponents()[0].GetState() != coordinatorv1.ComponentState_COMPONENT_STATE_ACTIVE {
		t.Fatalf("orders after an order on the stream: %v %v", state, err)
	}
}
