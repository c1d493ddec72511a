package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/tradsys/mesh/pkg/coordclient"
	"github.com/tradsys/mesh/pkg/lazy"
	"github.com/tradsys/mesh/services/connectors/feeds"
	"github.com/tradsys/mesh/services/connectors/manager"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const errorDomain = "connectors.tradsys"

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
		cfgErr      *manager.ConfigError
		gone        *feeds.SequenceGoneError
		slow        *feeds.SlowConsumerError
		unavailable *lazy.UnavailableError
		coordDown   *coordclient.Unavailable
		unreachable *manager.UnreachableError
		notSaved    *definitionError
	)
	code, reason, meta := codes.Internal, "INTERNAL", map[string]string{}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.As(err, &cfgErr):
		code, reason = codes.InvalidArgument, "INVALID_CONFIG"
		meta["field"] = cfgErr.Field
	case errors.Is(err, manager.ErrNotFound):
		code, reason = codes.NotFound, "CONNECTOR_NOT_FOUND"
	case errors.Is(err, manager.ErrAlreadyConnected):
		code, reason = codes.AlreadyExists, "ALREADY_CONNECTED"
	case errors.Is(err, manager.ErrUnloading):
		code, reason = codes.Unavailable, "CONNECTOR_UNLOADING"
	case errors.As(err, &notSaved):
		code, reason = codes.Internal, "DEFINITION_NOT_SAVED"
		meta["connector"] = notSaved.connector
	case errors.As(err, &unreachable):
		code, reason = codes.Unavailable, "VENUE_UNREACHABLE"
		meta["connector"], meta["failed_attempts"] = unreachable.Connector, fmt.Sprint(unreachable.Attempts)
	case errors.As(err, &gone):
		code, reason = codes.OutOfRange, "SEQUENCE_GONE"
		meta["symbol"], meta["requested"], meta["oldest"] = gone.Symbol, fmt.Sprint(gone.Requested), fmt.Sprint(gone.Oldest)
	case errors.Is(err, feeds.ErrSequenceAhead):
		code, reason = codes.OutOfRange, "SEQUENCE_AHEAD"
	case errors.As(err, &slow):
		code, reason = codes.ResourceExhausted, "SLOW_CONSUMER"
		meta["symbol"], meta["next"], meta["oldest"] = slow.Symbol, fmt.Sprint(slow.Next), fmt.Sprint(slow.Oldest)
	case errors.Is(err, feeds.ErrStreamClosed), errors.Is(err, feeds.ErrSubscriptionClosed):
		code, reason = codes.Unavailable, "CONNECTOR_UNLOADING"
	case errors.As(err, &unavailable):
		code, reason = codes.Unavailable, "COMPONENT_UNAVAILABLE"
		meta["component"] = unavailable.Component
	case errors.As(err, &coordDown):
		code, reason = codes.Unavailable, "COORDINATOR_UNAVAILABLE"
	case errors.Is(err, lazy.ErrUnknown):
		code, reason = codes.NotFound, "COMPONENT_NOT_FOUND"
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	st := status.New(code, err.Error())
	if withInfo, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: errorDomain, Metadata: meta}); derr == nil {
		st = withInfo
	}
	return st.Err()
}
