package server

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coord"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// forwardedKey marks a call a follower forwarded, so it is never forwarded
// twice (two replicas that disagree on the leader would bounce it forever).
const forwardedKey = "x-tradsys-forwarded"

var servicePrefix = "/" + coordinatorv1.CoordinatorService_ServiceDesc.ServiceName + "/"

// servedByAnyReplica are the calls a follower answers itself, from etcd:
// renewing a session must not wait for a leader, or every session shorter
// than a failover would die in one.
var servedByAnyReplica = map[string]bool{
	coordinatorv1.CoordinatorService_KeepAlive_FullMethodName: true,
}

// Forwarder sends CoordinatorService calls that reach a follower to the
// leader, over one cached connection per leader address. Only the leader
// holds the queues and the in-memory view, so only it may answer.
type Forwarder struct {
	c     *coord.Coordinator
	creds credentials.TransportCredentials

	mu   sync.Mutex
	addr string
	conn *grpc.ClientConn
}

// NewForwarder returns the forwarding interceptors' owner.
func NewForwarder(c *coord.Coordinator, creds credentials.TransportCredentials) *Forwarder {
	return &Forwarder{c: c, creds: creds}
}

// Close closes the cached connection.
func (f *Forwarder) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn != nil {
		f.conn.Close()
		f.conn = nil
	}
}

// target returns a connection to the leader, or nil if this replica should
// serve the call itself.
func (f *Forwarder) target(ctx context.Context, method string) (*grpc.ClientConn, error) {
	if !strings.HasPrefix(method, servicePrefix) || f.c.IsLeader() || servedByAnyReplica[method] {
		return nil, nil
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get(forwardedKey)) > 0 {
		return nil, status.Error(codes.Unavailable, "coordinator leadership is changing; retry")
	}
	addr := f.c.Leader()
	if addr == "" || addr == f.c.Advertise() {
		return nil, status.Error(codes.Unavailable, "no coordinator leader ready yet; retry")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn != nil && f.addr == addr {
		return f.conn, nil
	}
	if f.conn != nil {
		f.conn.Close()
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(f.creds))
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "dial coordinator leader %s: %v", addr, err)
	}
	f.addr, f.conn = addr, conn
	return conn, nil
}

// methodTypes finds a method's request and response types in the proto
// registry, so one forwarding path serves every method.
func methodTypes(method string) (in, out protoreflect.MessageType, err error) {
	svc, name, _ := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
	if err != nil {
		return nil, nil, err
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, nil, status.Errorf(codes.Internal, "%s is not a service", svc)
	}
	md := sd.Methods().ByName(protoreflect.Name(name))
	if md == nil {
		return nil, nil, status.Errorf(codes.Unimplemented, "unknown method %s", method)
	}
	if in, err = protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName()); err != nil {
		return nil, nil, err
	}
	out, err = protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	return in, out, err
}

func forwardCtx(ctx context.Context) context.Context {
	kv := []string{forwardedKey, "1"}
	if caller := coord.Caller(ctx); caller != "" {
		kv = append(kv, callerKey, caller)
	}
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

// Unary forwards unary calls.
func (f *Forwarder) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	conn, err := f.target(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	if conn == nil { // this replica leads: serve here
		return h(ctx, req)
	}
	_, mt, err := methodTypes(info.FullMethod)
	if err != nil {
		return nil, err
	}
	out := mt.New().Interface()
	if err := conn.Invoke(forwardCtx(ctx), info.FullMethod, req, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Stream forwards streaming calls: server-streaming (Watch) and
// bidirectional (Session).
func (f *Forwarder) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	conn, err := f.target(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	if conn == nil { // this replica leads: serve here
		return h(srv, ss)
	}
	inType, mt, err := methodTypes(info.FullMethod)
	if err != nil {
		return err
	}
	if info.IsClientStream {
		return proxyBidi(ss, conn, info.FullMethod, inType, mt)
	}
	in := inType.New().Interface()
	if err := ss.RecvMsg(in); err != nil {
		return err
	}
	cs, err := conn.NewStream(forwardCtx(ss.Context()), &grpc.StreamDesc{ServerStreams: true}, info.FullMethod)
	if err != nil {
		return err
	}
	if err := cs.SendMsg(in); err != nil {
		return err
	}
	if err := cs.CloseSend(); err != nil {
		return err
	}
	for {
		out := mt.New().Interface()
		if err := cs.RecvMsg(out); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := ss.SendMsg(out.(proto.Message)); err != nil {
			return err
		}
	}
}

// proxyBidi relays a bidirectional stream to the leader, both ways, until
// either side ends it.
func proxyBidi(ss grpc.ServerStream, conn *grpc.ClientConn, method string, inType, outType protoreflect.MessageType) error {
	ctx, cancel := context.WithCancel(forwardCtx(ss.Context()))
	defer cancel()
	cs, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method)
	if err != nil {
		return err
	}
	var sendMu sync.Mutex // ss.SendMsg from both goroutines
	go func() {
		for {
			in := inType.New().Interface()
			err := ss.RecvMsg(in)
			if req, ok := in.(*coordinatorv1.SessionRequest); ok && status.Code(err) == codes.InvalidArgument {
				// A Session request with a string that is not UTF-8: refused
				// here, alone, as the leader would (it cannot be re-encoded).
				st := status.Convert(err).Proto()
				sendMu.Lock()
				err = ss.SendMsg(&coordinatorv1.SessionResponse{Id: req.GetId(), Code: st.GetCode(), Message: st.GetMessage(), Details: st.GetDetails()})
				sendMu.Unlock()
				if err != nil {
					cancel()
					return
				}
				continue
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					_ = cs.CloseSend()
				} else {
					cancel()
				}
				return
			}
			if err := cs.SendMsg(in); err != nil {
				return // the leader's side ended: RecvMsg below says why
			}
		}
	}()
	for {
		out := outType.New().Interface()
		if err := cs.RecvMsg(out); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		sendMu.Lock()
		err := ss.SendMsg(out.(proto.Message))
		sendMu.Unlock()
		if err != nil {
			return err
		}
	}
}
