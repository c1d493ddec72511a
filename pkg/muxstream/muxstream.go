// Package muxstream carries many calls of one process to one method of
// another service on one shared bidirectional gRPC stream, each call
// waiting for its own answer, matched by an id.
package muxstream

import (
	"context"
	"errors"
	"sync"
	"time"

	"google.golang.org/grpc"
)

// Shared is one bidirectional stream shared by the calls in flight instead
// of a unary call each: gRPC coalesces their frames, and the callee batches
// what it can (as matching's group commit does). Each call waits for its
// own answer, matched by an id the request carries and the answer echoes.
// A broken stream fails the calls in flight with its error and the next
// call opens a new one. The per-call deadline is kept by the waiter here:
// a stream has no per-message deadline for the callee to see. A stream left
// without calls for Idle is closed, so that it does not keep the callee's
// connection (or anything else) busy for nothing.
//
// The zero value is not usable: set Open and ID. A Shared is safe for
// concurrent use.
type Shared[Req, Resp any] struct {
	// Open opens a new stream; ctx is cancelled when the stream is done.
	Open func(ctx context.Context) (grpc.BidiStreamingClient[Req, Resp], error)
	// ID is the id an answer carries: the id its request was sent with.
	ID func(*Resp) uint64
	// Idle, when above zero, closes a stream that had no call for that long.
	Idle time.Duration

	mu  sync.Mutex
	cur *openStream[Req, Resp]
}

// New is a Shared over a generated client's bidirectional method (e.g.
// riskv1.NewRiskServiceClient(conn).ValidateOrders), answers matched by id
// (e.g. (*riskv1.ValidateOrdersResponse).GetRequestId), closed after idle
// without calls (0: never).
func New[Req, Resp any](method func(context.Context, ...grpc.CallOption) (grpc.BidiStreamingClient[Req, Resp], error),
	id func(*Resp) uint64, idle time.Duration) *Shared[Req, Resp] {
	return &Shared[Req, Resp]{
		Open: func(ctx context.Context) (grpc.BidiStreamingClient[Req, Resp], error) { return method(ctx) },
		ID:   id, Idle: idle,
	}
}

type openStream[Req, Resp any] struct {
	cancel context.CancelFunc
	stream grpc.BidiStreamingClient[Req, Resp]
	id     func(*Resp) uint64
	sendMu sync.Mutex // one Send at a time (gRPC streams require it)

	mu       sync.Mutex
	waiters  map[uint64]chan answer[Resp]
	broken   error
	lastUsed time.Time
}

type answer[Resp any] struct {
	resp *Resp
	err  error
}

// ErrIdle is why a stream closed for having had no calls for Idle.
var ErrIdle = errors.New("stream closed after being idle")

// NotSentError is the failure of a call whose request never left this
// process (no stream could be opened): trying it again cannot double it.
type NotSentError struct{ Err error }

func (e *NotSentError) Error() string { return e.Err.Error() }
func (e *NotSentError) Unwrap() error { return e.Err }

// TimeoutError is a call whose answer did not come before its context
// ended: the request may or may not have been acted on.
type TimeoutError struct{ Err error }

func (e *TimeoutError) Error() string { return e.Err.Error() }
func (e *TimeoutError) Unwrap() error { return e.Err }

// stream returns the current stream, opening one if there is none.
func (s *Shared[Req, Resp]) stream() (*openStream[Req, Resp], error) {
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
	st, err := s.Open(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	o := &openStream[Req, Resp]{cancel: cancel, stream: st, id: s.ID, waiters: map[uint64]chan answer[Resp]{}, lastUsed: time.Now()}
	s.cur = o
	go o.receive()
	if s.Idle > 0 {
		go o.closeWhenIdle(s.Idle)
	}
	return o, nil
}

func (o *openStream[Req, Resp]) receive() {
	for {
		resp, err := o.stream.Recv()
		if err != nil {
			o.fail(err)
			return
		}
		id := o.id(resp)
		o.mu.Lock()
		ch := o.waiters[id]
		delete(o.waiters, id)
		o.mu.Unlock()
		if ch != nil {
			ch <- answer[Resp]{resp: resp}
		}
	}
}

// closeWhenIdle ends the stream once it has had no call for idle.
func (o *openStream[Req, Resp]) closeWhenIdle(idle time.Duration) {
	t := time.NewTicker(idle / 2)
	defer t.Stop()
	for range t.C {
		o.mu.Lock()
		if o.broken == nil && len(o.waiters) == 0 && time.Since(o.lastUsed) > idle {
			// Marked broken with nothing in flight: a call that got this
			// stream meanwhile sees it before sending and takes a new one.
			o.broken = ErrIdle
		}
		done := o.broken != nil
		o.mu.Unlock()
		if done {
			o.cancel()
			return
		}
	}
}

// fail ends the stream: every call still waiting learns that its outcome
// is unknown.
func (o *openStream[Req, Resp]) fail(err error) {
	o.mu.Lock()
	if o.broken == nil {
		o.broken = err
	}
	waiters := o.waiters
	o.waiters = map[uint64]chan answer[Resp]{}
	o.mu.Unlock()
	for _, ch := range waiters {
		ch <- answer[Resp]{err: err}
	}
	o.cancel()
}

// Call sends req, whose answer will carry id, and waits for that answer.
// id must be unique among the calls in flight. Errors: *NotSentError when
// req never left (no stream could be had), *TimeoutError when ctx ended
// first, else the stream's own error (the stream broke with req sent or
// being sent: its outcome is unknown).
func (s *Shared[Req, Resp]) Call(ctx context.Context, id uint64, req *Req) (*Resp, error) {
	ch := make(chan answer[Resp], 1)
	var o *openStream[Req, Resp]
	for attempt := 0; ; attempt++ {
		var err error
		if o, err = s.stream(); err != nil {
			return nil, &NotSentError{err}
		}
		o.mu.Lock()
		if broken := o.broken; broken != nil {
			// It broke (or idled out) since stream() looked: nothing was
			// sent, so another stream may be tried.
			o.mu.Unlock()
			if attempt == 2 {
				return nil, &NotSentError{broken}
			}
			continue
		}
		o.waiters[id] = ch
		o.lastUsed = time.Now()
		o.mu.Unlock()
		break
	}
	o.sendMu.Lock()
	err := o.stream.Send(req)
	o.sendMu.Unlock()
	if err != nil {
		o.fail(err)
	}
	select {
	case a := <-ch:
		return a.resp, a.err
	case <-ctx.Done():
		o.mu.Lock()
		delete(o.waiters, id)
		o.mu.Unlock()
		return nil, &TimeoutError{ctx.Err()}
	}
}

// Close ends the current stream (calls in flight on it fail); a later Call
// opens a new one.
func (s *Shared[Req, Resp]) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		s.cur.cancel()
		s.cur = nil
	}
}
