package grpcserver

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// rawCodec sends the bytes it is given as the message, unchanged: the test
// writes the wire bytes itself, as a client that is not a protobuf library
// (or a hostile one) would.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }

// Issue 9, item 12: invalid UTF-8 in a request's string field answers
// INVALID_ARGUMENT naming the field (grpc alone says INTERNAL), for unary
// calls and every message of a stream, and leaves nothing behind.
func TestInvalidUTF8IsInvalidArgumentNamingTheField(t *testing.T) {
	srv, err := New(Options{Name: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	srv.SetServing(true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go srv.Serve(ctx)
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	// grpc.health.v1.HealthCheckRequest{service: "\xff\xfe"}: field 1, length 2.
	bad := []byte{0x0a, 0x02, 0xff, 0xfe}
	const field = "service"
	wantInvalid := func(what string, err error) {
		t.Helper()
		st := status.Convert(err)
		if st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "invalid "+field+":") || !strings.Contains(st.Message(), "UTF-8") {
			t.Fatalf("%s: %v, want INVALID_ARGUMENT naming %s and UTF-8", what, err, field)
		}
		for _, d := range st.Details() {
			if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) == 1 && br.GetFieldViolations()[0].GetField() == field {
				return
			}
		}
		t.Fatalf("%s: no BadRequest detail naming %s: %v", what, field, st.Details())
	}

	var out []byte
	err = conn.Invoke(ctx, "/grpc.health.v1.Health/Check", &bad, &out)
	wantInvalid("unary Check", err)

	// A server-streaming call: its request is received by RecvMsg.
	s, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/grpc.health.v1.Health/Watch")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SendMsg(&bad); err != nil {
		t.Fatal(err)
	}
	_ = s.CloseSend()
	wantInvalid("stream Watch", s.RecvMsg(&out))

	// Two bad request messages on a call that takes one: grpc decodes both
	// and fails the call; the record is dropped all the same.
	s, err = conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, "/grpc.health.v1.Health/Watch")
	if err != nil {
		t.Fatal(err)
	}
	_ = s.SendMsg(&bad)
	_ = s.SendMsg(&bad)
	_ = s.CloseSend()
	if err := s.RecvMsg(&out); status.Code(err) == codes.OK {
		t.Fatalf("two requests on a server-streaming call: %v", err)
	}

	// Valid UTF-8 (and an empty name) still works; other decoding errors
	// are not taken for UTF-8 ones.
	good := []byte{}
	if err := conn.Invoke(ctx, "/grpc.health.v1.Health/Check", &good, &out); err != nil {
		t.Fatalf("a valid request: %v", err)
	}
	garbage := []byte{0x0a, 0x05, 'a'} // a length past the end
	if err := conn.Invoke(ctx, "/grpc.health.v1.Health/Check", &garbage, &out); status.Code(err) == codes.InvalidArgument || err == nil {
		t.Fatalf("truncated message: %v, want grpc's own decoding error", err)
	}

	n := 0
	badUTF8.Range(func(any, any) bool { n++; return true })
	if n != 0 {
		t.Fatalf("%d UTF-8 records left behind", n)
	}
}

// The field is named by its path through nested messages (here a map
// entry's value of a google.protobuf.Struct).
func TestInvalidUTF8FieldPath(t *testing.T) {
	value := protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), []byte("ok\xff")) // Value.string_value
	entry := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte("k"))      // key
	entry = protowire.AppendBytes(protowire.AppendTag(entry, 2, protowire.BytesType), value)
	wire := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), entry) // Struct.fields
	if err := proto.Unmarshal(wire, &structpb.Struct{}); !isInvalidUTF8(err) {
		t.Fatalf("decoding: %v, want a UTF-8 error", err)
	}
	if got := invalidUTF8Field((&structpb.Struct{}).ProtoReflect().Descriptor(), wire, 0); got != "fields.value.string_value" {
		t.Fatalf("path %q", got)
	}
}
