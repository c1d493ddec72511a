package server

import (
	"errors"
	"os"
	"strconv"

	"github.com/tradsys/mesh/pkg/candlewire"
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
	switch {
	case errors.As(err, &srcErr) && (errors.Is(err, history.ErrNoFiles) || errors.Is(err, os.ErrNotExist)):
		meta["field"] = srcErr.Field
		return grpcerr.Classified(codes.NotFound, "NO_SUCH_FILE", meta)
	case errors.As(err, &srcErr) && errors.As(err, &kline):
		meta["field"] = srcErr.Field
		meta["file"], meta["line"] = kline.File, strconv.Itoa(kline.Line)
		return grpcerr.Classified(codes.InvalidArgument, "MALFORMED_KLINE", meta)
	case errors.As(err, &srcErr) && errors.Is(err, os.ErrPermission):
		meta["field"] = srcErr.Field
		return grpcerr.Classified(codes.PermissionDenied, "FILE_NOT_READABLE", meta)
	case errors.As(err, &srcErr):
		meta["field"] = srcErr.Field
		return grpcerr.Classified(codes.InvalidArgument, "INVALID_SOURCE", meta)
	case errors.Is(err, candles.ErrInvalidPageToken):
		meta["field"] = "page_token"
		return grpcerr.Classified(codes.InvalidArgument, "INVALID_PAGE_TOKEN", meta)
	case errors.Is(err, candles.ErrInvalidRange), errors.Is(err, candles.ErrInvalidSymbol), errors.Is(err, candles.ErrUnknownInterval):
		return grpcerr.Classified(codes.InvalidArgument, "INVALID_ARGUMENT", meta)
	case errors.Is(err, candles.ErrNotFound):
		return grpcerr.Classified(codes.NotFound, "NO_CANDLES", meta)
	case errors.Is(err, candlewire.ErrNotEncodable):
		return grpcerr.Classified(codes.Internal, "NOT_ENCODABLE", meta)
	case errors.Is(err, candles.ErrCorrupt):
		return grpcerr.Classified(codes.DataLoss, "CORRUPT_STORE", meta)
	case errors.As(err, &kline):
		return grpcerr.Classified(codes.InvalidArgument, "MALFORMED_KLINE", meta)
	}
	return grpcerr.Info{}, false
}
