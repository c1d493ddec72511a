package server_test

import (
	"fmt"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	lifecyclev1 "github.com/tradsys/mesh/proto/tradsys/lifecycle/v1"
	"github.com/tradsys/mesh/services/orders/orderstest"
	"github.com/tradsys/mesh/services/orders/server"
	"google.golang.org/grpc"
	"strings"
	"testing"
	"time"

	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
)

// A risk or matching that cannot be reached turns the order REJECTED with
// the reason: recorded, never lost, never half-applied.
func TestUnreachableServicesReject(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprint("stream=", stream), func(t *testing.T) { testUnreachable(t, stream) })
	}
}

func testUnreachable(t *testing.T, stream bool) {
	om := orderstest.Start(t, orderstest.Config{Orders: func(o *server.Options) { o.StreamSubmits, o.StreamRisk = stream, stream }})
	m := &mesh{Mesh: om, oc: om.OrderService, rc: om.RiskService, mc: om.MatchingService}
	m.instrument(t, "BTC-USD", "0.01", "0.001")
	m.submit(t, "warm", "w1", "BTC-USD", buy, "100", "1") // everything active

	t0 := time.Now()
	m.Matching.Stop()
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("matching took %v to stop (a client's open stream held it up)", d)
	}
	t0 = time.Now()
	o := m.submit(t, "ivy", "i1", "BTC-USD", buy, "100", "1")
	if o.GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_REJECTED || !strings.Contains(strings.Join(o.GetRejectReasons(), " "), "matching") {
		t.Fatalf("with matching down: %v", o)
	}
	m.Risk.Stop()
	o = m.submit(t, "ivy", "i2", "BTC-USD", buy, "100", "1")
	if o.GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_REJECTED || !strings.Contains(strings.Join(o.GetRejectReasons(), " "), "risk check unavailable") {
		t.Fatalf("with risk down: %v", o)
	}
	// Both are kept, and a retry answers the same rejected order.
	again, err := m.oc.SubmitOrder(ctxT(t), &ordersv1.SubmitOrderRequest{Account: "ivy", ClientOrderId: "i1", Symbol: "BTC-USD",
		Side: buy, Type: ordersv1.OrderType_ORDER_TYPE_LIMIT, Price: "100", Quantity: "1"})
	if err != nil || !again.GetDuplicate() || again.GetOrder().GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_REJECTED {
		t.Fatalf("retry: %v %v", again, err)
	}
}

// A dormant risk or matching is activated while the order waits: the order
// goes through, it is not rejected. (Matching stays active once orders
// follows its trades: an open trade stream is a call in flight.)
func TestDormantServicesActivateOnDemand(t *testing.T) {
	m := startMesh(t, meshConfig{})
	ctx := ctxT(t)
	state := func(conn *grpc.ClientConn, component string) coordinatorv1.ComponentState {
		t.Helper()
		st, err := lifecyclev1.NewLifecycleServiceClient(conn).GetState(ctx, &lifecyclev1.GetStateRequest{Component: component})
		if err != nil || len(st.GetComponents()) != 1 {
			t.Fatalf("state of %s: %v %v", component, st, err)
		}
		return st.GetComponents()[0].GetState()
	}
	if s := state(m.Matching.Conn, "matching"); s != coordinatorv1.ComponentState_COMPONENT_STATE_DORMANT {
		t.Fatalf("matching before any order: %v", s)
	}
	m.instrument(t, "BTC-USD", "0.01", "0.001")
	m.submit(t, "warm", "w1", "BTC-USD", sell, "100", "1")
	if s := state(m.Matching.Conn, "matching"); s != coordinatorv1.ComponentState_COMPONENT_STATE_ACTIVE {
		t.Fatalf("matching after the first order: %v", s)
	}
	for _, component := range []string{"risk/validator/max-notional", "risk/validator/price-band", "risk"} {
		resp, err := lifecyclev1.NewLifecycleServiceClient(m.Risk.Conn).Deactivate(ctx, &lifecyclev1.DeactivateRequest{Component: component})
		if err != nil || resp.GetComponent().GetState() != coordinatorv1.ComponentState_COMPONENT_STATE_DORMANT {
			t.Fatalf("deactivate %s: %v %v", component, resp, err)
		}
	}
	if o := m.submit(t, "lee", "l1", "BTC-USD", buy, "100", "1"); o.GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_FILLED {
		t.Fatalf("order after risk went dormant: %v", o)
	}
	for _, component := range []string{"risk/validator/max-notional", "risk"} {
		if s := state(m.Risk.Conn, component); s != coordinatorv1.ComponentState_COMPONENT_STATE_ACTIVE {
			t.Fatalf("%s after the order: %v", component, s)
		}
	}
}
