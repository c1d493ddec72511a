package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/grpcfuzz"
	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	"github.com/tradsys/mesh/services/matching/server"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// FuzzHandlers decodes random bytes as each request type and sends them
// through the full server chain (validation, lazy gate, handlers, engine,
// journal) over real gRPC: the answer may be any clear error, but never
// INTERNAL or UNKNOWN, and the process must not crash.
func FuzzHandlers(f *testing.F) {
	methods := grpcfuzz.Methods(f, matchingv1.File_tradsys_matching_v1_matching_proto.Services().ByName("MatchingService"))
	seed := func(name string, m proto.Message) { grpcfuzz.Seed(f, methods, name, m) }
	seed("SubmitOrder", limit("F", 1, buy, 100, 5))
	seed("SubmitOrder", limit("F", 2, sell, 99, 7))
	seed("SubmitOrder", &matchingv1.SubmitOrderRequest{Symbol: "F", OrderId: 3, Side: sell, Type: matchingv1.OrderType_ORDER_TYPE_MARKET, Quantity: 1 << 40})
	seed("SubmitOrder", &matchingv1.SubmitOrderRequest{Symbol: "F", OrderId: 4, Side: buy, Type: matchingv1.OrderType_ORDER_TYPE_FOK, Price: 1 << 48, Quantity: 3})
	seed("SubmitOrder", &matchingv1.SubmitOrderRequest{Symbol: "F", OrderId: 5, Side: buy, Type: matchingv1.OrderType_ORDER_TYPE_POST_ONLY, Price: 101, Quantity: 3})
	seed("SubmitOrder", &matchingv1.SubmitOrderRequest{Symbol: "F", OrderId: 6, Side: 9, Type: 77, Price: -1, Quantity: -1})
	seed("CancelOrder", &matchingv1.CancelOrderRequest{Symbol: "F", OrderId: 1})
	seed("ReplaceOrder", &matchingv1.ReplaceOrderRequest{Symbol: "F", OrderId: 2, Price: 1 << 48, Quantity: 1 << 40})
	seed("GetOrder", &matchingv1.GetOrderRequest{Symbol: "F", OrderId: 2})
	seed("GetOrderBook", &matchingv1.GetOrderBookRequest{Symbol: "F", Depth: 1000})
	seed("StreamTrades", &matchingv1.StreamTradesRequest{Symbol: "F", FromSequence: 1})
	seed("StreamTrades", &matchingv1.StreamTradesRequest{Symbol: "F", FromSequence: 1 << 63})
	seed("SubmitOrders", &matchingv1.SubmitOrdersRequest{Order: limit("F", 7, sell, 100, 1)})
	seed("SubmitOrders", &matchingv1.SubmitOrdersRequest{})
	seed("LoadAlgorithm", &matchingv1.LoadAlgorithmRequest{Name: "pro-rata"})
	seed("UnloadAlgorithm", &matchingv1.UnloadAlgorithmRequest{Name: "PRO_RATA"})
	seed("ListAlgorithms", &matchingv1.ListAlgorithmsRequest{})
	seed("SetSymbolAlgorithm", &matchingv1.SetSymbolAlgorithmRequest{Symbol: "F", Algorithm: "pro-rata"})
	seed("SetSymbolAlgorithm", &matchingv1.SetSymbolAlgorithmRequest{Symbol: "F", Algorithm: "fifo", FencingToken: 1})

	e := startEnv(f, server.Options{TradeRing: 64, LockWait: 200 * time.Millisecond})
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		md, req, ok := grpcfuzz.Decode(methods, which, data)
		if !ok {
			return // gRPC itself refuses undecodable bytes before any handler
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if md.ServerStream && !md.ClientStream {
			// StreamTrades follows live trades: a healthy stream runs until cut.
			var scancel context.CancelFunc
			ctx, scancel = context.WithTimeout(ctx, 100*time.Millisecond)
			defer scancel()
		}
		err := grpcfuzz.Call(ctx, e.conn, md, req)
		grpcfuzz.Check(t, md, req, err)
		if status.Code(err) == codes.DeadlineExceeded && !(md.ServerStream && !md.ClientStream) {
			// Lock waits are bounded by LockWait; anything else is a hang.
			switch md.Name {
			case "SetSymbolAlgorithm", "LoadAlgorithm", "UnloadAlgorithm":
			default:
				t.Fatalf("%s(%v) hung: %v", md.FullName, req, err)
			}
		}
	})
}
