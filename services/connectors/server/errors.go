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
		cfgErr      *manager.ConfigError
		gone        *feeds.SequenceGoneError
		slow        *feeds.SlowConsumerError
		unreachable *manager.UnreachableError
		notSaved    *definitionError
	)
	meta := map[string]string{}
	switch {
	case errors.As(err, &cfgErr):
		meta["field"] = cfgErr.Field
		return grpcerr.Classified(codes.InvalidArgument, "INVALID_CONFIG", meta)
	case errors.Is(err, manager.ErrNotFound):
		return grpcerr.Classified(codes.NotFound, "CONNECTOR_NOT_FOUND", meta)
	case errors.Is(err, manager.ErrAlreadyConnected):
		return grpcerr.Classified(codes.AlreadyExists, "ALREADY_CONNECTED", meta)
	case errors.Is(err, manager.ErrUnloading):
		return grpcerr.Classified(codes.Unavailable, "CONNECTOR_UNLOADING", meta)
	case errors.As(err, &notSaved):
		meta["connector"] = notSaved.connector
		return grpcerr.Classified(codes.Internal, "DEFINITION_NOT_SAVED", meta)
	case errors.As(err, &unreachable):
		meta["connector"], meta["failed_attempts"] = unreachable.Connector, fmt.Sprint(unreachable.Attempts)
		return grpcerr.Classified(codes.Unavailable, "VENUE_UNREACHABLE", meta)
	case errors.As(err, &gone):
		meta["symbol"], meta["requested"], meta["oldest"] = gone.Symbol, fmt.Sprint(gone.Requested), fmt.Sprint(gone.Oldest)
		return grpcerr.Classified(codes.OutOfRange, "SEQUENCE_GONE", meta)
	case errors.Is(err, feeds.ErrSequenceAhead):
		return grpcerr.Classified(codes.OutOfRange, "SEQUENCE_AHEAD", meta)
	case errors.As(err, &slow):
		meta["symbol"], meta["next"], meta["oldest"] = slow.Symbol, fmt.Sprint(slow.Next), fmt.Sprint(slow.Oldest)
		return grpcerr.Classified(codes.ResourceExhausted, "SLOW_CONSUMER", meta)
	case errors.Is(err, feeds.ErrStreamClosed), errors.Is(err, feeds.ErrSubscriptionClosed):
		return grpcerr.Classified(codes.Unavailable, "CONNECTOR_UNLOADING", meta)
	}
	return grpcerr.Info{}, false
}
