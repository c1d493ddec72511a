package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"google.golang.org/grpc"
)

// sharedStream carries the calls of the whole process to one method of
// another service on one bidirectional stream instead of a unary call
// each: the calls in flight share the stream (gRPC coalesces their frames,
// and the callee batches what it can, as matching's group commit does),
// and each waits for its own answer, matched by an id. A broken stream
// fails the calls in flight with its error and the next call opens a new
// one. The per-call deadline is kept by the waiter here: a stream has no
// per-message deadline for the callee to see. A stream left without calls
// for idle is closed, so that it does not keep the callee's connection
// busy for nothing.
type sharedStream[Req, Resp any] struct {
	open func(ctx context.Context) (grpc.BidiStreamingClient[Req, Resp], error)
	id   func(*Resp) uint64
	idle time.Duration

	mu  sync.Mutex
	cur *openStream[Req, Resp]
}

type openStream[Req, Resp any] struct {
	cancel context.CancelFunc
	stream grpc.BidiStreamingClient[Req, Resp]
	id     func(*Resp) uint64
	sendMu sync.Mutex // one Send at a time (gRPC streams require it)

	mu       sync.Mutex
	waiters  map[uint64]chan streamAnswer[Resp]
	broken   error
	lastUsed time.Time
}

type streamAnswer[Resp any] struct {
	resp *Resp
	err  error
}

var errIdle = errors.New("stream closed after being idle")

// errNotSent wraps the failure of a call that never left this process.
type errNotSent struct{ err error }

func (e *errNotSent) Error() string { return e.err.Error() }
func (e *errNotSent) Unwrap() error { return e.err }

// errTimeout is a call whose answer did not come before its deadline.
type errTimeout struct{ err error }

func (e *errTimeout) Error() string { return e.err.Error() }
func (e *errTimeout) Unwrap() error { return e.err }

// stream returns the current stream, opening one if there is none.
func (s *sharedStream[Req, Resp]) stream() (*openStream[Req, Resp], error) {
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
	st, err := s.open(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	o := &openStream[Req, Resp]{cancel: cancel, stream: st, id: s.id, waiters: map[uint64]chan streamAnswer[Resp]{}, lastUsed: time.Now()}
	s.cur = o
	go o.receive()
	if s.idle > 0 {
		go o.closeWhenIdle(s.idle)
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
			ch <- streamAnswer[Resp]{resp: resp}
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
			o.broken = errIdle
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
	o.waiters = map[uint64]chan streamAnswer[Resp]{}
	o.mu.Unlock()
	for _, ch := range waiters {
		ch <- streamAnswer[Resp]{err: err}
	}
	o.cancel()
}

// call sends req (whose answer will carry id) and waits for its answer.
// Errors: *errNotSent when req never left (no stream could be had),
// *errTimeout when ctx ended first, else the stream's own error.
func (s *sharedStream[Req, Resp]) call(ctx context.Context, id uint64, req *Req) (*Resp, error) {
	ch := make(chan streamAnswer[Resp], 1)
	var o *openStream[Req, Resp]
	for attempt := 0; ; attempt++ {
		var err error
		if o, err = s.stream(); err != nil {
			return nil, &errNotSent{err}
		}
		o.mu.Lock()
		if broken := o.broken; broken != nil {
			// It broke (or idled out) since stream() looked: nothing was
			// sent, so another stream may be tried.
			o.mu.Unlock()
			if attempt == 2 {
				return nil, &errNotSent{broken}
			}
			continue
		}
		o.waiters[id] = ch
		o.lastUsed = time.Now()
		o.mu.Unlock()
		break
	}
	var err error
	o.sendMu.Lock()
	err = o.stream.Send(req)
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
		return nil, &errTimeout{ctx.Err()}
	}
}

// close ends the current stream.
func (s *sharedStream[Req, Resp]) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		s.cur.cancel()
		s.cur = nil
	}
}
