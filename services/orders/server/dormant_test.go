package server_test

import (
	"testing"
	"time"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	lifecyclev1 "github.com/tradsys/mesh/proto/tradsys/lifecycle/v1"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	matchingserver "github.com/tradsys/mesh/services/matching/server"
	"github.com/tradsys/mesh/services/orders/orderstest"
	"github.com/tradsys/mesh/services/orders/server"
)

// orders and risk follow matching's trades without keeping it loaded:
// matching unloads when idle with a resting order in the book, wakes for
// the crossing order, and the resting order's fill (which orders learns
// only from the trade stream) is applied; then matching unloads again.
func TestMatchingUnloadsWhileOrdersFollowsAndNoFillIsMissed(t *testing.T) {
	om := orderstest.Start(t, orderstest.Config{
		Matching: func(o *matchingserver.Options) {
			o.Engine.IdleTimeout, o.Algorithm.IdleTimeout = time.Second, time.Second
		},
		// The shared submit stream is a call in flight while open; it closes
		// after this long unused (a minute by default, under matching's 5).
		Orders: func(o *server.Options) { o.StreamIdle = 500 * time.Millisecond },
	})
	m := &mesh{Mesh: om, oc: om.OrderService, rc: om.RiskService, mc: om.MatchingService}
	m.instrument(t, "BTC-USD", "0.01", "0.001")
	engine := func() coordinatorv1.ComponentState {
		st, err := lifecyclev1.NewLifecycleServiceClient(om.Matching.Conn).GetState(ctxT(t), &lifecyclev1.GetStateRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range st.GetComponents() {
			if c.GetName() == matchingserver.MainComponent {
				return c.GetState()
			}
		}
		return 0
	}
	waitDormant := func(when string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for engine() != coordinatorv1.ComponentState_COMPONENT_STATE_DORMANT {
			if time.Now().After(deadline) {
				t.Fatalf("%s: matching still %v after 30s with a 1s idle timeout: a follower keeps it loaded", when, engine())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	maker := m.submit(t, "alice", "a-1", "BTC-USD", sell, "100.00", "2")
	if maker.GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_ACCEPTED {
		t.Fatalf("resting sell: %v", maker)
	}
	waitDormant("with a resting order and orders following its symbol")
	taker := m.submit(t, "bob", "b-1", "BTC-USD", buy, "100.00", "2")
	if taker.GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_FILLED {
		t.Fatalf("crossing buy: %v", taker)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		o, err := m.oc.GetOrder(ctxT(t), &ordersv1.GetOrderRequest{OrderId: maker.GetOrderId()})
		if err != nil {
			t.Fatal(err)
		}
		if o.GetOrder().GetStatus() == ordersv1.OrderStatus_ORDER_STATUS_FILLED {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the resting order's fill never reached orders: %v", o.GetOrder())
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitDormant("after the trade")
}
