package server

import (
	"context"
	"errors"

	"github.com/tradsys/mesh/pkg/lazy"
	"github.com/tradsys/mesh/services/risk/checks"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const errorDomain = "risk.tradsys"

// classify is the one table mapping domain errors to a gRPC code, a reason
// and ErrorInfo metadata.
func classify(err error) (codes.Code, string, map[string]string) {
	var (
		field   *fieldError
		unknown *unknownValidatorError
		unavail *lazy.UnavailableError
	)
	meta := map[string]string{}
	switch {
	case errors.As(err, &field):
		meta["field"] = field.field
		return codes.InvalidArgument, "INVALID_ARGUMENT", meta
	case errors.As(err, &unknown):
		meta["validator"] = unknown.name
		return codes.NotFound, "UNKNOWN_VALIDATOR", meta
	case errors.As(err, &unavail):
		meta["component"] = unavail.Component
		return codes.Unavailable, "COMPONENT_UNAVAILABLE", meta
	case errors.Is(err, checks.ErrClosed):
		return codes.Unavailable, "RISK_NOT_LOADED", meta
	}
	return codes.Internal, "INTERNAL", meta
}

// togRPCError is the one place where domain errors become gRPC statuses.
func togRPCError(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		var unavail *lazy.UnavailableError
		if !errors.As(err, &unavail) {
			return status.Error(codes.DeadlineExceeded, err.Error())
		}
	}
	code, reason, meta := classify(err)
	st := status.New(code, err.Error())
	if withInfo, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: errorDomain, Metadata: meta}); derr == nil {
		st = withInfo
	}
	return st.Err()
}
