package server

import (
	"errors"
	"fmt"

	"github.com/tradsys/mesh/pkg/grpcerr"
	"github.com/tradsys/mesh/services/coordinator/coord"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const errorDomain = "coordinator.tradsys"

// errorTable is the one place where coordinator errors become gRPC
// statuses: the domain cases here, the shared ones (context, passthrough of
// statuses from etcd or a forwarded call) in grpcerr. An error nobody
// knows is etcd being unreachable and the like: retryable.
var errorTable = grpcerr.Table{Domain: errorDomain, Classify: classify, Fallback: func(err error) error {
	return status.Error(codes.Unavailable, "coordinator storage: "+err.Error())
}}

func togRPCError(err error) error { return errorTable.ToStatus(err) }

// classify maps the coord domain's errors.
func classify(err error) (grpcerr.Info, bool) {
	var (
		notFound   *coord.NotFoundError
		invalid    *coord.InvalidError
		perm       *coord.PermissionError
		capability *coord.CapabilityError
		limit      *coord.LimitError
		notGranted *coord.NotGrantedError
		tooLarge   *coord.TooLargeError
		deadlock   *coord.DeadlockError
		rank       *coord.RankError
		timeout    *coord.LockTimeoutError
		notHeld    *coord.NotHeldError
		inProgress *coord.InProgressError
		cycle      *coord.CycleError
		revoked    *coord.RevokedError
	)
	meta := map[string]string{}
	switch {
	case errors.Is(err, coord.ErrNotLeader):
		return grpcerr.Classified(codes.Unavailable, "NOT_LEADER", meta)
	case errors.As(err, &notFound):
		meta[notFound.Kind] = notFound.ID
		return grpcerr.Classified(codes.NotFound, "NOT_FOUND", meta)
	case errors.As(err, &invalid):
		meta["field"] = invalid.Field
		return grpcerr.Classified(codes.InvalidArgument, "INVALID_ARGUMENT", meta)
	case errors.As(err, &perm):
		meta["holder_session"] = perm.Session
		return grpcerr.Classified(codes.PermissionDenied, "HELD_BY_ANOTHER_SESSION", meta)
	case errors.As(err, &capability):
		meta["session"] = capability.Session
		return grpcerr.Classified(codes.PermissionDenied, "SESSION_NOT_PROVEN", meta)
	case errors.As(err, &limit):
		meta["limit"], meta["value"] = limit.Limit, fmt.Sprint(limit.Value)
		if limit.Owner != "" {
			meta["owner"] = limit.Owner
		}
		return grpcerr.Classified(codes.ResourceExhausted, "LIMIT_REACHED", meta)
	case errors.As(err, &notGranted):
		meta["requested_bytes"] = fmt.Sprint(notGranted.Requested)
		meta["free_bytes"] = fmt.Sprint(notGranted.Free)
		meta["budget_bytes"] = fmt.Sprint(notGranted.Budget)
		for i, h := range notGranted.Holders {
			meta[fmt.Sprintf("holder_%d", i)] = h.String()
		}
		return grpcerr.Classified(codes.ResourceExhausted, "MEMORY_NOT_GRANTED", meta)
	case errors.As(err, &tooLarge):
		meta["field"] = "bytes"
		meta["budget_bytes"] = fmt.Sprint(tooLarge.Budget)
		return grpcerr.Classified(codes.InvalidArgument, "LARGER_THAN_BUDGET", meta)
	case errors.As(err, &deadlock):
		for i, e := range deadlock.Cycle {
			meta[fmt.Sprintf("cycle_%d", i)] = e.Session + " -[" + e.Lock + "]-> " + e.Next
		}
		return grpcerr.Classified(codes.Aborted, "DEADLOCK", meta)
	case errors.As(err, &rank):
		meta["held_lock"], meta["wanted_lock"] = rank.Held, rank.Wanted
		return grpcerr.Classified(codes.FailedPrecondition, "LOCK_RANK_VIOLATION", meta)
	case errors.As(err, &timeout):
		meta["holder_session"] = timeout.Holder
		return grpcerr.Classified(codes.DeadlineExceeded, "LOCK_WAIT_TIMEOUT", meta)
	case errors.As(err, &notHeld):
		return grpcerr.Classified(codes.FailedPrecondition, "LOCK_NOT_HELD", meta)
	case errors.As(err, &inProgress):
		return grpcerr.Classified(codes.Unavailable, "IN_PROGRESS", meta)
	case errors.As(err, &revoked):
		meta["lease"] = revoked.LeaseID
		return grpcerr.Classified(codes.FailedPrecondition, "LEASE_BEING_REVOKED", meta)
	case errors.As(err, &cycle):
		meta["field"] = "dependencies"
		return grpcerr.Classified(codes.InvalidArgument, "DEPENDENCY_CYCLE", meta)
	}
	return grpcerr.Info{}, false
}
