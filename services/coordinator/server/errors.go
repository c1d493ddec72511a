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
		notGranted *coord.NotGrantedError
		tooLarge   *coord.TooLargeError
		deadlock   *coord.DeadlockError
		rank       *coord.RankError
		timeout    *coord.LockTimeoutError
		notHeld    *coord.NotHeldError
		conflict   *coord.ConflictError
		cycle      *coord.CycleError
	)
	meta := map[string]string{}
	info := func(code codes.Code, reason string) (grpcerr.Info, bool) {
		return grpcerr.Info{Code: code, Reason: reason, Meta: meta}, true
	}
	switch {
	case errors.Is(err, coord.ErrNotLeader):
		return info(codes.Unavailable, "NOT_LEADER")
	case errors.As(err, &notFound):
		meta[notFound.Kind] = notFound.ID
		return info(codes.NotFound, "NOT_FOUND")
	case errors.As(err, &invalid):
		meta["field"] = invalid.Field
		return info(codes.InvalidArgument, "INVALID_ARGUMENT")
	case errors.As(err, &perm):
		meta["holder_session"] = perm.Session
		return info(codes.PermissionDenied, "HELD_BY_ANOTHER_SESSION")
	case errors.As(err, &notGranted):
		meta["requested_bytes"] = fmt.Sprint(notGranted.Requested)
		meta["free_bytes"] = fmt.Sprint(notGranted.Free)
		meta["budget_bytes"] = fmt.Sprint(notGranted.Budget)
		return info(codes.ResourceExhausted, "MEMORY_NOT_GRANTED")
	case errors.As(err, &tooLarge):
		meta["field"] = "bytes"
		meta["budget_bytes"] = fmt.Sprint(tooLarge.Budget)
		return info(codes.InvalidArgument, "LARGER_THAN_BUDGET")
	case errors.As(err, &deadlock):
		for i, e := range deadlock.Cycle {
			meta[fmt.Sprintf("cycle_%d", i)] = e.Session + " -[" + e.Lock + "]-> " + e.Next
		}
		return info(codes.Aborted, "DEADLOCK")
	case errors.As(err, &rank):
		meta["held_lock"], meta["wanted_lock"] = rank.Held, rank.Wanted
		return info(codes.FailedPrecondition, "LOCK_RANK_VIOLATION")
	case errors.As(err, &timeout):
		meta["holder_session"] = timeout.Holder
		return info(codes.DeadlineExceeded, "LOCK_WAIT_TIMEOUT")
	case errors.As(err, &notHeld):
		return info(codes.FailedPrecondition, "LOCK_NOT_HELD")
	case errors.As(err, &conflict):
		return info(codes.FailedPrecondition, "CONFLICT")
	case errors.As(err, &cycle):
		meta["field"] = "dependencies"
		return info(codes.InvalidArgument, "DEPENDENCY_CYCLE")
	}
	return grpcerr.Info{}, false
}
