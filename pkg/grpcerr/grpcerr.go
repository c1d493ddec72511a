// Package grpcerr is the one way a TradSys service turns errors into gRPC
// statuses (etcd v3rpc's togRPCError): a code, a message naming the field or
// object, and a google.rpc.ErrorInfo detail with a reason and
// machine-readable metadata.
//
// A service's server/errors.go lists only its domain cases in a Table; the
// cases every service shares are here, once: context errors, the lazy
// runtime's and the coordinator client's errors, statuses passed through
// from calls to other services, and the ErrorInfo attachment.
package grpcerr

import (
	"context"
	"errors"
	"strconv"

	"github.com/tradsys/mesh/pkg/coordclient"
	"github.com/tradsys/mesh/pkg/lazy"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Reasons of the shared cases: the same cause has the same reason in every
// service.
const (
	ReasonComponentUnavailable   = "COMPONENT_UNAVAILABLE"    // UNAVAILABLE: a lazy component could not serve the call
	ReasonComponentNotFound      = "COMPONENT_NOT_FOUND"      // NOT_FOUND: no such component in this service
	ReasonCoordinatorWaitTimeout = "COORDINATOR_WAIT_TIMEOUT" // DEADLINE_EXCEEDED: a coordinator wait (a lock) ran out
	ReasonCoordinatorUnavailable = "COORDINATOR_UNAVAILABLE"  // UNAVAILABLE: the coordinator or the session is gone
	ReasonInternal               = "INTERNAL"                 // INTERNAL: an error no table knows
	ReasonMemoryLeaseFull        = "MEMORY_LEASE_FULL"        // RESOURCE_EXHAUSTED: a component's lease may not grow; it sheds load
)

// Info is how one error is answered.
type Info struct {
	Code   codes.Code
	Reason string
	// Message replaces err.Error() when set (to name the field, say).
	Message string
	// Meta is the ErrorInfo metadata; nil is fine.
	Meta map[string]string
}

// Classified is what a Classify function returns for an error it knows:
// return grpcerr.Classified(codes.NotFound, "UNKNOWN_ORDER", meta).
func Classified(code codes.Code, reason string, meta map[string]string) (Info, bool) {
	return Info{Code: code, Reason: reason, Meta: meta}, true
}

// Table converts one service's errors.
type Table struct {
	// Domain is the ErrorInfo domain, "<service>.tradsys".
	Domain string
	// Classify answers the service's own errors; ok is false for errors it
	// does not know, which then go through the shared cases.
	Classify func(err error) (info Info, ok bool)
	// Fallback answers an error no case knows; nil means INTERNAL with
	// reason INTERNAL.
	Fallback func(err error) error
}

// shared are the cases every service answers the same way, tried after the
// service's own. Each one's reason is asserted once, in grpcerr_test.
var shared = []struct {
	code   codes.Code
	reason string
	match  func(err error, meta map[string]string) bool
}{
	{codes.ResourceExhausted, ReasonMemoryLeaseFull, func(err error, meta map[string]string) bool {
		// The component uses what it leases and the coordinator refused it
		// more: it refuses new work that would need memory.
		var r *lazy.Refusal
		if !errors.As(err, &r) {
			return false
		}
		meta["component"], meta["lease"] = r.Component, r.LeaseID
		meta["used_bytes"] = strconv.FormatInt(r.Used, 10)
		meta["leased_bytes"] = strconv.FormatInt(r.Leased, 10)
		if info := ErrorInfo(r.Err); info != nil && info.GetMetadata()["budget_bytes"] != "" {
			meta["budget_bytes"] = info.GetMetadata()["budget_bytes"]
		}
		return true
	}},
	{codes.Unavailable, ReasonComponentUnavailable, func(err error, meta map[string]string) bool {
		var u *lazy.UnavailableError
		if !errors.As(err, &u) {
			return false
		}
		meta["component"] = u.Component
		return true
	}},
	{codes.DeadlineExceeded, ReasonCoordinatorWaitTimeout, func(err error, _ map[string]string) bool {
		// e.g. a lock held by someone else for longer than the wait.
		var down *coordclient.Unavailable
		return errors.As(err, &down) && status.Code(down.Err) == codes.DeadlineExceeded
	}},
	{codes.Unavailable, ReasonCoordinatorUnavailable, func(err error, _ map[string]string) bool {
		var down *coordclient.Unavailable
		return errors.As(err, &down) || errors.Is(err, coordclient.ErrSessionLost)
	}},
	{codes.NotFound, ReasonComponentNotFound, func(err error, _ map[string]string) bool {
		return errors.Is(err, lazy.ErrUnknown)
	}},
}

// ToStatus is the status for err, in this order: nil stays nil; a
// cancelled call is CANCELED; then the service's own cases; then the
// shared ones (a component that could not run the call names itself and
// the cause, even when the cause is a deadline); a deadline that ran out
// is DEADLINE_EXCEEDED; a status (from a call to another service) passes
// through as it is; anything else is the Fallback.
func (t Table) ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, err.Error())
	}
	if t.Classify != nil {
		if info, ok := t.Classify(err); ok {
			return t.status(err, info)
		}
	}
	var unavailable *lazy.UnavailableError
	if errors.As(err, &unavailable) {
		if st, ok := refusal(err); ok {
			return st
		}
	}
	for _, c := range shared {
		meta := map[string]string{}
		if c.match(err, meta) {
			return t.status(err, Info{Code: c.code, Reason: c.reason, Meta: meta})
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if t.Fallback != nil {
		return t.Fallback(err)
	}
	return t.status(err, Info{Code: codes.Internal, Reason: ReasonInternal})
}

// refusal is a component that could not activate because another service
// refused (the coordinator's RESOURCE_EXHAUSTED for its memory lease): the
// caller gets that refusal's code (RESOURCE_EXHAUSTED stays, anything else
// is UNAVAILABLE) and its details (the coordinator's ErrorInfo with the
// requested, free and budget bytes and the holders) unchanged, with the
// message naming the component and the cause. ok is false when no status
// is wrapped or it carries no details: then the shared
// COMPONENT_UNAVAILABLE case answers.
func refusal(err error) (error, bool) {
	var cause interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &cause) {
		return nil, false
	}
	p := cause.GRPCStatus().Proto()
	if codes.Code(p.Code) != codes.ResourceExhausted && len(p.Details) == 0 {
		return nil, false
	}
	p.Message = err.Error()
	if codes.Code(p.Code) != codes.ResourceExhausted {
		p.Code = int32(codes.Unavailable)
	}
	return status.FromProto(p).Err(), true
}

// status attaches the ErrorInfo detail.
func (t Table) status(err error, info Info) error {
	msg := info.Message
	if msg == "" {
		msg = err.Error()
	}
	domain := t.Domain
	if domain == "" {
		domain = "tradsys"
	}
	st := status.New(info.Code, msg)
	if withInfo, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: info.Reason, Domain: domain, Metadata: info.Meta}); derr == nil {
		st = withInfo
	}
	return st.Err()
}

// ErrorInfo returns the ErrorInfo detail of a status error, or nil.
func ErrorInfo(err error) *errdetails.ErrorInfo {
	st, ok := status.FromError(err)
	if !ok {
		return nil
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}
