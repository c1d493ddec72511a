package server_test

import (
	"context"
	"net"
	"testing"
	"time"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	lifecyclev1 "github.com/tradsys/mesh/proto/tradsys/lifecycle/v1"
	riskv1 "github.com/tradsys/mesh/proto/tradsys/risk/v1"
	"github.com/tradsys/mesh/services/risk/server"
	"google.golang.org/grpc/codes"
)

// ValidateOrders answers each request with its own id: the same verdict as
// ValidateOrder, an error answer for a request that is not valid (the
// stream goes on), and it does not keep risk loaded: risk unloads while
// the stream is open, and the next order on it loads risk again.
func TestValidateOrdersStream(t *testing.T) {
	conn := startRisk(t)
	rc := riskv1.NewRiskServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := rc.SetLimits(ctx, &riskv1.SetLimitsRequest{Limits: &riskv1.Limits{Account: "a", MaxOrderQuantity: "10"}}); err != nil {
		t.Fatal(err)
	}
	st, err := rc.ValidateOrders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ask := func(id uint64, o *riskv1.ValidateOrderRequest) *riskv1.ValidateOrdersResponse {
		t.Helper()
		if err := st.Send(&riskv1.ValidateOrdersRequest{RequestId: id, Order: o}); err != nil {
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
	small := &riskv1.ValidateOrderRequest{Account: "a", Symbol: "X", Side: riskv1.Side_SIDE_BUY, Quantity: "1"}
	big := &riskv1.ValidateOrderRequest{Account: "a", Symbol: "X", Side: riskv1.Side_SIDE_SELL, Quantity: "11"}
	if v := ask(7, small).GetVerdict(); !v.GetApproved() {
		t.Fatalf("small order: %v", v)
	}
	v := ask(8, big).GetVerdict()
	unary, err := rc.ValidateOrder(ctx, big)
	if err != nil || v.GetApproved() || len(v.GetResults()) != len(unary.GetResults()) {
		t.Fatalf("big order: stream %v, unary %v %v", v, unary, err)
	}
	for i, r := range v.GetResults() {
		if u := unary.GetResults()[i]; r.GetPassed() != u.GetPassed() || r.GetReason() != u.GetReason() {
			t.Errorf("check %d: stream %v, unary %v", i, r, u)
		}
	}
	if e := ask(9, &riskv1.ValidateOrderRequest{Account: "a", Symbol: "X", Quantity: "1"}).GetError(); codes.Code(e.GetCode()) != codes.InvalidArgument ||
		e.GetMessage() != "invalid side: SIDE_UNSPECIFIED is not SIDE_BUY or SIDE_SELL" {
		t.Fatalf("order without a side: %v", e)
	}
	if e := ask(10, nil).GetError(); codes.Code(e.GetCode()) != codes.InvalidArgument {
		t.Fatalf("request without an order: %v", e)
	}

	// Unloading risk does not wait for the open stream (its drain would
	// last the stream's life if the stream were a call in flight).
	lc := lifecyclev1.NewLifecycleServiceClient(conn)
	t0 := time.Now()
	resp, err := lc.Deactivate(ctx, &lifecyclev1.DeactivateRequest{Component: "risk"})
	if err != nil || resp.GetComponent().GetState() != coordinatorv1.ComponentState_COMPONENT_STATE_DORMANT {
		t.Fatalf("deactivate risk with a stream open: %v %v", resp, err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("deactivating risk took %v with a stream open", d)
	}
	if v := ask(11, small).GetVerdict(); !v.GetApproved() {
		t.Fatalf("order after risk unloaded: %v", v)
	}
	state, err := lc.GetState(ctx, &lifecyclev1.GetStateRequest{Component: "risk"})
	if err != nil || state.GetComponents()[0].GetState() != coordinatorv1.ComponentState_COMPONENT_STATE_ACTIVE {
		t.Fatalf("risk after an order on the stream: %v %v", state, err)
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
}

// The checks of one stream are independent: one that waits (the price
// band fetching a symbol's last trade from a matching that does not
// answer) holds up only its own order; an order behind it is answered at
// once.
func TestValidateOrdersStreamHasNoHeadOfLineBlocking(t *testing.T) {
	// A "matching" that accepts connections and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	conn := startRiskWith(t, func(o *server.Options) { o.Matching = silent.Addr().String() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := riskv1.NewRiskServiceClient(conn).ValidateOrders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The band waits for the limit order's symbol; the market order has
	// no price for it to check.
	waits := &riskv1.ValidateOrderRequest{Account: "a", Symbol: "SLOW", Side: riskv1.Side_SIDE_BUY, Price: "100", Quantity: "1", TickSize: "0.01"}
	quick := &riskv1.ValidateOrderRequest{Account: "b", Symbol: "QUICK", Side: riskv1.Side_SIDE_BUY, Quantity: "1"}
	start := time.Now()
	for i, o := range []*riskv1.ValidateOrderRequest{waits, quick} {
		if err := st.Send(&riskv1.ValidateOrdersRequest{RequestId: uint64(i + 1), Order: o}); err != nil {
			t.Fatal(err)
		}
	}
	first, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if first.GetRequestId() != 2 || time.Since(start) > time.Second {
		t.Fatalf("first answer: request %d after %v; want the market order's (2), at once", first.GetRequestId(), time.Since(start))
	}
	if second, err := st.Recv(); err != nil || second.GetRequestId() != 1 {
		t.Fatalf("second answer: %v %v", second, err)
	}
}
