package coordclient

import (
	"context"
	"errors"
	"sync"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// sessionStream sends requests as messages on one CoordinatorService.Session
// stream (Options.SessionStream) instead of one call each, and answers
// each caller as the unary call would: the same response, or an error
// with the same status. A broken stream fails the requests in flight with
// UNAVAILABLE (their outcome is open: the callers retry with the same
// request id, as after a lost unary answer) and the next request opens a
// new stream.
type sessionStream struct {
	api coordinatorv1.CoordinatorServiceClient

	mu      sync.Mutex
	cur     *openStream
	next    uint64
	sendMu  sync.Mutex // one Send at a time on a stream
	onStray func(*coordinatorv1.SessionResponse, *coordinatorv1.SessionRequest)
}

type openStream struct {
	stream  coordinatorv1.CoordinatorService_SessionClient
	cancel  context.CancelFunc
	waiting map[uint64]chan *coordinatorv1.SessionResponse
	// left are requests whose callers stopped waiting: their answers, when
	// they come, go to onStray (a grant nobody waits for is given back).
	left map[uint64]*coordinatorv1.SessionRequest
	err  error // set when broken
}

var errStreamBroken = status.Error(codes.Unavailable, "coordinator session stream broken; retry")

// call sends req and waits for its answer.
func (m *sessionStream) call(ctx context.Context, req *coordinatorv1.SessionRequest) (*coordinatorv1.SessionResponse, error) {
	m.mu.Lock()
	s := m.cur
	if s == nil {
		sctx, cancel := context.WithCancel(context.Background())
		st, err := m.api.Session(sctx)
		if err != nil {
			cancel()
			m.mu.Unlock()
			return nil, err
		}
		s = &openStream{stream: st, cancel: cancel, waiting: map[uint64]chan *coordinatorv1.SessionResponse{},
			left: map[uint64]*coordinatorv1.SessionRequest{}}
		m.cur = s
		go m.receive(s)
	}
	m.next++
	id := m.next
	ch := make(chan *coordinatorv1.SessionResponse, 1)
	s.waiting[id] = ch
	m.mu.Unlock()

	req.Id = id
	m.sendMu.Lock()
	err := s.stream.Send(req)
	m.sendMu.Unlock()
	if err != nil {
		m.broken(s, err)
		return nil, errStreamBroken
	}
	select {
	case resp := <-ch:
		if resp == nil {
			return nil, m.whyBroken(s)
		}
		if resp.GetCode() != 0 {
			err := status.ErrorProto(&spb.Status{Code: resp.GetCode(), Message: resp.GetMessage(), Details: resp.GetDetails()})
			if codes.Code(resp.GetCode()) == codes.Unavailable {
				// The replica behind this stream no longer leads (a stream
				// stays with the replica it was opened on): the retry goes
				// on a new stream, which reaches the leader.
				m.broken(s, err)
			}
			return nil, err
		}
		return resp, nil
	case <-ctx.Done():
		m.mu.Lock()
		_, waiting := s.waiting[id]
		if waiting {
			delete(s.waiting, id)
			if s.err == nil {
				s.left[id] = req
			}
		}
		m.mu.Unlock()
		if waiting {
			// Stop it on the coordinator, as a cancelled call would be (a
			// grant decided meanwhile is given back there); should its
			// grant come anyway, onStray gives it back.
			m.sendMu.Lock()
			_ = s.stream.Send(&coordinatorv1.SessionRequest{Request: &coordinatorv1.SessionRequest_Cancel{Cancel: id}})
			m.sendMu.Unlock()
		}
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// receive hands each answer to its caller until the stream breaks.
func (m *sessionStream) receive(s *openStream) {
	for {
		resp, err := s.stream.Recv()
		if err != nil {
			m.broken(s, err)
			return
		}
		m.mu.Lock()
		ch, ok := s.waiting[resp.GetId()]
		delete(s.waiting, resp.GetId())
		stray := s.left[resp.GetId()]
		delete(s.left, resp.GetId())
		m.mu.Unlock()
		switch {
		case ok:
			ch <- resp
		case stray != nil && m.onStray != nil:
			m.onStray(resp, stray)
		}
	}
}

// whyBroken is what a request in flight on a broken stream answers: the
// stream's own refusal when the coordinator refused the stream itself
// (PERMISSION_DENIED, UNIMPLEMENTED by an older coordinator, ...), which a
// retry would only meet again; else UNAVAILABLE, an open outcome.
func (m *sessionStream) whyBroken(s *openStream) error {
	m.mu.Lock()
	err := s.err
	m.mu.Unlock()
	switch status.Code(err) {
	case codes.OK, codes.Unavailable, codes.Canceled, codes.DeadlineExceeded, codes.Unknown, codes.Internal:
		return errStreamBroken
	}
	return err
}

// broken fails what waits on s and makes the next call open a new stream.
func (m *sessionStream) broken(s *openStream, err error) {
	if err == nil {
		err = errors.New("stream ended")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.err != nil {
		return
	}
	s.err = err
	if m.cur == s {
		m.cur = nil
	}
	for id, ch := range s.waiting {
		close(ch)
		delete(s.waiting, id)
	}
	s.left = nil
	s.cancel()
}

// close ends the current stream.
func (m *sessionStream) close() {
	m.mu.Lock()
	s := m.cur
	m.mu.Unlock()
	if s != nil {
		m.broken(s, errors.New("client closed"))
	}
}
