package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/grpcfuzz"
	"github.com/tradsys/mesh/pkg/proctest"
	gatewayv1 "github.com/tradsys/mesh/proto/tradsys/gateway/v1"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func withKey(key string) context.Context {
	return metadata.AppendToOutgoingContext(bg, "authorization", "Bearer "+key)
}

func TestGRPCGatewayOrdersWithKeys(t *testing.T) {
	m := startMesh(t, nil)
	gw := gatewayv1.NewGatewayServiceClient(dialGRPC(t, m.gwAddr))
	sell := &gatewayv1.SubmitOrderRequest{Symbol: symbol, Side: ordersv1.Side_SIDE_SELL, Type: ordersv1.OrderType_ORDER_TYPE_LIMIT,
		Price: "100", Quantity: "2"}
	if _, err := gw.SubmitOrder(bg, sell); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no key: %v", err)
	}
	if _, err := gw.SubmitOrder(withKey("not-a-key-of-this-gateway"), sell); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("unknown key: %v", err)
	}
	claim := proto.Clone(sell).(*gatewayv1.SubmitOrderRequest)
	claim.Account = "2"
	if _, err := gw.SubmitOrder(withKey(keyA), claim); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("alice claiming bob's account: %v", err)
	}

	ctx, cancel := context.WithCancel(withKey(keyA))
	defer cancel()
	updates, err := gw.StreamOrderUpdates(ctx, &gatewayv1.StreamOrderUpdatesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := gw.SubmitOrder(withKey(keyA), sell)
	if err != nil {
		t.Fatal(err)
	}
	o := resp.GetOrder()
	if o.GetAccount() != "1" || o.GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_ACCEPTED || o.GetClientOrderId() == "" {
		t.Fatalf("alice's order %v", o)
	}
	// Bob can neither cancel nor replace it.
	if _, err := gw.CancelOrder(withKey(keyB), &gatewayv1.CancelOrderRequest{OrderId: o.GetOrderId()}); status.Code(err) != codes.PermissionDenied &&
		status.Code(err) != codes.NotFound {
		t.Fatalf("bob cancelling alice's order: %v", err)
	}
	if _, err := gw.ReplaceOrder(withKey(keyB), &gatewayv1.ReplaceOrderRequest{OrderId: o.GetOrderId(), Price: "90", Quantity: "1"}); status.Code(err) != codes.PermissionDenied &&
		status.Code(err) != codes.NotFound {
		t.Fatalf("bob replacing alice's order: %v", err)
	}
	// Bob's buy fills it; alice's stream shows the fill.
	if _, err := gw.SubmitOrder(withKey(keyB), &gatewayv1.SubmitOrderRequest{Symbol: symbol, Side: ordersv1.Side_SIDE_BUY,
		Type: ordersv1.OrderType_ORDER_TYPE_IOC, Price: "100", Quantity: "2"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for filled := false; !filled; {
		select {
		case <-deadline:
			t.Fatal("no fill on alice's stream")
		default:
		}
		u, err := updates.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if u.GetOrder().GetAccount() != "1" {
			t.Fatalf("alice's stream carries account %q", u.GetOrder().GetAccount())
		}
		filled = u.GetOrder().GetOrderId() == o.GetOrderId() && u.GetOrder().GetStatus() == ordersv1.OrderStatus_ORDER_STATUS_FILLED
	}
	book, err := gw.GetOrderBook(withKey(keyA), &gatewayv1.GetOrderBookRequest{Symbol: symbol})
	if err != nil || book.GetLastTradeSequence() != 1 || len(book.GetAsks()) != 0 {
		t.Fatalf("book after the trade: %v %v", book, err)
	}
	// Historical made the trade a candle.
	proctest.Eventually(t, 10*time.Second, "the trade's candle", func() bool {
		resp, err := gw.GetCandles(withKey(keyA), &gatewayv1.GetCandlesRequest{Symbol: symbol})
		if err != nil || len(resp.GetCandles()) == 0 {
			return false
		}
		c := resp.GetCandles()[len(resp.GetCandles())-1]
		return c.GetTrades() == 1 && c.GetClose() == "100.00000000" && c.GetVolume() == "2.00000000"
	})
	if _, err := gw.GetCandles(withKey(keyA), &gatewayv1.GetCandlesRequest{Symbol: symbol, Interval: "2m"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("interval 2m: %v", err)
	}
	// Bad input names the field.
	_, err = gw.SubmitOrder(withKey(keyA), &gatewayv1.SubmitOrderRequest{Symbol: symbol, Side: ordersv1.Side_SIDE_BUY,
		Type: ordersv1.OrderType_ORDER_TYPE_LIMIT, Price: "1e3", Quantity: "1"})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("price 1e3: %v", err)
	}
}

// FuzzGatewayService sends decoded random requests through the whole chain
// (validation, key check, gate, orders, risk, matching): any clear error,
// never INTERNAL or UNKNOWN, never a crash.
func FuzzGatewayService(f *testing.F) {
	methods := grpcfuzz.Methods(f, gatewayv1.File_tradsys_gateway_v1_gateway_proto.Services().ByName("GatewayService"))
	seed := func(name string, m proto.Message) { grpcfuzz.Seed(f, methods, name, m) }
	seed("SubmitOrder", &gatewayv1.SubmitOrderRequest{Symbol: symbol, Side: ordersv1.Side_SIDE_BUY, Type: ordersv1.OrderType_ORDER_TYPE_LIMIT, Price: "100", Quantity: "1"})
	seed("SubmitOrder", &gatewayv1.SubmitOrderRequest{Symbol: symbol, Side: ordersv1.Side_SIDE_SELL, Type: ordersv1.OrderType_ORDER_TYPE_MARKET, Quantity: "3", Account: "2"})
	seed("ReplaceOrder", &gatewayv1.ReplaceOrderRequest{OrderId: 1, Price: "101", Quantity: "2"})
	seed("CancelOrder", &gatewayv1.CancelOrderRequest{OrderId: 1})
	seed("StreamOrderUpdates", &gatewayv1.StreamOrderUpdatesRequest{Symbol: symbol, FromSequence: 1})
	seed("StreamTrades", &gatewayv1.StreamTradesRequest{Symbol: symbol, FromSequence: 1})
	seed("GetOrderBook", &gatewayv1.GetOrderBookRequest{Symbol: symbol, Depth: 50})
	seed("GetCandles", &gatewayv1.GetCandlesRequest{Symbol: symbol, Interval: "5m", Limit: 1000})
	m := startMesh(f, nil)
	conn := dialGRPC(f, m.gwAddr)
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		md, req, ok := grpcfuzz.Decode(methods, which, data)
		if !ok {
			return
		}
		ctx, cancel := context.WithTimeout(withKey(keyA), 3*time.Second)
		defer cancel()
		if md.ServerStream {
			var scancel context.CancelFunc
			ctx, scancel = context.WithTimeout(ctx, 100*time.Millisecond)
			defer scancel()
		}
		err := grpcfuzz.Call(ctx, conn, md, req)
		grpcfuzz.Check(t, md, req, err)
	})
}

