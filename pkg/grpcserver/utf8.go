package grpcserver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the "proto" codec wrapped below
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Invalid UTF-8 in a request's string field is bad input and must answer
// INVALID_ARGUMENT naming the field. grpc-go cannot do that by itself: it
// maps every error of the codec's Unmarshal to INTERNAL (rpc_util.go,
// "failed to unmarshal the received message"), before any interceptor runs,
// and protobuf-go always checks UTF-8 for proto3 strings (no option turns it
// off so that the validator could look at the field instead).
//
// So every server built here decodes with utf8Codec (grpc.ForceServerCodecV2:
// this server only; clients and other servers in the process keep grpc's
// codec). On a UTF-8 error, and only then, it records the error against the
// message being decoded and returns nil; utf8Interceptor, in every server's
// chain, takes the record back and answers INVALID_ARGUMENT. Every other
// decoding error is returned as before (grpc's INTERNAL).
//
// Why nothing is left in badUTF8: the codec is installed only together with
// the chain. A unary request is decoded by the generated handler immediately
// before it calls the chain with that message (same goroutine, nothing in
// between can fail), and the first thing the chain does with it is
// LoadAndDelete. A stream's messages are decoded inside RecvMsg, and every
// RecvMsg a handler or an inner interceptor can call goes through the
// wrapper the chain installs, which deletes the record whatever RecvMsg
// returns (grpc's RecvMsg may decode a message and still fail, e.g. a second
// request message on a server-streaming call). TestInvalidUTF8IsInvalidArgumentNamingTheField checks
// that the map is empty after such calls.
var badUTF8 sync.Map // message (a pointer) -> the field path, e.g. "config.name"

type utf8Codec struct{ encoding.CodecV2 }

func newUTF8Codec() utf8Codec { return utf8Codec{encoding.GetCodecV2("proto")} }

func (c utf8Codec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.CodecV2.Unmarshal(data, v)
	if err == nil || !isInvalidUTF8(err) {
		return err
	}
	field := "request"
	if m, ok := v.(proto.Message); ok {
		if f := invalidUTF8Field(m.ProtoReflect().Descriptor(), data.Materialize(), 0); f != "" {
			field = f
		}
	}
	badUTF8.Store(v, field)
	return nil
}

// isInvalidUTF8: protobuf-go's fast path says so with an InvalidUTF8()
// method, its reflective path only in the text ("field X contains invalid
// UTF-8"); neither names the field reliably, so invalidUTF8Field finds it.
func isInvalidUTF8(err error) bool {
	var u interface{ InvalidUTF8() bool }
	if errors.As(err, &u) && u.InvalidUTF8() {
		return true
	}
	return errors.Is(err, proto.Error) && strings.Contains(err.Error(), "contains invalid UTF-8")
}

// invalidUTF8Field walks the wire bytes of a message of type md and returns
// the path of the first string field that is not UTF-8 ("" if none): field
// names joined by dots through nested messages, as the validators name
// fields. Only called on a request that already failed to decode for this
// reason, so it runs on bad input only; depth is bounded as protobuf's is.
func invalidUTF8Field(md protoreflect.MessageDescriptor, b []byte, depth int) string {
	if depth > protowire.DefaultRecursionLimit {
		return ""
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		fd := md.Fields().ByNumber(num)
		if typ != protowire.BytesType || fd == nil {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return ""
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		switch {
		case fd.Kind() == protoreflect.StringKind && !utf8.Valid(v):
			return string(fd.Name())
		case fd.Message() != nil:
			if inner := invalidUTF8Field(fd.Message(), v, depth+1); inner != "" {
				return string(fd.Name()) + "." + inner
			}
		}
	}
	return ""
}

// takeInvalidUTF8 removes the record for msg and returns it as the status
// the caller sees, or nil.
func takeInvalidUTF8(msg any) error {
	v, ok := badUTF8.LoadAndDelete(msg)
	if !ok {
		return nil
	}
	field := v.(string)
	st := status.New(codes.InvalidArgument, fmt.Sprintf("invalid %s: not valid UTF-8 (protobuf strings must be UTF-8)", field))
	if d, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
		{Field: field, Description: "not valid UTF-8", Reason: "INVALID_UTF8"}}}); err == nil {
		st = d
	}
	return st.Err()
}

func utf8Unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := takeInvalidUTF8(req); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func utf8Stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	return h(srv, utf8ServerStream{ss})
}

type utf8ServerStream struct{ grpc.ServerStream }

func (s utf8ServerStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if bad := takeInvalidUTF8(m); bad != nil && err == nil {
		return bad
	}
	return err
}
