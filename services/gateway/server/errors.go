package server

import (
	"errors"

	"github.com/tradsys/mesh/pkg/lazy"
	"github.com/tradsys/mesh/services/gateway/hub"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const errorDomain = "gateway.tradsys"

// codeUnauthenticated is gRPC's own: the WebSocket refuses the upgrade
// instead (401).
const codeUnauthenticated = "unauthenticated"

// codeOf is the one table between the gateway's error codes (error frames)
// and gRPC codes, both ways.
var codeOf = map[string]codes.Code{
	hub.CodeBadJSON:      codes.InvalidArgument,
	hub.CodeInvalidField: codes.InvalidArgument,
	hub.CodeUnknownType:  codes.InvalidArgument,
	hub.CodeRateLimited:  codes.ResourceExhausted,
	hub.CodeBusy:         codes.ResourceExhausted,
	hub.CodeForbidden:    codes.PermissionDenied,
	hub.CodeNotFound:     codes.NotFound,
	hub.CodeRejected:     codes.FailedPrecondition,
	hub.CodeUnavailable:  codes.Unavailable,
	hub.CodeInternal:     codes.Internal,
	codeUnauthenticated:  codes.Unauthenticated,
}

// hubCodeOf is codeOf reversed for the codes other services answer with.
var hubCodeOf = map[codes.Code]string{
	codes.InvalidArgument:    hub.CodeInvalidField,
	codes.OutOfRange:         hub.CodeInvalidField,
	codes.ResourceExhausted:  hub.CodeRejected,
	codes.PermissionDenied:   hub.CodeForbidden,
	codes.Unauthenticated:    hub.CodeForbidden,
	codes.NotFound:           hub.CodeNotFound,
	codes.FailedPrecondition: hub.CodeRejected,
	codes.AlreadyExists:      hub.CodeRejected,
	codes.Aborted:            hub.CodeRejected,
	codes.Unavailable:        hub.CodeUnavailable,
	codes.DeadlineExceeded:   hub.CodeUnavailable,
	codes.Canceled:           hub.CodeUnavailable,
}

// toHubError turns another service's gRPC error into an error frame's
// content, keeping its message (the cause) and the field it names.
func toHubError(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	code := hubCodeOf[st.Code()]
	if code == "" {
		code = hub.CodeInternal
	}
	e := &hub.Error{Code: code, Message: st.Message()}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			e.Field = info.GetMetadata()["field"]
		}
	}
	return &upstreamError{frame: e, st: st}
}

// upstreamError is another service's refusal as an error frame's content
// (what a WebSocket client gets), keeping the status it came as: the
// gateway's gRPC answers pass on its code and ErrorInfo (OUT_OF_RANGE with
// the oldest sequence to resume from, ALREADY_EXISTS naming the earlier
// order), which the frame's coarser codes would lose.
type upstreamError struct {
	frame *hub.Error
	st    *status.Status
}

func (e *upstreamError) Error() string { return e.frame.Error() }
func (e *upstreamError) Unwrap() error { return e.frame }

// upstreamStatus is the upstream's status under the gateway's domain: its
// code and message, its ErrorInfo's reason and metadata.
func upstreamStatus(up *upstreamError) error {
	info := &errdetails.ErrorInfo{Domain: errorDomain, Reason: upper(up.frame.Code), Metadata: map[string]string{}}
	for _, d := range up.st.Details() {
		if i, ok := d.(*errdetails.ErrorInfo); ok {
			info.Reason = i.GetReason()
			for k, v := range i.GetMetadata() {
				info.Metadata[k] = v
			}
		}
	}
	st := status.New(up.st.Code(), up.st.Message())
	if withInfo, err := st.WithDetails(info); err == nil {
		st = withInfo
	}
	return st.Err()
}

// toStatus is a gateway error as a gRPC status with ErrorInfo (reason: the
// error frame's code, upper-cased; metadata: the field).
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	var he *hub.Error
	var unavail *lazy.UnavailableError
	var up *upstreamError
	switch {
	case errors.As(err, &up):
		return upstreamStatus(up)
	case errors.As(err, &he):
	case errors.As(err, &unavail):
		he = &hub.Error{Code: hub.CodeUnavailable, Message: err.Error()}
	default:
		if _, ok := status.FromError(err); ok {
			return err
		}
		he = &hub.Error{Code: hub.CodeInternal, Message: err.Error()}
	}
	code, ok := codeOf[he.Code]
	if !ok {
		code = codes.Internal
	}
	st := status.New(code, he.Message)
	info := &errdetails.ErrorInfo{Domain: errorDomain, Reason: upper(he.Code), Metadata: map[string]string{}}
	if he.Field != "" {
		info.Metadata["field"] = he.Field
	}
	if withInfo, err := st.WithDetails(info); err == nil {
		st = withInfo
	}
	return st.Err()
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
