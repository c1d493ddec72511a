package server

import (
	"context"
	"errors"

	"github.com/tradsys/mesh/pkg/lazy"
	"github.com/tradsys/mesh/services/strategy/strategies"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const errorDomain = "strategy.tradsys"

// togRPCError is the one table mapping domain errors to gRPC codes, with
// ErrorInfo (reason and the field or strategy at fault). Errors that are
// already gRPC statuses (from orders or connectors) keep their code: the
// cause reaches the caller.
func togRPCError(err error) error {
	if err == nil {
		return nil
	}
	var (
		cfgErr   *strategies.ConfigError
		notFound *strategies.NotFoundError
		unavail  *lazy.UnavailableError
	)
	code, reason, meta := codes.Internal, "INTERNAL", map[string]string{}
	switch {
	case errors.As(err, &cfgErr):
		code, reason, meta["field"] = codes.InvalidArgument, "INVALID_ARGUMENT", "config."+cfgErr.Field
	case errors.As(err, &notFound):
		code, reason, meta["strategy"] = codes.NotFound, "UNKNOWN_STRATEGY", notFound.Name
	case errors.Is(err, strategies.ErrConflict):
		code, reason = codes.FailedPrecondition, "STRATEGY_RUNNING"
	case errors.As(err, &unavail):
		code, reason, meta["component"] = codes.Unavailable, "COMPONENT_UNAVAILABLE", unavail.Component
		// The component's Init failed for a reason another service gave
		// (say, orders does not know the symbol): keep that code.
		if st, ok := status.FromError(errors.Unwrap(unavail.Cause)); ok && st.Code() != codes.Unknown && st.Code() != codes.OK {
			code = st.Code()
		}
	case errors.Is(err, context.DeadlineExceeded):
		code, reason = codes.DeadlineExceeded, "DEADLINE_EXCEEDED"
	default:
		if st, ok := status.FromError(err); ok {
			return st.Err()
		}
	}
	st := status.New(code, err.Error())
	if d, derr := st.WithDetails(&errdetails.ErrorInfo{Domain: errorDomain, Reason: reason, Metadata: meta}); derr == nil {
		st = d
	}
	return st.Err()
}
