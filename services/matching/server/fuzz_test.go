package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	"github.com/tradsys/mesh/services/matching/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

var slowLog = os.Getenv("MATCHFUZZ_SLOWLOG") // debugging: log executions slower than 500ms

type fuzzMethod struct {
	full    string
	in, out protoreflect.MessageType
	bidi    bool
	srvStrm bool
}

func fuzzMethods(t testing.TB) []fuzzMethod {
	sd := matchingv1.File_tradsys_matching_v1_matching_proto.Services().ByName("MatchingService")
	var out []fuzzMethod
	for i := 0; i < sd.Methods().Len(); i++ {
		md := sd.Methods().Get(i)
		in, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
		if err != nil {
			t.Fatal(err)
		}
		o, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fuzzMethod{full: "/" + string(sd.FullName()) + "/" + string(md.Name()), in: in, out: o,
			bidi: md.IsStreamingClient(), srvStrm: md.IsStreamingServer()})
	}
	return out
}

// FuzzHandlers decodes random bytes as each request type and sends them
// through the full server chain (validation, lazy gate, handlers, engine,
// journal) over real gRPC: the answer may be any clear error, but never
// INTERNAL or UNKNOWN, and the process must not crash.
func FuzzHandlers(f *testing.F) {
	methods := fuzzMethods(f)
	seed := func(name string, m proto.Message) {
		for i, md := range methods {
			if md.full == "/tradsys.matching.v1.MatchingService/"+name {
				b, err := proto.Marshal(m)
				if err != nil {
					f.Fatal(err)
				}
				f.Add(uint8(i), b)
			}
		}
	}
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
		md := methods[int(which)%len(methods)]
		req := md.in.New().Interface()
		if proto.Unmarshal(data, req) != nil {
			return // gRPC itself refuses undecodable bytes before any handler
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if slowLog != "" {
			t0 := time.Now()
			defer func() {
				if d := time.Since(t0); d > 500*time.Millisecond {
					f, _ := os.OpenFile(slowLog, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
					fmt.Fprintf(f, "%s %s %v\n", d, md.full, req)
					f.Close()
				}
			}()
		}
		var err error
		switch {
		case md.bidi:
			err = fuzzStream(ctx, e.conn, md, req, true)
		case md.srvStrm:
			sctx, scancel := context.WithTimeout(ctx, 100*time.Millisecond)
			err = fuzzStream(sctx, e.conn, md, req, false)
			scancel()
			if status.Code(err) == codes.DeadlineExceeded {
				err = nil // following live trades: the stream was healthy
			}
		default:
			err = e.conn.Invoke(ctx, md.full, req, md.out.New().Interface())
		}
		switch c := status.Code(err); c {
		case codes.Internal, codes.Unknown:
			t.Fatalf("%s(%v): %v", md.full, req, err)
		case codes.DeadlineExceeded:
			if md.bidi || !md.srvStrm {
				// Lock waits are bounded by LockWait; anything else is a hang.
				if md.full != "/tradsys.matching.v1.MatchingService/SetSymbolAlgorithm" &&
					md.full != "/tradsys.matching.v1.MatchingService/LoadAlgorithm" &&
					md.full != "/tradsys.matching.v1.MatchingService/UnloadAlgorithm" {
					t.Fatalf("%s(%v) hung: %v", md.full, req, err)
				}
			}
		}
	})
}

func fuzzStream(ctx context.Context, conn *grpc.ClientConn, md fuzzMethod, req proto.Message, bidi bool) error {
	desc := &grpc.StreamDesc{ServerStreams: true, ClientStreams: bidi}
	s, err := conn.NewStream(ctx, desc, md.full)
	if err != nil {
		return err
	}
	n := 1
	if bidi {
		n = 3 // the same order several times: duplicates are refused per order
	}
	for i := 0; i < n; i++ {
		if err := s.SendMsg(req); err != nil {
			break
		}
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	for i := 0; i < 100; i++ {
		if err := s.RecvMsg(md.out.New().Interface()); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
	return nil
}
