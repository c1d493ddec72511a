package server

import (
	"errors"
	"os"
	"strconv"

	"github.com/tradsys/mesh/pkg/grpcerr"
	"github.com/tradsys/mesh/services/historical/candles"
	"github.com/tradsys/mesh/services/historical/history"
	"google.golang.org/grpc/codes"
)

const errorDomain = "historical.tradsys"

// errorTable is the one place where the service's errors become gRPC
// statuses: its domain cases here, the shared ones (context, lazy runtime,
// coordinator, passthrough) in grpcerr.
var errorTable = grpcerr.Table{Domain: errorDomain, Classify: classify}

func togRPCError(err error) error { return errorTable.ToStatus(err) }

// classify maps the historical domain's errors.
func classify(err error) (grpcerr.Info, bool) {
	var (
		srcErr *history.SourceError
		kline  *candles.KlineError
	)
	meta := map[string]string{}
	info := func(code codes.Code, reason string) (grpcerr.Info, bool) {
		return grpcerr.Info{Code: code, Reason: reason, Meta: meta}, true
	}
	switch {
	case errors.As(err, &srcErr) && (errors.Is(err, history.ErrNoFiles) || errors.Is(err, os.ErrNotExist)):
		meta["field"] = srcErr.Field
		return info(codes.NotFound, "NO_SUCH_FILE")
	case errors.As(err, &srcErr) && errors.As(err, &kline):
		meta["field"] = srcErr.Field
		meta["file"], meta["line"] = kline.File, strconv.Itoa(kline.Line)
		return info(codes.InvalidArgument, "MALFORMED_KLINE")
	case errors.As(err, &srcErr) && errors.Is(err, os.ErrPermission):
		meta["field"] = srcErr.Field
		return info(codes.PermissionDenied, "FILE_NOT_READABLE")
	case errors.As(err, &srcErr):
		meta["field"] = srcErr.Field
		return info(codes.InvalidArgument, "INVALID_SOURCE")
	case errors.Is(err, candles.ErrInvalidPageToken):
		meta["field"] = "page_token"
		return info(codes.InvalidArgument, "INVALID_PAGE_TOKEN")
	case errors.Is(err, candles.ErrInvalidRange), errors.Is(err, candles.ErrInvalidSymbol), errors.Is(err, candles.ErrUnknownInterval):
		return info(codes.InvalidArgument, "INVALID_ARGUMENT")
	case errors.Is(err, candles.ErrNotFound):
		return info(codes.NotFound, "NO_CANDLES")
	case errors.Is(err, candles.ErrCorrupt):
		return info(codes.DataLoss, "CORRUPT_STORE")
	case errors.As(err, &kline):
		return info(codes.InvalidArgument, "MALFORMED_KLINE")
	}
	return grpcerr.Info{}, false
}
