package server

import (
	"context"
	"errors"
	"os"
	"strconv"

	"github.com/tradsys/mesh/pkg/candlewire"
	"github.com/tradsys/mesh/pkg/coordclient"
	"github.com/tradsys/mesh/pkg/lazy"
	"github.com/tradsys/mesh/services/historical/candles"
	"github.com/tradsys/mesh/services/historical/history"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const errorDomain = "historical.tradsys"

// togRPCError is the one place where domain errors become gRPC statuses:
// the code, the message, and an ErrorInfo detail with machine-readable
// fields.
func togRPCError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var (
		srcErr      *history.SourceError
		kline       *candles.KlineError
		unavailable *lazy.UnavailableError
		coordDown   *coordclient.Unavailable
	)
	code, reason, meta := codes.Internal, "INTERNAL", map[string]string{}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.As(err, &srcErr) && (errors.Is(err, history.ErrNoFiles) || errors.Is(err, os.ErrNotExist)):
		code, reason = codes.NotFound, "NO_SUCH_FILE"
		meta["field"] = srcErr.Field
	case errors.As(err, &srcErr) && errors.As(err, &kline):
		code, reason = codes.InvalidArgument, "MALFORMED_KLINE"
		meta["field"] = srcErr.Field
		meta["file"], meta["line"] = kline.File, strconv.Itoa(kline.Line)
	case errors.As(err, &srcErr) && errors.Is(err, os.ErrPermission):
		code, reason = codes.PermissionDenied, "FILE_NOT_READABLE"
		meta["field"] = srcErr.Field
	case errors.As(err, &srcErr):
		code, reason = codes.InvalidArgument, "INVALID_SOURCE"
		meta["field"] = srcErr.Field
	case errors.Is(err, candles.ErrInvalidPageToken):
		code, reason = codes.InvalidArgument, "INVALID_PAGE_TOKEN"
		meta["field"] = "page_token"
	case errors.Is(err, candles.ErrInvalidRange), errors.Is(err, candles.ErrInvalidSymbol), errors.Is(err, candles.ErrUnknownInterval):
		code, reason = codes.InvalidArgument, "INVALID_ARGUMENT"
	case errors.Is(err, candles.ErrNotFound):
		code, reason = codes.NotFound, "NO_CANDLES"
	case errors.Is(err, candlewire.ErrNotEncodable):
		reason = "NOT_ENCODABLE"
	case errors.Is(err, candles.ErrCorrupt):
		code, reason = codes.DataLoss, "CORRUPT_STORE"
	case errors.As(err, &unavailable):
		code, reason = codes.Unavailable, "COMPONENT_UNAVAILABLE"
		meta["component"] = unavailable.Component
	case errors.As(err, &coordDown):
		code, reason = codes.Unavailable, "COORDINATOR_UNAVAILABLE"
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.As(err, &kline):
		code, reason = codes.InvalidArgument, "MALFORMED_KLINE"
	}
	st := status.New(code, err.Error())
	if withInfo, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: errorDomain, Metadata: meta}); derr == nil {
		st = withInfo
	}
	return st.Err()
}
