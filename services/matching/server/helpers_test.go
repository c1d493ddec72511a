package server_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/grpcserver"
	"github.com/tradsys/mesh/pkg/service"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"github.com/tradsys/mesh/services/matching/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// env is a matching service served in-process on loopback TCP against a
// real coordinator (embedded etcd).
type env struct {
	coordAddr string
	coord     coordinatorv1.CoordinatorServiceClient
	svc       *service.Service
	srv       *server.Server
	conn      *grpc.ClientConn
	mc        matchingv1.MatchingServiceClient
	stop      func()
}

func startEnv(t testing.TB, o server.Options) *env {
	t.Helper()
	r, cc := coordtest.Start(t, coordtest.Config{})
	return startEnvOn(t, r.Addr(), cc, o)
}

func startEnvOn(t testing.TB, coordAddr string, cc coordinatorv1.CoordinatorServiceClient, o server.Options, register ...func(*grpc.Server)) *env {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(service.Config{Name: "matching", MainComponent: server.MainComponent},
		service.Options{Coordinator: coordAddr, Flags: grpcserver.Flags{ShutdownTimeout: 5 * time.Second}, Listener: lis,
			SessionTTL: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.Setup(ctx, svc, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range register {
		r(svc.Server.GRPC())
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	conn, err := grpc.NewClient(svc.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{coordAddr: coordAddr, coord: cc, svc: svc, srv: srv, conn: conn, mc: matchingv1.NewMatchingServiceClient(conn)}
	stopped := false
	e.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("service run: %v", err)
		}
		conn.Close()
	}
	t.Cleanup(e.stop)
	return e
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

func limit(sym string, id uint64, side matchingv1.Side, price, qty int64) *matchingv1.SubmitOrderRequest {
	return &matchingv1.SubmitOrderRequest{Symbol: sym, OrderId: id, Account: id, Side: side,
		Type: matchingv1.OrderType_ORDER_TYPE_LIMIT, Price: price, Quantity: qty}
}

const (
	buy  = matchingv1.Side_SIDE_BUY
	sell = matchingv1.Side_SIDE_SELL
)
