package server

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	"github.com/tradsys/mesh/services/gateway/hub"
	"github.com/tradsys/mesh/services/orders/orderstest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// lossyStreams breaks a SubmitOrders stream in the way a dropped
// connection does, when armed: the order sent reaches orders (and is
// placed), but its answer never comes back and the stream fails.
type lossyStreams struct{ armed atomic.Bool }

func (l *lossyStreams) intercept(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil || method != ordersv1.OrderService_SubmitOrders_FullMethodName {
		return cs, err
	}
	return &lossyStream{ClientStream: cs, l: l}, nil
}

type lossyStream struct {
	grpc.ClientStream
	l *lossyStreams
}

func (s *lossyStream) RecvMsg(m any) error {
	if err := s.ClientStream.RecvMsg(m); err != nil {
		return err
	}
	if s.l.armed.CompareAndSwap(true, false) {
		return status.Error(codes.Unavailable, "connection reset (injected by the test)")
	}
	return nil
}

func startEntry(t *testing.T, stream bool) (*orderEntry, *lossyStreams, ordersv1.OrderServiceClient) {
	t.Helper()
	m := orderstest.Start(t, orderstest.Config{})
	m.Instrument(t, "BTC-USD", "0.01", "0.001")
	lossy := &lossyStreams{}
	conn, err := grpc.NewClient(m.Orders.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStreamInterceptor(lossy.intercept))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	e := newOrderEntry(conn, stream)
	t.Cleanup(e.close)
	return e, lossy, m.OrderService
}

func entryOrder(coid, price string) *ordersv1.SubmitOrderRequest {
	return &ordersv1.SubmitOrderRequest{Account: "alice", ClientOrderId: coid, Symbol: "BTC-USD", Side: ordersv1.Side_SIDE_BUY,
		Type: ordersv1.OrderType_ORDER_TYPE_LIMIT, Price: price, Quantity: "0.5"}
}

func ctx10(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// On the stream (and with the unary option), an order is placed and a
// resubmit of it is a duplicate of the same order; an error answer is the
// status SubmitOrder returns, naming the field.
func TestEntryPlacesOrders(t *testing.T) {
	for _, stream := range []bool{true, false} {
		t.Run(fmt.Sprint("stream=", stream), func(t *testing.T) {
			e, _, _ := startEntry(t, stream)
			first, err := e.Submit(ctx10(t), entryOrder("a1", "100.25"))
			if err != nil || first.GetDuplicate() || first.GetOrder().GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_ACCEPTED || first.GetOrder().GetPrice() != "100.25" {
				t.Fatalf("first submit: %v %v", first, err)
			}
			again, err := e.Submit(ctx10(t), entryOrder("a1", "100.25"))
			if err != nil || !again.GetDuplicate() || again.GetOrder().GetOrderId() != first.GetOrder().GetOrderId() {
				t.Fatalf("resubmit: %v %v", again, err)
			}
			// As the WebSocket client sees it: an invalid request naming the field.
			_, err = e.Submit(ctx10(t), entryOrder("a2", "100.001"))
			var he *hub.Error
			if status.Code(err) != codes.InvalidArgument || !errors.As(toHubError(err), &he) || he.Field != "price" {
				t.Fatalf("off-grid price: %v (%+v)", err, he)
			}
		})
	}
}

// When the stream breaks after the order reached orders, the order is
// resent with SubmitOrder: one order placed, and the answer says what one
// submit says (not a duplicate: the caller submitted once).
func TestEntryResendAfterALostAnswerIsNotADuplicate(t *testing.T) {
	e, lossy, oc := startEntry(t, true)
	lossy.armed.Store(true)
	resp, err := e.Submit(ctx10(t), entryOrder("lost", "99.5"))
	if err != nil || resp.GetDuplicate() || resp.GetOrder().GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_ACCEPTED {
		t.Fatalf("submit whose stream answer was lost: %v %v", resp, err)
	}
	if lossy.armed.Load() {
		t.Fatal("the stream's answer was not dropped: the test did not test the resend")
	}
	list, err := oc.ListOrders(ctx10(t), &ordersv1.ListOrdersRequest{Account: "alice"})
	if err != nil || len(list.GetOrders()) != 1 || list.GetOrders()[0].GetOrderId() != resp.GetOrder().GetOrderId() {
		t.Fatalf("orders after one submit: %v %v", list, err)
	}
	// The stream is open again for the next order.
	if next, err := e.Submit(ctx10(t), entryOrder("next", "99.25")); err != nil || next.GetDuplicate() {
		t.Fatalf("submit after the broken stream: %v %v", next, err)
	}
}

// A caller's real resubmit is still a duplicate when it is the one whose
// stream answer was lost: the order is older than that send.
func TestEntryResendOfAnEarlierOrderIsStillADuplicate(t *testing.T) {
	e, lossy, _ := startEntry(t, true)
	e.skew = 10 * time.Millisecond
	first, err := e.Submit(ctx10(t), entryOrder("twice", "98"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	lossy.armed.Store(true)
	again, err := e.Submit(ctx10(t), entryOrder("twice", "98"))
	if err != nil || !again.GetDuplicate() || again.GetOrder().GetOrderId() != first.GetOrder().GetOrderId() {
		t.Fatalf("resubmit whose stream answer was lost: %v %v", again, err)
	}
	if lossy.armed.Load() {
		t.Fatal("the stream's answer was not dropped")
	}
}
