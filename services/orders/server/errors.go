package server

import (
	"context"
	"errors"
	"strconv"
	"strings"

	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	"github.com/tradsys/mesh/services/orders/oms"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const errorDomain = "orders.tradsys"

// classify is the one table mapping domain errors to a gRPC code, a reason
// and ErrorInfo metadata.
func classify(err error) (code codes.Code, reason string, meta map[string]string) {
	var (
		field   *oms.FieldError
		trimmed *oms.TrimmedError
		risk    *oms.RiskRejectedError
		refused *oms.RefusedError
		reused  *oms.ClientOrderIDReusedError
		ahead   *oms.AheadError
	)
	meta = map[string]string{}
	switch {
	case errors.As(err, &field):
		meta["field"] = field.Field
		return codes.InvalidArgument, "INVALID_ARGUMENT", meta
	case errors.Is(err, oms.ErrInvalidPageToken):
		meta["field"] = "page_token"
		return codes.InvalidArgument, "INVALID_ARGUMENT", meta
	case errors.Is(err, oms.ErrUnknownSymbol):
		return codes.NotFound, "UNKNOWN_SYMBOL", meta
	case errors.Is(err, oms.ErrUnknownOrder):
		return codes.NotFound, "UNKNOWN_ORDER", meta
	case errors.As(err, &reused):
		meta["field"] = "client_order_id"
		meta["order_id"] = strconv.FormatUint(reused.OrderID, 10)
		meta["differs"] = strings.Join(reused.Fields, ",")
		return codes.AlreadyExists, "CLIENT_ORDER_ID_REUSED", meta
	case errors.Is(err, oms.ErrSymbolExists):
		return codes.AlreadyExists, "INSTRUMENT_EXISTS", meta
	case errors.Is(err, oms.ErrHalted):
		return codes.FailedPrecondition, "INSTRUMENT_HALTED", meta
	case errors.Is(err, oms.ErrNotOpen):
		return codes.FailedPrecondition, "ORDER_NOT_OPEN", meta
	case errors.As(err, &risk):
		return codes.FailedPrecondition, "RISK_REJECTED", meta
	case errors.As(err, &refused):
		return codes.FailedPrecondition, "MATCHING_REFUSED", meta
	case errors.As(err, &trimmed):
		meta["oldest_sequence"] = strconv.FormatUint(trimmed.Oldest, 10)
		meta["from_sequence"] = strconv.FormatUint(trimmed.Requested, 10)
		return codes.OutOfRange, "UPDATES_NO_LONGER_AVAILABLE", meta
	case errors.As(err, &ahead):
		meta["field"] = "from_sequence"
		meta["next_sequence"] = strconv.FormatUint(ahead.Next, 10)
		meta["from_sequence"] = strconv.FormatUint(ahead.Requested, 10)
		return codes.OutOfRange, "UPDATE_SEQUENCE_AHEAD", meta
	case errors.Is(err, oms.ErrClosed):
		return codes.Unavailable, "ORDERS_NOT_LOADED", meta
	case errors.Is(err, oms.ErrBadTransition):
		return codes.Internal, "BAD_TRANSITION", meta
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		// A status from risk or matching (e.g. UNAVAILABLE on a cancel):
		// its code, with our domain.
		return st.Code(), "UPSTREAM_" + st.Code().String(), meta
	}
	return codes.Unavailable, "UPSTREAM_UNAVAILABLE", meta
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
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	code, reason, meta := classify(err)
	msg := err.Error()
	if st, ok := status.FromError(err); ok {
		msg = st.Message()
	}
	st := status.New(code, msg)
	if withInfo, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: errorDomain, Metadata: meta}); derr == nil {
		st = withInfo
	}
	return st.Err()
}

// invalidRequest is a request the validator interceptor would refuse (as
// INVALID_ARGUMENT with the check's message, which names the field), for
// the messages of a stream, which the interceptor does not check one by
// one. The field, taken from the checks' "invalid <field>: <reason>"
// message, is also in the ErrorInfo as for the service's own field errors.
func invalidRequest(err error) error {
	meta := map[string]string{}
	if rest, ok := strings.CutPrefix(err.Error(), "invalid "); ok {
		if field, _, ok := strings.Cut(rest, ": "); ok && !strings.Contains(field, " ") {
			meta["field"] = field
		}
	}
	st := status.New(codes.InvalidArgument, err.Error())
	if withInfo, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: "INVALID_ARGUMENT", Domain: errorDomain, Metadata: meta}); derr == nil {
		st = withInfo
	}
	return st.Err()
}

// streamError is the error answer of one message of a SubmitOrders stream:
// the status a SubmitOrder call would have returned (err is one already),
// with its ErrorInfo's reason and field.
func streamError(err error) *ordersv1.SubmitOrdersError {
	st := status.Convert(err)
	e := &ordersv1.SubmitOrdersError{Code: int32(st.Code()), Message: st.Message()}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			e.Reason, e.Field = info.GetReason(), info.GetMetadata()["field"]
			for k, v := range info.GetMetadata() {
				if k != "field" {
					if e.Metadata == nil {
						e.Metadata = map[string]string{}
					}
					e.Metadata[k] = v
				}
			}
		}
	}
	return e
}
