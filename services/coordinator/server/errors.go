package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/tradsys/mesh/services/coordinator/coord"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const errorDomain = "coordinator.tradsys"

// togRPCError is the one place where domain errors become gRPC statuses:
// the code, the message, and an ErrorInfo detail with machine-readable
// fields for clients that act on them.
func togRPCError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err // already a status (from etcd or a forwarded call)
	}
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
	code, reason, meta := codes.Internal, "INTERNAL", map[string]string{}
	switch {
	case errors.Is(err, coord.ErrNotLeader):
		code, reason = codes.Unavailable, "NOT_LEADER"
	case errors.As(err, &notFound):
		code, reason = codes.NotFound, "NOT_FOUND"
		meta[notFound.Kind] = notFound.ID
	case errors.As(err, &invalid):
		code, reason = codes.InvalidArgument, "INVALID_ARGUMENT"
		meta["field"] = invalid.Field
	case errors.As(err, &perm):
		code, reason = codes.PermissionDenied, "HELD_BY_ANOTHER_SESSION"
		meta["holder_session"] = perm.Session
	case errors.As(err, &capability):
		code, reason = codes.PermissionDenied, "SESSION_NOT_PROVEN"
		meta["session"] = capability.Session
	case errors.As(err, &limit):
		code, reason = codes.ResourceExhausted, "LIMIT_REACHED"
		meta["limit"], meta["value"] = limit.Limit, fmt.Sprint(limit.Value)
		if limit.Owner != "" {
			meta["owner"] = limit.Owner
		}
	case errors.As(err, &notGranted):
		code, reason = codes.ResourceExhausted, "MEMORY_NOT_GRANTED"
		meta["requested_bytes"] = fmt.Sprint(notGranted.Requested)
		meta["free_bytes"] = fmt.Sprint(notGranted.Free)
		meta["budget_bytes"] = fmt.Sprint(notGranted.Budget)
		for i, h := range notGranted.Holders {
			meta[fmt.Sprintf("holder_%d", i)] = h.String()
		}
	case errors.As(err, &tooLarge):
		code, reason = codes.InvalidArgument, "LARGER_THAN_BUDGET"
		meta["field"] = "bytes"
		meta["budget_bytes"] = fmt.Sprint(tooLarge.Budget)
	case errors.As(err, &deadlock):
		code, reason = codes.Aborted, "DEADLOCK"
		for i, e := range deadlock.Cycle {
			meta[fmt.Sprintf("cycle_%d", i)] = e.Session + " -[" + e.Lock + "]-> " + e.Next
		}
	case errors.As(err, &rank):
		code, reason = codes.FailedPrecondition, "LOCK_RANK_VIOLATION"
		meta["held_lock"], meta["wanted_lock"] = rank.Held, rank.Wanted
	case errors.As(err, &timeout):
		code, reason = codes.DeadlineExceeded, "LOCK_WAIT_TIMEOUT"
		meta["holder_session"] = timeout.Holder
	case errors.As(err, &notHeld):
		code, reason = codes.FailedPrecondition, "LOCK_NOT_HELD"
	case errors.As(err, &inProgress):
		code, reason = codes.Unavailable, "IN_PROGRESS"
	case errors.As(err, &revoked):
		code, reason = codes.FailedPrecondition, "LEASE_BEING_REVOKED"
		meta["lease"] = revoked.LeaseID
	case errors.As(err, &cycle):
		code, reason = codes.InvalidArgument, "DEPENDENCY_CYCLE"
		meta["field"] = "dependencies"
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	default:
		// etcd unreachable and the like: retryable from the caller's side.
		return status.Error(codes.Unavailable, "coordinator storage: "+err.Error())
	}
	st := status.New(code, err.Error())
	if withInfo, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: errorDomain, Metadata: meta}); derr == nil {
		st = withInfo
	}
	return st.Err()
}
