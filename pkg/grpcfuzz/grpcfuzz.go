// Package grpcfuzz drives a gRPC service with fuzzed requests: it finds
// every method of a service in the proto registry, decodes fuzz bytes as
// the method's request, and calls it over a real connection (unary, server,
// client and bidirectional streams alike), so each service's fuzz target is
// only its seeds and its own rules.
package grpcfuzz

import (
	"context"
	"errors"
	"io"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Method is one RPC of a service.
type Method struct {
	FullName     string // "/pkg.Service/Method"
	Name         string // "Method"
	In, Out      protoreflect.MessageType
	ClientStream bool
	ServerStream bool
}

// Methods lists the methods of sd, in declaration order.
func Methods(t testing.TB, sd protoreflect.ServiceDescriptor) []Method {
	t.Helper()
	var out []Method
	for i := 0; i < sd.Methods().Len(); i++ {
		md := sd.Methods().Get(i)
		in, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
		if err != nil {
			t.Fatal(err)
		}
		o, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Method{FullName: "/" + string(sd.FullName()) + "/" + string(md.Name()), Name: string(md.Name()),
			In: in, Out: o, ClientStream: md.IsStreamingClient(), ServerStream: md.IsStreamingServer()})
	}
	return out
}

// Seed adds a seed input for the method named name: (index, encoded req).
func Seed(f *testing.F, methods []Method, name string, req proto.Message) {
	for i, m := range methods {
		if m.Name == name {
			b, err := proto.Marshal(req)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(i), b)
			return
		}
	}
	f.Fatalf("no method %s", name)
}

// Decode picks the method for which and decodes data as its request; ok is
// false when the bytes are not a valid message (gRPC itself would refuse
// them before any handler).
func Decode(methods []Method, which uint8, data []byte) (m Method, req proto.Message, ok bool) {
	m = methods[int(which)%len(methods)]
	req = m.In.New().Interface()
	return m, req, proto.Unmarshal(data, req) == nil
}

// Call sends req to m over conn. Streams get the request (three times on a
// client stream), are closed for sending, and are read to their end or for
// at most 100 responses.
func Call(ctx context.Context, conn *grpc.ClientConn, m Method, req proto.Message) error {
	if !m.ClientStream && !m.ServerStream {
		return conn.Invoke(ctx, m.FullName, req, m.Out.New().Interface())
	}
	s, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: m.ServerStream, ClientStreams: m.ClientStream}, m.FullName)
	if err != nil {
		return err
	}
	n := 1
	if m.ClientStream {
		n = 3
	}
	for i := 0; i < n; i++ {
		if err := s.SendMsg(req); err != nil {
			break
		}
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	for i := 0; i < 100; i++ {
		if err := s.RecvMsg(m.Out.New().Interface()); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
	return nil
}

// Check fails the test when a call's outcome is a server fault rather than
// a clear answer: INTERNAL, UNKNOWN, DATA_LOSS or UNIMPLEMENTED.
func Check(t *testing.T, m Method, req proto.Message, err error) {
	t.Helper()
	switch status.Code(err) {
	case codes.Internal, codes.Unknown, codes.DataLoss, codes.Unimplemented:
		t.Fatalf("%s(%v): %v", m.FullName, req, err)
	}
}
