package server

import (
	"context"
	"errors"
	"sync"

	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	"github.com/tradsys/mesh/services/orders/oms"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// submitStream carries every submit of the process on one SubmitOrders
// stream to matching instead of one unary call each: the submits in flight
// share the stream (and matching's group commit), and each waits for its
// own answer, matched by order id. A broken stream fails the submits in
// flight as ambiguous (the reconciler settles them) and the next submit
// opens a new one. The per-order deadline is kept by the waiter here: a
// stream has no per-message deadline for matching to see.
type submitStream struct {
	conn *grpc.ClientConn
	mu   sync.Mutex
	cur  *openStream
}

type openStream struct {
	cancel context.CancelFunc
	stream grpc.BidiStreamingClient[matchingv1.SubmitOrdersRequest, matchingv1.SubmitOrdersResponse]
	sendMu sync.Mutex // one Send at a time (gRPC streams require it)

	mu      sync.Mutex
	waiters map[uint64]chan streamAnswer
	broken  error
}

type streamAnswer struct {
	resp *matchingv1.SubmitOrdersResponse
	err  error
}

// open returns the current stream, opening one if there is none.
func (s *submitStream) open() (*openStream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		s.cur.mu.Lock()
		broken := s.cur.broken
		s.cur.mu.Unlock()
		if broken == nil {
			return s.cur, nil
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := matchingv1.NewMatchingServiceClient(s.conn).SubmitOrders(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	o := &openStream{cancel: cancel, stream: st, waiters: map[uint64]chan streamAnswer{}}
	s.cur = o
	go o.receive()
	return o, nil
}

func (o *openStream) receive() {
	for {
		resp, err := o.stream.Recv()
		if err != nil {
			o.fail(err)
			return
		}
		o.mu.Lock()
		ch := o.waiters[resp.GetOrderId()]
		delete(o.waiters, resp.GetOrderId())
		o.mu.Unlock()
		if ch != nil {
			ch <- streamAnswer{resp: resp}
		}
	}
}

// fail ends the stream: every submit still waiting learns that its
// outcome is unknown.
func (o *openStream) fail(err error) {
	o.mu.Lock()
	if o.broken == nil {
		o.broken = err
	}
	waiters := o.waiters
	o.waiters = map[uint64]chan streamAnswer{}
	o.mu.Unlock()
	for _, ch := range waiters {
		ch <- streamAnswer{err: err}
	}
	o.cancel()
}

// submit sends one order and waits for its answer.
func (s *submitStream) submit(ctx context.Context, r *matchingv1.SubmitOrderRequest) (*matchingv1.Execution, error) {
	o, err := s.open()
	if err != nil {
		return nil, errors.Join(oms.ErrNotSent, err)
	}
	ch := make(chan streamAnswer, 1)
	o.mu.Lock()
	if o.broken != nil {
		o.mu.Unlock()
		return nil, errors.Join(oms.ErrNotSent, o.broken)
	}
	o.waiters[r.GetOrderId()] = ch
	o.mu.Unlock()
	o.sendMu.Lock()
	err = o.stream.Send(&matchingv1.SubmitOrdersRequest{Order: r})
	o.sendMu.Unlock()
	if err != nil {
		o.fail(err)
	}
	select {
	case a := <-ch:
		if a.err != nil {
			return nil, matchingError(a.err, false)
		}
		if rej := a.resp.GetRejection(); rej != nil {
			return nil, matchingError(status.Error(codes.Code(rej.GetCode()), rej.GetMessage()), false)
		}
		return a.resp.GetExecution(), nil
	case <-ctx.Done():
		o.mu.Lock()
		delete(o.waiters, r.GetOrderId())
		o.mu.Unlock()
		return nil, errors.New("matching did not answer in time: " + ctx.Err().Error())
	}
}

// close ends the current stream.
func (s *submitStream) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		s.cur.cancel()
		s.cur = nil
	}
}
