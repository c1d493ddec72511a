package muxstream_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/muxstream"
	riskv1 "github.com/tradsys/mesh/proto/tradsys/risk/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

// echoRisk is a tiny real RiskService whose ValidateOrders answers each
// request on a goroutine of its own (so answers come out of order),
// echoing the order's account as the one check's validator name. An
// account "break" ends the stream with UNAVAILABLE; "silent" is never
// answered.
type echoRisk struct {
	riskv1.UnimplementedRiskServiceServer
	opened, ended atomic.Int32
	silent        chan struct{} // gets a value for each "silent" request received
}

func (e *echoRisk) ValidateOrders(stream grpc.BidiStreamingServer[riskv1.ValidateOrdersRequest, riskv1.ValidateOrdersResponse]) error {
	e.opened.Add(1)
	defer e.ended.Add(1)
	var sendMu sync.Mutex
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil
		}
		switch req.GetOrder().GetAccount() {
		case "break":
			return status.Error(codes.Unavailable, "broken on purpose")
		case "silent":
			e.silent <- struct{}{}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(req.GetRequestId()%7) * time.Millisecond)
			sendMu.Lock()
			defer sendMu.Unlock()
			_ = stream.Send(&riskv1.ValidateOrdersResponse{RequestId: req.GetRequestId(), Result: &riskv1.ValidateOrdersResponse_Verdict{
				Verdict: &riskv1.ValidateOrderResponse{Approved: true, Results: []*riskv1.CheckResult{{Validator: req.GetOrder().GetAccount(), Passed: true}}}}})
		}()
	}
}

func start(t *testing.T) (*echoRisk, *grpc.ClientConn) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	impl := &echoRisk{silent: make(chan struct{}, 16)}
	riskv1.RegisterRiskServiceServer(srv, impl)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return impl, conn
}

type shared = muxstream.Shared[riskv1.ValidateOrdersRequest, riskv1.ValidateOrdersResponse]

func newShared(conn *grpc.ClientConn, idle time.Duration) *shared {
	return muxstream.New(riskv1.NewRiskServiceClient(conn).ValidateOrders, (*riskv1.ValidateOrdersResponse).GetRequestId, idle)
}

func call(ctx context.Context, s *shared, id uint64, account string) (string, error) {
	resp, err := s.Call(ctx, id, &riskv1.ValidateOrdersRequest{RequestId: id, Order: &riskv1.ValidateOrderRequest{Account: account}})
	if err != nil {
		return "", err
	}
	if resp.GetRequestId() != id {
		return "", fmt.Errorf("call %d got the answer to %d", id, resp.GetRequestId())
	}
	return resp.GetVerdict().GetResults()[0].GetValidator(), nil
}

// Calls from many goroutines share one stream, and each gets its own
// answer although the server answers out of order.
func TestConcurrentCallsShareOneStreamAndGetTheirOwnAnswers(t *testing.T) {
	impl, conn := start(t)
	s := newShared(conn, 0)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var next atomic.Uint64
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				want := fmt.Sprintf("acct-%d-%d", g, i)
				got, err := call(ctx, s, next.Add(1), want)
				if err != nil || got != want {
					t.Errorf("call for %s answered %q, %v", want, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := impl.opened.Load(); n != 1 {
		t.Errorf("%d streams opened for the calls, want 1", n)
	}
}

// A stream that breaks fails the calls in flight on it with its error (not
// a NotSentError: the request was sent), and the next call opens a new one.
func TestBrokenStreamFailsCallsInFlightAndTheNextCallReopens(t *testing.T) {
	impl, conn := start(t)
	s := newShared(conn, 0)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := call(ctx, s, 1, "a"); err != nil {
		t.Fatal(err)
	}
	silent := make(chan error, 1)
	go func() { _, err := call(ctx, s, 2, "silent"); silent <- err }()
	<-impl.silent // "silent" is in flight
	_, err := call(ctx, s, 3, "break")
	var notSent *muxstream.NotSentError
	if status.Code(err) != codes.Unavailable || errors.As(err, &notSent) {
		t.Fatalf("call on a stream the server broke: %v", err)
	}
	if err := <-silent; status.Code(err) != codes.Unavailable {
		t.Fatalf("call in flight when the stream broke: %v", err)
	}
	if got, err := call(ctx, s, 4, "b"); err != nil || got != "b" {
		t.Fatalf("call after the break: %q %v", got, err)
	}
	if n := impl.opened.Load(); n != 2 {
		t.Errorf("%d streams opened, want 2", n)
	}
}

// A call whose answer does not come before its context ends is a
// TimeoutError; the stream goes on serving the others.
func TestCallTimesOutAlone(t *testing.T) {
	_, conn := start(t)
	s := newShared(conn, 0)
	defer s.Close()
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := call(short, s, 1, "silent")
	var timeout *muxstream.TimeoutError
	if !errors.As(err, &timeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unanswered call: %v", err)
	}
	if got, err := call(context.Background(), s, 2, "c"); err != nil || got != "c" {
		t.Fatalf("call after a timeout: %q %v", got, err)
	}
}

// An idle stream is closed (the server sees it end) and the next call
// opens a new one.
func TestIdleStreamClosesAndReopens(t *testing.T) {
	impl, conn := start(t)
	s := newShared(conn, 20*time.Millisecond)
	defer s.Close()
	ctx := context.Background()
	if _, err := call(ctx, s, 1, "a"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for impl.ended.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("idle stream still open after 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got, err := call(ctx, s, 2, "b"); err != nil || got != "b" {
		t.Fatalf("call after the idle close: %q %v", got, err)
	}
	if n := impl.opened.Load(); n != 2 {
		t.Errorf("%d streams opened, want 2", n)
	}
}

// A call that cannot get a stream is a NotSentError.
func TestNoStreamIsNotSent(t *testing.T) {
	s := &shared{
		Open: func(context.Context) (grpc.BidiStreamingClient[riskv1.ValidateOrdersRequest, riskv1.ValidateOrdersResponse], error) {
			return nil, status.Error(codes.Unavailable, "no connection")
		},
		ID: (*riskv1.ValidateOrdersResponse).GetRequestId,
	}
	_, err := call(context.Background(), s, 1, "a")
	var notSent *muxstream.NotSentError
	if !errors.As(err, &notSent) || status.Code(notSent.Err) != codes.Unavailable {
		t.Fatalf("call without a stream: %v", err)
	}
}
