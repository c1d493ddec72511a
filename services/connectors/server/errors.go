package server

import (
	"errors"
	"fmt"

	"github.com/tradsys/mesh/pkg/grpcerr"
	"github.com/tradsys/mesh/services/connectors/feeds"
	"github.com/tradsys/mesh/services/connectors/manager"
	"google.golang.org/grpc/codes"
)

const errorDomain = "connectors.tradsys"

// errorTable is the one place where the service's errors become gRPC
// statuses: its domain cases here, the shared ones (context, lazy runtime,
// coordinator, passthrough) in grpcerr.
var errorTable = grpcerr.Table{Domain: errorDomain, Classify: classify}

func togRPCError(err error) error { return errorTable.ToStatus(err) }

// classify maps the connectors domain's errors.
func classify(err error) (grpcerr.Info, bool) {
	var (
		cfgErr *manager.ConfigError
		gone   *feeds.SequenceGoneError
		slow   *feeds.SlowConsumerError
	)
	meta := map[string]string{}
	info := func(code codes.Code, reason string) (grpcerr.Info, bool) {
		return grpcerr.Info{Code: code, Reason: reason, Meta: meta}, true
	}
	switch {
	case errors.As(err, &cfgErr):
		meta["field"] = cfgErr.Field
		return info(codes.InvalidArgument, "INVALID_CONFIG")
	case errors.Is(err, manager.ErrNotFound):
		return info(codes.NotFound, "CONNECTOR_NOT_FOUND")
	case errors.Is(err, manager.ErrAlreadyConnected):
		return info(codes.AlreadyExists, "ALREADY_CONNECTED")
	case errors.Is(err, manager.ErrUnloading):
		return info(codes.Unavailable, "CONNECTOR_UNLOADING")
	case errors.As(err, &gone):
		meta["symbol"], meta["requested"], meta["oldest"] = gone.Symbol, fmt.Sprint(gone.Requested), fmt.Sprint(gone.Oldest)
		return info(codes.OutOfRange, "SEQUENCE_GONE")
	case errors.Is(err, feeds.ErrSequenceAhead):
		return info(codes.OutOfRange, "SEQUENCE_AHEAD")
	case errors.As(err, &slow):
		meta["symbol"], meta["next"], meta["oldest"] = slow.Symbol, fmt.Sprint(slow.Next), fmt.Sprint(slow.Oldest)
		return info(codes.ResourceExhausted, "SLOW_CONSUMER")
	case errors.Is(err, feeds.ErrStreamClosed), errors.Is(err, feeds.ErrSubscriptionClosed):
		return info(codes.Unavailable, "CONNECTOR_UNLOADING")
	}
	return grpcerr.Info{}, false
}
