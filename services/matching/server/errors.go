package server

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/tradsys/mesh/pkg/grpcerr"
	"github.com/tradsys/mesh/pkg/locks"
	"github.com/tradsys/mesh/services/matching/engine"
	"github.com/tradsys/mesh/services/matching/engine/journal"
	"github.com/tradsys/mesh/services/matching/matching"
	"google.golang.org/grpc/codes"
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

// errorTable is the one place where the service's errors become gRPC
// statuses: its domain cases here, the shared ones (context, lazy runtime,
// coordinator, passthrough) in grpcerr.
var errorTable = grpcerr.Table{Domain: errorDomain, Classify: classify}

func togRPCError(err error) error { return errorTable.ToStatus(err) }

// classify maps the matching domain's errors to a code, a reason, a message
// naming the field or object, and ErrorInfo metadata.
func classify(err error) (grpcerr.Info, bool) {
	var (
		orderErr   *matching.OrderError
		unknownSym *matching.UnknownSymbolError
		algoErr    *matching.AlgorithmError
		outOfRange *matching.OutOfRangeError
		journalErr *matching.JournalError
		stale      *locks.StaleTokenError
	)
	meta := map[string]string{}
	if errors.As(err, &orderErr) {
		meta["symbol"] = orderErr.Symbol
		if orderErr.ID != 0 {
			meta["order_id"] = strconv.FormatUint(orderErr.ID, 10)
		}
	}
	for sentinel, field := range invalidField {
		if errors.Is(err, sentinel) {
			meta["field"] = field
			return grpcerr.Info{Code: codes.InvalidArgument, Reason: "INVALID_ARGUMENT", Message: fmt.Sprintf("invalid %s: %v", field, err), Meta: meta}, true
		}
	}
	switch {
	case errors.Is(err, engine.ErrUnknownOrder):
		i, ok := grpcerr.Classified(codes.NotFound, "UNKNOWN_ORDER", meta)
		if orderErr != nil {
			i.Message = fmt.Sprintf("order_id %d not found on %s: no such resting order", orderErr.ID, orderErr.Symbol)
		}
		return i, ok
	case errors.As(err, &unknownSym):
		meta["symbol"] = unknownSym.Symbol
		return grpcerr.Classified(codes.NotFound, "UNKNOWN_SYMBOL", meta)
	case errors.As(err, &algoErr):
		meta["algorithm"] = algoErr.Name
		return grpcerr.Classified(codes.NotFound, "UNKNOWN_ALGORITHM", meta)
	case errors.Is(err, engine.ErrDuplicateOrderID):
		return grpcerr.Classified(codes.AlreadyExists, "DUPLICATE_ORDER_ID", meta)
	case errors.Is(err, engine.ErrPostOnlyWouldCross):
		return grpcerr.Classified(codes.FailedPrecondition, "POST_ONLY_WOULD_CROSS", meta)
	case errors.Is(err, engine.ErrFOKNotFillable):
		return grpcerr.Classified(codes.FailedPrecondition, "FOK_NOT_FILLABLE", meta)
	case errors.As(err, &stale):
		meta["field"] = "fencing_token"
		meta["fencing_token"] = strconv.FormatUint(stale.Token, 10)
		meta["newest_fencing_token"] = strconv.FormatUint(stale.Newest, 10)
		return grpcerr.Info{Code: codes.FailedPrecondition, Reason: "STALE_FENCING_TOKEN", Message: "invalid fencing_token: " + err.Error(), Meta: meta}, true
	case errors.As(err, &outOfRange):
		meta["symbol"] = outOfRange.Symbol
		meta["oldest_sequence"] = strconv.FormatUint(outOfRange.Oldest, 10)
		meta["from_sequence"] = strconv.FormatUint(outOfRange.Requested, 10)
		return grpcerr.Classified(codes.OutOfRange, "TRADES_NO_LONGER_AVAILABLE", meta)
	case errors.Is(err, matching.ErrNotActive):
		return grpcerr.Classified(codes.Unavailable, "ENGINE_NOT_LOADED", meta)
	case errors.As(err, &journalErr), errors.Is(err, journal.ErrClosed):
		return grpcerr.Info{Code: codes.Unavailable, Reason: "JOURNAL_UNAVAILABLE", Message: err.Error() + " (the input was not acknowledged)", Meta: meta}, true
	}
	return grpcerr.Info{}, false
}
