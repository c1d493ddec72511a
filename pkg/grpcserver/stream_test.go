package grpcserver

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	riskv1 "github.com/tradsys/mesh/proto/tradsys/risk/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

// eachRisk serves ValidateOrders with ServeEach: the request's quantity
// is how many milliseconds its check takes, account "panic" panics, and
// the answer names the account.
type eachRisk struct {
	riskv1.UnimplementedRiskServiceServer
	max                 int
	stopping            chan struct{}
	inFlight, maxActive atomic.Int32
}

func (e *eachRisk) ValidateOrders(stream grpc.BidiStreamingServer[riskv1.ValidateOrdersRequest, riskv1.ValidateOrdersResponse]) error {
	answer := func(id uint64, name string) *riskv1.ValidateOrdersResponse {
		return &riskv1.ValidateOrdersResponse{RequestId: id, Result: &riskv1.ValidateOrdersResponse_Verdict{
			Verdict: &riskv1.ValidateOrderResponse{Results: []*riskv1.CheckResult{{Validator: name}}}}}
	}
	return ServeEach(stream, e.max, e.stopping, status.Error(codes.Unavailable, "stopping"),
		func(ctx context.Context, req *riskv1.ValidateOrdersRequest) *riskv1.ValidateOrdersResponse {
			n := e.inFlight.Add(1)
			defer e.inFlight.Add(-1)
			for m := e.maxActive.Load(); n > m && !e.maxActive.CompareAndSwap(m, n); m = e.maxActive.Load() {
			}
			if req.GetOrder().GetAccount() == "panic" {
				panic("on purpose")
			}
			var ms int
			for _, c := range req.GetOrder().GetQuantity() {
				ms = ms*10 + int(c-'0')
			}
			time.Sleep(time.Duration(ms) * time.Millisecond)
			return answer(req.GetRequestId(), req.GetOrder().GetAccount())
		},
		func(req *riskv1.ValidateOrdersRequest, p any) *riskv1.ValidateOrdersResponse {
			return answer(req.GetRequestId(), "recovered")
		})
}

func serveEach(t *testing.T, max int) (*eachRisk, riskv1.RiskServiceClient) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	impl := &eachRisk{max: max, stopping: make(chan struct{})}
	riskv1.RegisterRiskServiceServer(srv, impl)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return impl, riskv1.NewRiskServiceClient(conn)
}

func send(t *testing.T, st grpc.BidiStreamingClient[riskv1.ValidateOrdersRequest, riskv1.ValidateOrdersResponse], id uint64, account, ms string) {
	t.Helper()
	if err := st.Send(&riskv1.ValidateOrdersRequest{RequestId: id, Order: &riskv1.ValidateOrderRequest{Account: account, Quantity: ms}}); err != nil {
		t.Fatal(err)
	}
}

// Answers come as checks finish (a slow one holds up no other), a panic
// is its own request's answer, at most max run at once, and what is in
// flight when the client closes its side is still answered.
func TestServeEach(t *testing.T) {
	impl, rc := serveEach(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := rc.ValidateOrders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	send(t, st, 1, "slow", "300")
	send(t, st, 2, "panic", "0")
	send(t, st, 3, "quick", "0")
	send(t, st, 4, "last", "50")
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var order []string
	for {
		resp, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, resp.GetVerdict().GetResults()[0].GetValidator())
	}
	if len(order) != 4 || order[len(order)-1] != "slow" {
		t.Fatalf("answers %v: want all four, the slow one last", order)
	}
	if m := impl.maxActive.Load(); m > 2 {
		t.Fatalf("%d checks ran at once, the limit is 2", m)
	}
}

// A stopping service ends an open stream at once with its error.
func TestServeEachStops(t *testing.T) {
	impl, rc := serveEach(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := rc.ValidateOrders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	send(t, st, 1, "a", "0")
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	close(impl.stopping)
	if _, err := st.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("after stopping: %v, want UNAVAILABLE", err)
	}
}
