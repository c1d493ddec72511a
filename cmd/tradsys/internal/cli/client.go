package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tradsys/mesh/pkg/coordclient"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// dial connects to the coordinator. Several comma-separated addresses are
// tried in order (pick_first), so a CLI pointed at all replicas keeps
// working while one is down; any replica answers, followers forward.
func (e *env) dial() (coordinatorv1.CoordinatorServiceClient, func(), error) {
	creds, err := e.g.client.TLS.ClientCredentials()
	if err != nil {
		return nil, nil, err
	}
	var addrs []string
	for _, a := range strings.Split(e.g.client.Coordinator, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, nil, usagef("--coordinator: empty address")
	}
	// Several addresses are tried in order, each verified against its own
	// host name (the same dialling as every service's coordinator client).
	target, replicas := coordclient.Target(addrs)
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds), replicas}
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("coordinator %s: %w", e.g.client.Coordinator, err)
	}
	return coordinatorv1.NewCoordinatorServiceClient(conn), func() { conn.Close() }, nil
}

// call runs one unary RPC with the --timeout deadline.
func call[Req, Resp any](ctx context.Context, e *env, rpc func(coordinatorv1.CoordinatorServiceClient, context.Context, Req, ...grpc.CallOption) (Resp, error), req Req) (Resp, error) {
	var zero Resp
	client, closeConn, err := e.dial()
	if err != nil {
		return zero, err
	}
	defer closeConn()
	ctx, cancel := context.WithTimeout(ctx, e.g.timeout)
	defer cancel()
	resp, err := rpc(client, ctx, req)
	if err != nil {
		return zero, rpcError{addr: e.g.client.Coordinator, err: err}
	}
	return resp, nil
}

// callService runs one unary RPC on the domain service at addr with the
// --timeout deadline, as call does for the coordinator. rpc is the method
// as a method expression, e.g. strategyv1.StrategyServiceClient.StopStrategy.
func callService[C, Req, Resp any](ctx context.Context, e *env, addr string, newClient func(grpc.ClientConnInterface) C,
	rpc func(C, context.Context, Req, ...grpc.CallOption) (Resp, error), req Req) (Resp, error) {
	var zero Resp
	conn, err := e.dialService(addr)
	if err != nil {
		return zero, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, e.g.timeout)
	defer cancel()
	resp, err := rpc(newClient(conn), ctx, req)
	if err != nil {
		return zero, rpcError{addr: addr, err: err}
	}
	return resp, nil
}

// rpcError is a failed call to the coordinator at addr.
type rpcError struct {
	addr string
	err  error
}

func (r rpcError) Error() string { return r.err.Error() }
func (r rpcError) Unwrap() error { return r.err }

// codeNames are the canonical names of gRPC codes, as in the proto docs.
var codeNames = map[codes.Code]string{
	codes.OK: "OK", codes.Canceled: "CANCELLED", codes.Unknown: "UNKNOWN", codes.InvalidArgument: "INVALID_ARGUMENT",
	codes.DeadlineExceeded: "DEADLINE_EXCEEDED", codes.NotFound: "NOT_FOUND", codes.AlreadyExists: "ALREADY_EXISTS",
	codes.PermissionDenied: "PERMISSION_DENIED", codes.ResourceExhausted: "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION", codes.Aborted: "ABORTED", codes.OutOfRange: "OUT_OF_RANGE",
	codes.Unimplemented: "UNIMPLEMENTED", codes.Internal: "INTERNAL", codes.Unavailable: "UNAVAILABLE",
	codes.DataLoss: "DATA_LOSS", codes.Unauthenticated: "UNAUTHENTICATED",
}

// describe is the one-line text for an error: a gRPC status prints its
// message and code; an unreachable coordinator gets a hint.
func describe(err error) string {
	var re rpcError
	addr := ""
	if errors.As(err, &re) {
		addr, err = re.addr, re.err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	name := codeNames[st.Code()]
	if name == "" {
		name = st.Code().String()
	}
	msg := fmt.Sprintf("%s (%s)", st.Message(), name)
	// The hint is for a coordinator we cannot reach, not for a component the
	// coordinator could not reach (those messages start with "component").
	if addr != "" && (st.Code() == codes.Unavailable || st.Code() == codes.DeadlineExceeded) && !strings.HasPrefix(st.Message(), "component ") {
		msg += fmt.Sprintf("\nis a coordinator running at %s? (--coordinator, TRADSYS_COORDINATOR, or start one with `tradsys up`)", addr)
	}
	return msg
}
