package server_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/grpcfuzz"
	"github.com/tradsys/mesh/pkg/grpcserver"
	"github.com/tradsys/mesh/pkg/service"
	riskv1 "github.com/tradsys/mesh/proto/tradsys/risk/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"github.com/tradsys/mesh/services/risk/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// startRisk serves the risk service in-process on loopback TCP against a
// real coordinator (without a matching service: no price band data).
func startRisk(t testing.TB) *grpc.ClientConn { return startRiskWith(t, nil) }

// startRiskWith is startRisk with options changed by opts.
func startRiskWith(t testing.TB, opts func(*server.Options)) *grpc.ClientConn {
	t.Helper()
	coord, _ := coordtest.Start(t, coordtest.Config{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(service.Config{Name: "risk", MainComponent: server.MainComponent},
		service.Options{Coordinator: coord.Addr(), Flags: grpcserver.Flags{ShutdownTimeout: 5 * time.Second}, Listener: lis, SessionTTL: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	o := server.Defaults()
	o.DataDir, o.Matching = t.TempDir(), ""
	if opts != nil {
		opts(&o)
	}
	if _, err := server.Setup(ctx, svc, o); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	conn, err := grpc.NewClient(svc.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("risk run: %v", err)
		}
		conn.Close()
	})
	return conn
}

// Limits survive in the store and apply: symbol entry over account entry
// over the defaults; an unknown validator is NOT_FOUND.
func TestLimitsAndValidators(t *testing.T) {
	rc := riskv1.NewRiskServiceClient(startRisk(t))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, l := range []*riskv1.Limits{{Account: "a", MaxOrderQuantity: "10"}, {Account: "a", Symbol: "X", MaxOrderQuantity: "1"}} {
		if _, err := rc.SetLimits(ctx, &riskv1.SetLimitsRequest{Limits: l}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(sym, qty string) *riskv1.ValidateOrderResponse {
		r, err := rc.ValidateOrder(ctx, &riskv1.ValidateOrderRequest{Account: "a", Symbol: sym, Side: riskv1.Side_SIDE_BUY, Price: "1", Quantity: qty})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := check("Y", "5"); !r.GetApproved() || len(r.GetResults()) != 5 {
		t.Fatalf("5 on Y (account limit 10): %v", r)
	}
	if r := check("X", "5"); r.GetApproved() || r.GetResults()[0].GetCode() != "LIMIT_EXCEEDED" {
		t.Fatalf("5 on X (symbol limit 1): %v", r)
	}
	if _, err := rc.UnloadValidator(ctx, &riskv1.UnloadValidatorRequest{Name: "max-notional"}); err != nil {
		t.Fatal(err)
	}
	v, err := rc.ListValidators(ctx, &riskv1.ListValidatorsRequest{})
	if err != nil || v.GetValidators()[1].GetLeaseId() != "" {
		t.Fatalf("after unload: %v %v", v, err)
	}
	if r := check("Y", "5"); !r.GetApproved() {
		t.Fatalf("after unload the validator loads again on use: %v", r)
	}
	_, err = rc.LoadValidator(ctx, &riskv1.LoadValidatorRequest{Name: "nope"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("unknown validator: %v", err)
	}
}

// FuzzHandlers sends random RiskService requests through the whole server
// chain: any clear error, never INTERNAL or UNKNOWN, never a crash.
func FuzzHandlers(f *testing.F) {
	methods := grpcfuzz.Methods(f, riskv1.File_tradsys_risk_v1_risk_proto.Services().ByName("RiskService"))
	seed := func(name string, m proto.Message) { grpcfuzz.Seed(f, methods, name, m) }
	seed("ValidateOrder", &riskv1.ValidateOrderRequest{Account: "a", Symbol: "F", Side: riskv1.Side_SIDE_SELL, Price: "99999999999.99999999",
		Quantity: "99999999999", Position: "-99999999999", OpenQuantity: "99999999999", TickSize: "0.00000001"})
	seed("ValidateOrder", &riskv1.ValidateOrderRequest{Account: "a", Symbol: "F", Side: riskv1.Side_SIDE_BUY, Quantity: "1"})
	seed("ValidateOrders", &riskv1.ValidateOrdersRequest{RequestId: 1, Order: &riskv1.ValidateOrderRequest{Account: "a", Symbol: "F",
		Side: riskv1.Side_SIDE_BUY, Quantity: "1"}})
	seed("ValidateOrders", &riskv1.ValidateOrdersRequest{RequestId: 2, Order: &riskv1.ValidateOrderRequest{Account: "a b"}})
	seed("SetLimits", &riskv1.SetLimitsRequest{Limits: &riskv1.Limits{Account: "a", MaxNotional: "0.00000001", PriceBand: "99999999999",
		OrdersPerSecond: 1e6, OrderBurst: 1}})
	seed("GetLimits", &riskv1.GetLimitsRequest{Account: "a", Symbol: "F"})
	seed("LoadValidator", &riskv1.LoadValidatorRequest{Name: "price-band"})
	seed("UnloadValidator", &riskv1.UnloadValidatorRequest{Name: "order-rate"})
	seed("ListValidators", &riskv1.ListValidatorsRequest{})
	conn := startRisk(f)
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		md, req, ok := grpcfuzz.Decode(methods, which, data)
		if !ok {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := grpcfuzz.Call(ctx, conn, md, req)
		grpcfuzz.Check(t, md, req, err)
		if status.Code(err) == codes.DeadlineExceeded {
			t.Fatalf("%s(%v) hung: %v", md.FullName, req, err)
		}
	})
}
