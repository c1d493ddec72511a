package server

import (
	"context"
	"runtime/debug"

	"github.com/tradsys/mesh/pkg/grpcserver"
	"github.com/tradsys/mesh/pkg/lazy/lazygrpc"
	riskv1 "github.com/tradsys/mesh/proto/tradsys/risk/v1"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// maxChecksPerStream bounds the checks of one ValidateOrders stream in
// flight at once; past it the stream is not read.
const maxChecksPerStream = 1024

// ValidateOrders answers a stream of ValidateOrder requests, each checked
// on its own (concurrently with the others in flight, as concurrent
// ValidateOrder calls are) and answered as soon as it is: a check that
// waits (a validator loading, the price band fetching a symbol's last
// trade) holds up only its own order, not the others on the stream. The
// stream is not a call in flight of the risk component: each order enters
// it (activating it when dormant) as a ValidateOrder call would, so a
// client's open stream neither keeps risk loaded nor holds up its
// unloading. A request that cannot be checked gets an error answer and the
// stream goes on.
func (s *Server) ValidateOrders(stream grpc.BidiStreamingServer[riskv1.ValidateOrdersRequest, riskv1.ValidateOrdersResponse]) error {
	answer := func(id uint64, v *riskv1.ValidateOrderResponse, err error) *riskv1.ValidateOrdersResponse {
		resp := &riskv1.ValidateOrdersResponse{RequestId: id}
		if err != nil {
			st := status.Convert(err)
			resp.Result = &riskv1.ValidateOrdersResponse_Error{Error: &riskv1.ValidateOrdersError{Code: int32(st.Code()), Message: st.Message()}}
		} else {
			resp.Result = &riskv1.ValidateOrdersResponse_Verdict{Verdict: v}
		}
		return resp
	}
	return grpcserver.ServeEach(stream, maxChecksPerStream, s.done,
		status.Error(codes.Unavailable, "risk service stopping; requests not answered were not checked"),
		func(ctx context.Context, req *riskv1.ValidateOrdersRequest) *riskv1.ValidateOrdersResponse {
			v, err := s.validateOne(ctx, req.GetOrder())
			return answer(req.GetRequestId(), v, err)
		},
		func(req *riskv1.ValidateOrdersRequest, p any) *riskv1.ValidateOrdersResponse {
			s.log.Error("panic in ValidateOrders", zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
			return answer(req.GetRequestId(), nil, status.Errorf(codes.Internal, "internal error: %v", p))
		})
}

var gateErrors = lazygrpc.Errors(errorDomain)

// validateOne is one ValidateOrder of a stream: the request's checks (the
// validator interceptor's, which sees the stream's messages only as a
// whole), then the call inside the risk component.
func (s *Server) validateOne(ctx context.Context, r *riskv1.ValidateOrderRequest) (*riskv1.ValidateOrderResponse, error) {
	if r == nil {
		return nil, status.Error(codes.InvalidArgument, "invalid order: must be set")
	}
	if err := r.Validate(); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	exit, err := s.main.Enter(ctx)
	if err != nil {
		return nil, gateErrors.ToStatus(err) // as the gate answers a ValidateOrder call
	}
	defer exit()
	return s.ValidateOrder(ctx, r)
}
