package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	riskv1 "github.com/tradsys/mesh/proto/tradsys/risk/v1"
	"github.com/tradsys/mesh/services/orders/orderstest"
	riskserver "github.com/tradsys/mesh/services/risk/server"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// mesh is the order path in-process (see orderstest), with short names
// for the tests.
type mesh struct {
	*orderstest.Mesh
	oc ordersv1.OrderServiceClient
	rc riskv1.RiskServiceClient
	mc matchingv1.MatchingServiceClient
}

type meshConfig struct {
	budget   int64
	riskOpts func(*riskserver.Options)
}

func startMesh(t testing.TB, c meshConfig) *mesh {
	t.Helper()
	m := orderstest.Start(t, orderstest.Config{Budget: c.budget, Risk: c.riskOpts})
	return &mesh{Mesh: m, oc: m.OrderService, rc: m.RiskService, mc: m.MatchingService}
}

func (m *mesh) instrument(t testing.TB, sym, tick, lot string) { m.Instrument(t, sym, tick, lot) }

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (m *mesh) submit(t testing.TB, acct, coid, sym string, side ordersv1.Side, price, qty string) *ordersv1.Order {
	t.Helper()
	resp, err := m.oc.SubmitOrder(ctxT(t), &ordersv1.SubmitOrderRequest{Account: acct, ClientOrderId: coid, Symbol: sym,
		Side: side, Type: ordersv1.OrderType_ORDER_TYPE_LIMIT, Price: price, Quantity: qty})
	if err != nil {
		t.Fatalf("submit %s/%s: %v", acct, coid, err)
	}
	return resp.GetOrder()
}

// wantCode fails unless err has code and its message mentions every word.
func wantCode(t testing.TB, err error, code codes.Code, words ...string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("got %v (%v), want %v", st.Code(), err, code)
	}
	for _, w := range words {
		if !strings.Contains(st.Message(), w) {
			t.Fatalf("message %q does not mention %q", st.Message(), w)
		}
	}
}

const (
	buy  = ordersv1.Side_SIDE_BUY
	sell = ordersv1.Side_SIDE_SELL
)
