package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/grpcfuzz"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// FuzzHandlers decodes random bytes as each OrderService request and sends
// them through the whole chain (validation, lazy gate, handlers, the order
// store, risk and matching over real gRPC): any clear error is fine, never
// INTERNAL or UNKNOWN, never a crash or a hang.
func FuzzHandlers(f *testing.F) {
	methods := grpcfuzz.Methods(f, ordersv1.File_tradsys_orders_v1_orders_proto.Services().ByName("OrderService"))
	seed := func(name string, m proto.Message) { grpcfuzz.Seed(f, methods, name, m) }
	limit := func(acct, coid string, side ordersv1.Side, price, qty string) *ordersv1.SubmitOrderRequest {
		return &ordersv1.SubmitOrderRequest{Account: acct, ClientOrderId: coid, Symbol: "F", Side: side,
			Type: ordersv1.OrderType_ORDER_TYPE_LIMIT, Price: price, Quantity: qty}
	}
	seed("SubmitOrder", limit("a", "1", buy, "100.5", "0.25"))
	seed("SubmitOrder", limit("b", "1", sell, "100", "1"))
	seed("SubmitOrder", limit("b", "2", sell, "100.123", "1"))
	seed("SubmitOrder", limit("b", "3", sell, "99999999999.5", "99999999999"))
	seed("SubmitOrder", &ordersv1.SubmitOrderRequest{Account: "c", ClientOrderId: "m", Symbol: "F", Side: buy, Type: ordersv1.OrderType_ORDER_TYPE_MARKET, Quantity: "3"})
	seed("SubmitOrder", &ordersv1.SubmitOrderRequest{Account: "c", ClientOrderId: "k", Symbol: "F", Side: buy, Type: ordersv1.OrderType_ORDER_TYPE_FOK, Price: "100", Quantity: "50"})
	seed("SubmitOrders", &ordersv1.SubmitOrdersRequest{RequestId: 1, Order: limit("d", "s1", buy, "100.5", "0.25")})
	seed("SubmitOrders", &ordersv1.SubmitOrdersRequest{RequestId: 2, Order: limit("d", "s2", sell, "100.123", "1")})
	seed("SubmitOrders", &ordersv1.SubmitOrdersRequest{RequestId: 3, Order: &ordersv1.SubmitOrderRequest{Account: "a b"}})
	seed("SubmitOrders", &ordersv1.SubmitOrdersRequest{RequestId: 4})
	seed("CancelOrder", &ordersv1.CancelOrderRequest{Account: "a", OrderId: 1})
	seed("ReplaceOrder", &ordersv1.ReplaceOrderRequest{Account: "a", OrderId: 1, Price: "101", Quantity: "0.5"})
	seed("GetOrder", &ordersv1.GetOrderRequest{OrderId: 1})
	seed("ListOrders", &ordersv1.ListOrdersRequest{Account: "a", Statuses: []ordersv1.OrderStatus{ordersv1.OrderStatus_ORDER_STATUS_NEW},
		CreatedAfter: timestamppb.New(time.Unix(0, 0)), PageSize: 2, PageToken: "zz"})
	seed("StreamOrderUpdates", &ordersv1.StreamOrderUpdatesRequest{FromSequence: 1})
	seed("GetPositions", &ordersv1.GetPositionsRequest{Account: "a"})
	seed("CreateInstrument", &ordersv1.CreateInstrumentRequest{Instrument: &ordersv1.Instrument{Symbol: "G", TickSize: "0.03", LotSize: "7",
		MinPrice: "0.03", MaxPrice: "0.02"}})
	seed("GetInstrument", &ordersv1.GetInstrumentRequest{Symbol: "F"})
	seed("ListInstruments", &ordersv1.ListInstrumentsRequest{})
	seed("UpdateInstrumentStatus", &ordersv1.UpdateInstrumentStatusRequest{Symbol: "F", Status: ordersv1.InstrumentStatus_INSTRUMENT_STATUS_HALTED})

	m := startMesh(f, meshConfig{})
	m.instrument(f, "F", "0.5", "0.25")
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		md, req, ok := grpcfuzz.Decode(methods, which, data)
		if !ok {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// A server stream (StreamOrderUpdates) follows updates until the
		// client ends it; a bidi one (SubmitOrders) ends once the client has
		// closed its side and had its answers, so must not hang.
		openEnded := md.ServerStream && !md.ClientStream
		if openEnded {
			var scancel context.CancelFunc
			ctx, scancel = context.WithTimeout(ctx, 100*time.Millisecond)
			defer scancel()
		}
		err := grpcfuzz.Call(ctx, m.Orders.Conn, md, req)
		grpcfuzz.Check(t, md, req, err)
		if status.Code(err) == codes.DeadlineExceeded && !openEnded {
			t.Fatalf("%s(%v) hung: %v", md.FullName, req, err)
		}
	})
}
