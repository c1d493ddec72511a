package grpcserver

import "context"

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
