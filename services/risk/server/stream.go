package server

import (
	"context"
	"errors"
	"io"

	"github.com/tradsys/mesh/pkg/grpcserver"
	"github.com/tradsys/mesh/pkg/lazy/lazygrpc"
	riskv1 "github.com/tradsys/mesh/proto/tradsys/risk/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ValidateOrders answers a stream of ValidateOrder requests, each as soon
// as it is checked. The stream is not a call in flight of the risk
// component: each order enters it (activating it when dormant) as a
// ValidateOrder call would, so a client's open stream neither keeps risk
// loaded nor holds up its unloading. A request that cannot be checked gets
// an error answer and the stream goes on.
func (s *Server) ValidateOrders(stream grpc.BidiStreamingServer[riskv1.ValidateOrdersRequest, riskv1.ValidateOrdersResponse]) error {
	ctx := stream.Context()
	// A stopping service ends the stream (a client keeps it open for as
	// long as it lives).
	reqs, recvDone := grpcserver.ReceiveAll(ctx, stream.Recv)
	for {
		select {
		case req := <-reqs:
			resp := &riskv1.ValidateOrdersResponse{RequestId: req.GetRequestId()}
			if v, err := s.validateOne(ctx, req.GetOrder()); err != nil {
				st := status.Convert(err)
				resp.Result = &riskv1.ValidateOrdersResponse_Error{Error: &riskv1.ValidateOrdersError{Code: int32(st.Code()), Message: st.Message()}}
			} else {
				resp.Result = &riskv1.ValidateOrdersResponse_Verdict{Verdict: v}
			}
			if err := stream.Send(resp); err != nil {
				return err
			}
		case err := <-recvDone:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-s.done:
			return status.Error(codes.Unavailable, "risk service stopping; requests not answered were not checked")
		}
	}
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
