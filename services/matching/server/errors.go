package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/tradsys/mesh/pkg/coordclient"
	"github.com/tradsys/mesh/pkg/lazy"
	"github.com/tradsys/mesh/pkg/locks"
	"github.com/tradsys/mesh/services/matching/engine"
	"github.com/tradsys/mesh/services/matching/engine/journal"
	"github.com/tradsys/mesh/services/matching/matching"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const errorDomain = "matching.tradsys"

// invalidField names the request field behind each engine input error.
var invalidField = map[error]string{
	engine.ErrInvalidQuantity:  "quantity",
	engine.ErrInvalidPrice:     "price",
	engine.ErrInvalidSide:      "side",
	engine.ErrInvalidOrderType: "type",
	engine.ErrInvalidOrderID:   "order_id",
	engine.ErrInvalidSymbol:    "symbol",
}

// classify is the one table mapping domain errors to a gRPC code, a reason
// and ErrorInfo metadata. ok is false for errors it does not know.
func classify(err error) (code codes.Code, reason, msg string, meta map[string]string, ok bool) {
	var (
		orderErr   *matching.OrderError
		unknownSym *matching.UnknownSymbolError
		algoErr    *matching.AlgorithmError
		outOfRange *matching.OutOfRangeError
		journalErr *matching.JournalError
		stale      *locks.StaleTokenError
		unavail    *lazy.UnavailableError
		coordDown  *coordclient.Unavailable
		refusal    *lazy.Refusal
	)
	meta = map[string]string{}
	msg = err.Error()
	if errors.As(err, &orderErr) {
		meta["symbol"] = orderErr.Symbol
		if orderErr.ID != 0 {
			meta["order_id"] = strconv.FormatUint(orderErr.ID, 10)
		}
	}
	for sentinel, field := range invalidField {
		if errors.Is(err, sentinel) {
			meta["field"] = field
			return codes.InvalidArgument, "INVALID_ARGUMENT", fmt.Sprintf("invalid %s: %v", field, err), meta, true
		}
	}
	switch {
	case errors.Is(err, engine.ErrUnknownOrder):
		if orderErr != nil {
			msg = fmt.Sprintf("order_id %d not found on %s: no such resting order", orderErr.ID, orderErr.Symbol)
		}
		return codes.NotFound, "UNKNOWN_ORDER", msg, meta, true
	case errors.As(err, &unknownSym):
		meta["symbol"] = unknownSym.Symbol
		return codes.NotFound, "UNKNOWN_SYMBOL", msg, meta, true
	case errors.As(err, &algoErr):
		meta["algorithm"] = algoErr.Name
		return codes.NotFound, "UNKNOWN_ALGORITHM", msg, meta, true
	case errors.Is(err, engine.ErrDuplicateOrderID):
		return codes.AlreadyExists, "DUPLICATE_ORDER_ID", msg, meta, true
	case errors.Is(err, engine.ErrPostOnlyWouldCross):
		return codes.FailedPrecondition, "POST_ONLY_WOULD_CROSS", msg, meta, true
	case errors.Is(err, engine.ErrFOKNotFillable):
		return codes.FailedPrecondition, "FOK_NOT_FILLABLE", msg, meta, true
	case errors.As(err, &stale):
		meta["field"] = "fencing_token"
		meta["fencing_token"] = strconv.FormatUint(stale.Token, 10)
		meta["newest_fencing_token"] = strconv.FormatUint(stale.Newest, 10)
		return codes.FailedPrecondition, "STALE_FENCING_TOKEN", "invalid fencing_token: " + msg, meta, true
	case errors.As(err, &outOfRange):
		meta["symbol"] = outOfRange.Symbol
		meta["oldest_sequence"] = strconv.FormatUint(outOfRange.Oldest, 10)
		meta["from_sequence"] = strconv.FormatUint(outOfRange.Requested, 10)
		return codes.OutOfRange, "TRADES_NO_LONGER_AVAILABLE", msg, meta, true
	case errors.Is(err, matching.ErrNotActive):
		return codes.Unavailable, "ENGINE_NOT_LOADED", msg, meta, true
	case errors.As(err, &journalErr), errors.Is(err, journal.ErrClosed):
		return codes.Unavailable, "JOURNAL_UNAVAILABLE", msg + " (the input was not acknowledged)", meta, true
	case errors.As(err, &refusal):
		// The books use what the engine leases and the lease may not grow:
		// new orders that could rest are refused until it fits again.
		meta["component"], meta["lease"] = refusal.Component, refusal.LeaseID
		meta["used_bytes"] = strconv.FormatInt(refusal.Used, 10)
		meta["leased_bytes"] = strconv.FormatInt(refusal.Leased, 10)
		if b := budgetOf(refusal.Err); b != "" {
			meta["budget_bytes"] = b
		}
		return codes.ResourceExhausted, "MEMORY_LEASE_FULL", "new resting orders refused: " + msg, meta, true
	case errors.As(err, &unavail):
		meta["component"] = unavail.Component
		return codes.Unavailable, "COMPONENT_UNAVAILABLE", msg, meta, true
	case errors.As(err, &coordDown) && status.Code(coordDown.Err) == codes.DeadlineExceeded:
		// e.g. the lock "matching/algorithms" is held by someone else.
		return codes.DeadlineExceeded, "COORDINATOR_WAIT_TIMEOUT", msg, meta, true
	case errors.As(err, &coordDown), errors.Is(err, coordclient.ErrSessionLost):
		return codes.Unavailable, "COORDINATOR_UNAVAILABLE", msg, meta, true
	case errors.Is(err, lazy.ErrUnknown):
		return codes.NotFound, "UNKNOWN_COMPONENT", msg, meta, true
	}
	return codes.Internal, "INTERNAL", msg, meta, false
}

// budgetOf is the budget_bytes of the coordinator's refusal, if it says.
func budgetOf(err error) string {
	var st interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &st) {
		return ""
	}
	for _, d := range st.GRPCStatus().Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetMetadata()["budget_bytes"]
		}
	}
	return ""
}

// togRPCError is the one place where domain errors become gRPC statuses:
// the code, a message naming the field or object, and an ErrorInfo detail.
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
	code, reason, msg, meta, ok := classify(err)
	if !ok {
		if _, isStatus := status.FromError(err); isStatus {
			return err // from the coordinator (lock wait timeout, deadlock): already clear
		}
	}
	st := status.New(code, msg)
	if withInfo, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: errorDomain, Metadata: meta}); derr == nil {
		st = withInfo
	}
	return st.Err()
}
