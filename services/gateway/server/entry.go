package server

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/tradsys/mesh/pkg/muxstream"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// orderEntry places the gateway's orders (its WebSocket sessions' and its
// gRPC callers') with the orders service: on one SubmitOrders stream shared
// by all of them (the orders in flight share the stream's frames, as an
// exchange gateway's session does), or a unary SubmitOrder each.
type orderEntry struct {
	c ordersv1.OrderServiceClient
	// stream, when set, carries the submits (nil: a unary call each).
	stream *muxstream.Shared[ordersv1.SubmitOrdersRequest, ordersv1.SubmitOrdersResponse]
	nextID atomic.Uint64
	// skew is how far behind ours the orders service's clock may be: an
	// order created no earlier than skew before our send is taken to be
	// the one that send placed (see submitStreamed).
	skew time.Duration
}

// entryStreamIdle is how long the shared stream may go without orders
// before it is closed (the next order opens a new one).
const entryStreamIdle = time.Minute

// clockSkew bounds the difference between the gateway's and the orders
// service's clocks (hosts of one mesh, kept by NTP).
const clockSkew = time.Second

func newOrderEntry(conn grpc.ClientConnInterface, stream bool) *orderEntry {
	e := &orderEntry{c: ordersv1.NewOrderServiceClient(conn), skew: clockSkew}
	if stream {
		e.stream = muxstream.New(e.c.SubmitOrders, (*ordersv1.SubmitOrdersResponse).GetRequestId, entryStreamIdle)
	}
	return e
}

// close ends the shared stream.
func (e *orderEntry) close() {
	if e.stream != nil {
		e.stream.Close()
	}
}

// Submit places r and answers as SubmitOrder does; errors are gRPC
// statuses as SubmitOrder's are.
func (e *orderEntry) Submit(ctx context.Context, r *ordersv1.SubmitOrderRequest) (*ordersv1.SubmitOrderResponse, error) {
	if e.stream == nil {
		return e.c.SubmitOrder(ctx, r)
	}
	return e.submitStreamed(ctx, r)
}

// submitStreamed places r on the shared stream. When the stream fails
// before r left, r is sent with SubmitOrder instead. When it breaks with r
// sent, r may or may not have been placed: it is sent once more with
// SubmitOrder, which is safe (client_order_id is the idempotency key) and
// answers the order either way. That resend answers duplicate when the
// lost send had placed the order; the caller did not submit twice, so its
// answer then says what a single SubmitOrder would have: not a duplicate,
// unless the order is older than our send (the caller's own earlier
// submit, which it must still be told about).
func (e *orderEntry) submitStreamed(ctx context.Context, r *ordersv1.SubmitOrderRequest) (*ordersv1.SubmitOrderResponse, error) {
	id := e.nextID.Add(1)
	sentAt := time.Now()
	resp, err := e.stream.Call(ctx, id, &ordersv1.SubmitOrdersRequest{RequestId: id, Order: r})
	var notSent *muxstream.NotSentError
	var timeout *muxstream.TimeoutError
	switch {
	case err == nil && resp.GetError() != nil:
		return nil, errorAnswerStatus(resp.GetError())
	case err == nil:
		return resp.GetSubmitted(), nil
	case errors.As(err, &timeout):
		// The caller's deadline passed or it went away: as a unary call
		// would end.
		return nil, status.FromContextError(timeout.Err).Err()
	case errors.As(err, &notSent):
		return e.c.SubmitOrder(ctx, r)
	}
	again, err := e.c.SubmitOrder(ctx, r)
	if err != nil {
		return nil, err
	}
	if again.GetDuplicate() && !again.GetOrder().GetCreatedAt().AsTime().Before(sentAt.Add(-e.skew)) {
		again.Duplicate = false // placed by our own lost send
	}
	return again, nil
}

// errorAnswerStatus is a SubmitOrders error answer as the status
// SubmitOrder would have returned (with its ErrorInfo, whose field the
// gateway's errors name).
func errorAnswerStatus(e *ordersv1.SubmitOrdersError) error {
	st := status.New(codes.Code(e.GetCode()), e.GetMessage())
	info := &errdetails.ErrorInfo{Reason: e.GetReason(), Domain: "orders.tradsys", Metadata: map[string]string{}}
	for k, v := range e.GetMetadata() {
		info.Metadata[k] = v
	}
	if e.GetField() != "" {
		info.Metadata["field"] = e.GetField()
	}
	if withInfo, err := st.WithDetails(info); err == nil {
		st = withInfo
	}
	return st.Err()
}
