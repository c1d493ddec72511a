package server

import (
	"context"
	"errors"
	"io"
	"sync"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// MaxSessionStreamInFlight bounds the requests one Session stream has
// being served at once; past it the stream reads no more until one is
// answered (flow control pushes back on the client).
const MaxSessionStreamInFlight = 1024

// Session serves a session's acquires, releases and keep-alives on one
// stream. Each request goes through the unary call's handler (checked by
// its Validate, mapped through the same error table), concurrently, and
// its answer carries its id; a refusal answers only that request.
func (s *Service) Session(stream coordinatorv1.CoordinatorService_SessionServer) error {
	ctx := stream.Context()
	var (
		sendMu  sync.Mutex
		wg      sync.WaitGroup
		sendErr error
	)
	slots := make(chan struct{}, MaxSessionStreamInFlight)
	var (
		cmu     sync.Mutex
		cancels = map[uint64]context.CancelFunc{} // requests being served, by id
	)
	defer wg.Wait() // every request read is answered before the stream ends
	send := func(resp *coordinatorv1.SessionResponse) {
		sendMu.Lock()
		if sendErr == nil {
			sendErr = stream.Send(resp)
		}
		sendMu.Unlock()
	}
	for {
		req := new(coordinatorv1.SessionRequest)
		err := stream.RecvMsg(req)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if status.Code(err) == codes.InvalidArgument {
			// The message was read, but a string in it is not UTF-8 (the
			// server's codec refuses it, naming the field): refuse that
			// request alone, as its unary call would be refused.
			st := status.Convert(err).Proto()
			send(&coordinatorv1.SessionResponse{Id: req.GetId(), Code: st.GetCode(), Message: st.GetMessage(), Details: st.GetDetails()})
			continue
		}
		if err != nil {
			return err
		}
		if c, ok := req.GetRequest().(*coordinatorv1.SessionRequest_Cancel); ok {
			cmu.Lock()
			if cancel := cancels[c.Cancel]; cancel != nil {
				cancel()
			}
			cmu.Unlock()
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		// Each request has its own context, so a cancel ends it as the
		// end of a unary call's context would.
		rctx, cancel := context.WithCancel(ctx)
		cmu.Lock()
		cancels[req.GetId()] = cancel
		cmu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp := s.sessionRequest(rctx, req)
			cmu.Lock()
			delete(cancels, req.GetId())
			cmu.Unlock()
			cancel()
			send(resp)
			<-slots
		}()
	}
}

// validator is what the validator interceptor calls on unary requests.
type validator interface{ Validate() error }

// sessionRequest serves one request of a Session stream.
func (s *Service) sessionRequest(ctx context.Context, req *coordinatorv1.SessionRequest) *coordinatorv1.SessionResponse {
	resp := &coordinatorv1.SessionResponse{Id: req.GetId()}
	var err error
	switch r := req.GetRequest().(type) {
	case *coordinatorv1.SessionRequest_AcquireMemory:
		err = serveOne(ctx, r.AcquireMemory, s.AcquireMemory, func(out *coordinatorv1.AcquireMemoryResponse) {
			resp.Response = &coordinatorv1.SessionResponse_AcquireMemory{AcquireMemory: out}
		})
	case *coordinatorv1.SessionRequest_ReleaseMemory:
		err = serveOne(ctx, r.ReleaseMemory, s.ReleaseMemory, func(out *coordinatorv1.ReleaseMemoryResponse) {
			resp.Response = &coordinatorv1.SessionResponse_ReleaseMemory{ReleaseMemory: out}
		})
	case *coordinatorv1.SessionRequest_AcquireLock:
		err = serveOne(ctx, r.AcquireLock, s.AcquireLock, func(out *coordinatorv1.AcquireLockResponse) {
			resp.Response = &coordinatorv1.SessionResponse_AcquireLock{AcquireLock: out}
		})
	case *coordinatorv1.SessionRequest_ReleaseLock:
		err = serveOne(ctx, r.ReleaseLock, s.ReleaseLock, func(out *coordinatorv1.ReleaseLockResponse) {
			resp.Response = &coordinatorv1.SessionResponse_ReleaseLock{ReleaseLock: out}
		})
	case *coordinatorv1.SessionRequest_KeepAlive:
		err = serveOne(ctx, r.KeepAlive, s.KeepAlive, func(out *coordinatorv1.KeepAliveResponse) {
			resp.Response = &coordinatorv1.SessionResponse_KeepAlive{KeepAlive: out}
		})
	default:
		err = status.Error(codes.InvalidArgument, "invalid request: must be one of acquire_memory, release_memory, acquire_lock, release_lock, keep_alive, cancel")
	}
	if err != nil {
		st := status.Convert(err).Proto()
		resp.Code, resp.Message, resp.Details = st.GetCode(), st.GetMessage(), st.GetDetails()
	}
	return resp
}

// serveOne is one stream request as its unary call: the request's rules
// (the validator interceptor sees a stream's messages only as a whole),
// then the call; set puts a successful answer into the response.
func serveOne[Req validator, Resp any](ctx context.Context, req Req, call func(context.Context, Req) (Resp, error), set func(Resp)) error {
	if err := req.Validate(); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	out, err := call(ctx, req)
	if err == nil {
		set(out)
	}
	return err
}
