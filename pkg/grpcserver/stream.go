package grpcserver

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"
)

// ReceiveAll reads a stream's requests on a goroutine of its own, so that
// the handler can select on them together with its service's stop signal:
// a client may keep a stream open for as long as it lives, and a handler
// blocked in Recv would hold up the shutdown. reqs is never closed; done
// gets the error that ended the reading (io.EOF when the client closed
// its side, ctx's error when the handler stopped taking requests).
func ReceiveAll[T any](ctx context.Context, recv func() (T, error)) (reqs <-chan T, done <-chan error) {
	out, end := make(chan T), make(chan error, 1)
	go func() {
		for {
			req, err := recv()
			if err != nil {
				end <- err
				return
			}
			select {
			case out <- req:
			case <-ctx.Done():
				end <- ctx.Err()
				return
			}
		}
	}()
	return out, end
}

// ServeEach answers every request of a bidirectional stream with handle,
// each on a goroutine of its own and sent as soon as it is ready: the
// requests of one stream are independent (their answers carry their ids),
// so a slow one (a dormant component activating, a fetch) holds up only
// itself, not the requests behind it. At most maxInFlight are handled at
// once; past that the stream is not read, so gRPC's flow control holds a
// faster client back instead of this process's memory growing. When the
// client closes its side, what is in flight is answered before the stream
// ends; when stopping is closed (the service stops) it ends at once with
// stopErr. A panic in handle becomes that request's answer (onPanic): the
// recovery interceptor covers only the handler's own goroutine.
func ServeEach[Req, Resp any](stream grpc.BidiStreamingServer[Req, Resp], maxInFlight int, stopping <-chan struct{}, stopErr error,
	handle func(ctx context.Context, req *Req) *Resp, onPanic func(req *Req, p any) *Resp) error {
	ctx := stream.Context()
	reqs, recvDone := ReceiveAll(ctx, stream.Recv)
	// Room for every answer in flight: a handler that is done never waits
	// on this loop, which may have returned.
	answers := make(chan *Resp, maxInFlight)
	inFlight := 0
	for recvDone != nil || inFlight > 0 {
		take := reqs
		if inFlight == maxInFlight {
			take = nil
		}
		select {
		case req := <-take:
			inFlight++
			go func() {
				defer func() {
					if p := recover(); p != nil {
						answers <- onPanic(req, p)
					}
				}()
				answers <- handle(ctx, req)
			}()
		case resp := <-answers:
			inFlight--
			if err := stream.Send(resp); err != nil {
				return err
			}
		case err := <-recvDone:
			if !errors.Is(err, io.EOF) {
				return err
			}
			reqs, recvDone = nil, nil // the client is done sending: answer what is in flight
		case <-stopping:
			return stopErr
		}
	}
	return nil
}