// A refusal from orders keeps its code and details through the gateway: a
// reused client_order_id is ALREADY_EXISTS naming the earlier order, a
// resumption from a sequence not given yet OUT_OF_RANGE naming the next.
func TestGRPCGatewayKeepsOrdersRefusals(t *testing.T) {
	m := startMesh(t, nil)
	gw := gatewayv1.NewGatewayServiceClient(dialGRPC(t, m.gwAddr))
	sell := &gatewayv1.SubmitOrderRequest{ClientOrderId: "keep-1", Symbol: symbol, Side: ordersv1.Side_SIDE_SELL,
		Type: ordersv1.OrderType_ORDER_TYPE_LIMIT, Price: "100", Quantity: "2"}
	first, err := gw.SubmitOrder(withKey(keyA), sell)
	if err != nil {
		t.Fatal(err)
	}
	other := proto.Clone(sell).(*gatewayv1.SubmitOrderRequest)
	other.Quantity = "3"
	_, err = gw.SubmitOrder(withKey(keyA), other)
	// (Through the SubmitOrders stream the gateway submits on, with all of
	// orders' metadata.)
	if info := errorInfo(err); status.Code(err) != codes.AlreadyExists || info.GetDomain() != "gateway.tradsys" ||
		info.GetReason() != "CLIENT_ORDER_ID_REUSED" || info.GetMetadata()["field"] != "client_order_id" ||
		info.GetMetadata()["order_id"] != fmt.Sprint(first.GetOrder().GetOrderId()) || info.GetMetadata()["differs"] != "quantity" ||
		!strings.Contains(status.Convert(err).Message(), fmt.Sprint("already order ", first.GetOrder().GetOrderId())) {
		t.Fatalf("reused client_order_id: %v, info %v", err, info)
	}
	ctx, cancel := context.WithTimeout(withKey(keyA), 10*time.Second)
	defer cancel()
	st, err := gw.StreamOrderUpdates(ctx, &gatewayv1.StreamOrderUpdatesRequest{FromSequence: 1 << 40})
	if err == nil {
		_, err = st.Recv()
	}
	if info := errorInfo(err); status.Code(err) != codes.OutOfRange || info.GetMetadata()["next_sequence"] == "" {
		t.Fatalf("updates from a sequence not given yet: %v, info %v", err, info)
	}
}

func errorInfo(err error) *errdetails.ErrorInfo {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}
