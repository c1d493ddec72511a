package server

import (
	"context"
	"runtime/debug"

	"github.com/tradsys/mesh/pkg/grpcserver"
	"github.com/tradsys/mesh/pkg/lazy/lazygrpc"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	"github.com/tradsys/mesh/proto/validate"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// maxInFlightPerStream bounds the orders of one SubmitOrders stream being
// handled at once. Past it the handler stops reading the stream, so a
// client sending faster than orders answers is held back by gRPC's flow
// control instead of growing this process's memory.
const maxInFlightPerStream = 1024

// SubmitOrders is order entry on a session stream: each message is one
// SubmitOrder, handled concurrently with the others in flight (so the
// orders of a stream share risk's and matching's streams and the store's
// commits, as concurrent unary calls do), and answered as soon as it
// completes, with the request's id. The stream is not a call in flight of
// the orders component: each order enters it (activating it when dormant)
// as a SubmitOrder call would, so an open stream neither keeps orders
// loaded nor holds up its unloading. A message that cannot be placed gets
// an error answer and the stream goes on.
func (s *Server) SubmitOrders(stream grpc.BidiStreamingServer[ordersv1.SubmitOrdersRequest, ordersv1.SubmitOrdersResponse]) error {
	return grpcserver.ServeEach(stream, maxInFlightPerStream, s.done,
		status.Error(codes.Unavailable, "orders service stopping; orders not answered may or may not have been placed: resend them (client_order_id makes that safe)"),
		s.submitOne, func(req *ordersv1.SubmitOrdersRequest, p any) *ordersv1.SubmitOrdersResponse {
			s.log.Error("panic in SubmitOrders", zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
			return &ordersv1.SubmitOrdersResponse{RequestId: req.GetRequestId(), Result: &ordersv1.SubmitOrdersResponse_Error{
				Error: streamError(status.Errorf(codes.Internal, "internal error: %v", p))}}
		})
}

// submitOne answers one message of a SubmitOrders stream.
func (s *Server) submitOne(ctx context.Context, req *ordersv1.SubmitOrdersRequest) *ordersv1.SubmitOrdersResponse {
	resp := &ordersv1.SubmitOrdersResponse{RequestId: req.GetRequestId()}
	if sub, err := s.enterAndSubmit(ctx, req.GetOrder()); err != nil {
		resp.Result = &ordersv1.SubmitOrdersResponse_Error{Error: streamError(err)}
	} else {
		resp.Result = &ordersv1.SubmitOrdersResponse_Submitted{Submitted: sub}
	}
	return resp
}

var gateErrors = lazygrpc.Errors(errorDomain)

// enterAndSubmit is what a SubmitOrder call goes through, for one order of
// a stream: the request's checks (the validator interceptor's, which sees a
// stream's messages only as a whole), the gate of the orders component,
// then the handler.
func (s *Server) enterAndSubmit(ctx context.Context, r *ordersv1.SubmitOrderRequest) (*ordersv1.SubmitOrderResponse, error) {
	if r == nil {
		return nil, invalidRequest(validate.Errorf("order", "must be set"))
	}
	if err := r.Validate(); err != nil {
		return nil, invalidRequest(err)
	}
	exit, err := s.main.Enter(ctx)
	if err != nil {
		return nil, gateErrors.ToStatus(err) // as the gate answers a SubmitOrder call
	}
	defer exit()
	return s.SubmitOrder(ctx, r)
}
