package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tradsys/mesh/pkg/grpcserver"
	"github.com/tradsys/mesh/pkg/lazy"
	"github.com/tradsys/mesh/pkg/locks"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	"github.com/tradsys/mesh/services/matching/engine"
	"github.com/tradsys/mesh/services/matching/matching"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Server implements tradsys.matching.v1.MatchingService.
type Server struct {
	matchingv1.UnimplementedMatchingServiceServer
	m        *matching.Matcher
	main     *lazy.Component
	algos    map[string]*lazy.Component // by canonical name
	locker   locks.Locker
	lockWait time.Duration
	done     <-chan struct{} // the service is stopping
	log      *zap.Logger

	// Passive trade streams read without entering the engine: closeMu
	// keeps their reads and the engine's close apart, and followers lets
	// the unload wait until each has read its symbol's last trade.
	closeMu   sync.RWMutex
	followers sync.Map // *follower -> struct{}
}

// follower is one passive trade stream's progress.
type follower struct {
	symbol string
	next   atomic.Uint64 // the next sequence it will read; 0 until known
}

// Matcher is the domain behind the server (tests use it).
func (s *Server) Matcher() *matching.Matcher { return s.m }

// algorithm returns the plugin component for an algorithm name.
func (s *Server) algorithm(name string) (string, *lazy.Component, error) {
	canon, err := matching.CanonicalAlgorithm(name)
	if err != nil {
		return "", nil, err
	}
	c := s.algos[canon]
	if c == nil {
		return "", nil, &matching.AlgorithmError{Name: name}
	}
	return canon, c, nil
}

// enterAlgorithm makes sure the algorithm symbol uses is loaded (leased)
// and counts the call in flight on it, so it is not unloaded under the call.
func (s *Server) enterAlgorithm(ctx context.Context, symbol string) (func(), error) {
	_, c, err := s.algorithm(s.m.AlgorithmOf(symbol))
	if err != nil {
		return nil, err
	}
	return c.Enter(ctx)
}

func toOrder(r *matchingv1.SubmitOrderRequest) engine.Order {
	return engine.Order{ID: r.GetOrderId(), Account: r.GetAccount(), Side: engine.Side(r.GetSide()),
		Type: engine.OrderType(r.GetType()), Price: r.GetPrice(), Qty: r.GetQuantity()}
}

func tradePB(t *engine.Trade) *matchingv1.Trade {
	out := &matchingv1.Trade{Symbol: t.Symbol, Sequence: t.Seq, Price: t.Price, Quantity: t.Qty, TakerOrderId: t.TakerID,
		MakerOrderId: t.MakerID, TakerAccount: t.TakerAccount, MakerAccount: t.MakerAccount,
		TakerSide: matchingv1.Side(t.TakerSide), MakerRemainingQuantity: t.MakerLeft}
	if t.Time != 0 {
		out.ExecutedAt = timestamppb.New(time.Unix(0, t.Time))
	}
	return out
}

func executionPB(x *matching.Execution) *matchingv1.Execution {
	r := x.Result
	st := matchingv1.OrderStatus_ORDER_STATUS_NEW
	switch {
	case r.Resting == 0 && r.Cancelled == 0 && r.Filled > 0:
		st = matchingv1.OrderStatus_ORDER_STATUS_FILLED
	case r.Resting == 0:
		st = matchingv1.OrderStatus_ORDER_STATUS_CANCELLED
	case r.Filled > 0:
		st = matchingv1.OrderStatus_ORDER_STATUS_PARTIALLY_FILLED
	}
	out := &matchingv1.Execution{OrderId: x.OrderID, Status: st, FilledQuantity: r.Filled, RestingQuantity: r.Resting,
		CancelledQuantity: r.Cancelled}
	for i := range x.Trades {
		out.Trades = append(out.Trades, tradePB(&x.Trades[i]))
	}
	for _, c := range x.Cancels {
		out.Cancellations = append(out.Cancellations, &matchingv1.Cancellation{OrderId: c.OrderID, Account: c.Account,
			Side: matchingv1.Side(c.Side), Price: c.Price, Quantity: c.Qty, Reason: matchingv1.CancelReason(c.Reason)})
	}
	return out
}

// submit applies an order and returns it pending durability.
func (s *Server) submit(ctx context.Context, r *matchingv1.SubmitOrderRequest) (*matching.Pending, error) {
	exit, err := s.enterAlgorithm(ctx, r.GetSymbol())
	if err != nil {
		return nil, err
	}
	defer exit()
	o := toOrder(r)
	if refusal := s.main.MemoryRefusal(); refusal != nil && o.Type == engine.Limit {
		// Only orders that may rest add to the books; the rest still trade.
		return nil, fmt.Errorf("new resting orders refused: %w", refusal)
	}
	return s.m.Submit(r.GetSymbol(), o)
}

func (s *Server) SubmitOrder(ctx context.Context, r *matchingv1.SubmitOrderRequest) (*matchingv1.SubmitOrderResponse, error) {
	p, err := s.submit(ctx, r)
	if err == nil {
		err = p.Wait()
	}
	if err != nil {
		return nil, togRPCError(err)
	}
	return &matchingv1.SubmitOrderResponse{Execution: executionPB(&p.Execution)}, nil
}

func (s *Server) CancelOrder(ctx context.Context, r *matchingv1.CancelOrderRequest) (*matchingv1.CancelOrderResponse, error) {
	p, err := s.m.Cancel(r.GetSymbol(), r.GetOrderId())
	if err == nil {
		err = p.Wait()
	}
	if err != nil {
		return nil, togRPCError(err)
	}
	out := &matchingv1.CancelOrderResponse{OrderId: r.GetOrderId()}
	for _, c := range p.Cancels {
		if c.OrderID == r.GetOrderId() {
			out.CancelledQuantity += c.Qty
		}
	}
	return out, nil
}

func (s *Server) ReplaceOrder(ctx context.Context, r *matchingv1.ReplaceOrderRequest) (*matchingv1.ReplaceOrderResponse, error) {
	exit, err := s.enterAlgorithm(ctx, r.GetSymbol())
	if err != nil {
		return nil, togRPCError(err)
	}
	p, err := s.m.Replace(r.GetSymbol(), r.GetOrderId(), r.GetPrice(), r.GetQuantity())
	exit()
	if err == nil {
		err = p.Wait()
	}
	if err != nil {
		return nil, togRPCError(err)
	}
	return &matchingv1.ReplaceOrderResponse{Execution: executionPB(&p.Execution)}, nil
}

func (s *Server) GetOrder(ctx context.Context, r *matchingv1.GetOrderRequest) (*matchingv1.GetOrderResponse, error) {
	o, done, err := s.m.Order(r.GetSymbol(), r.GetOrderId())
	if err != nil {
		return nil, togRPCError(err)
	}
	out := &matchingv1.GetOrderResponse{Symbol: r.GetSymbol(), Order: &matchingv1.Order{OrderId: o.ID, Account: o.Account,
		Side: matchingv1.Side(o.Side), Price: o.Price, Quantity: o.Qty, PostOnly: o.PostOnly}}
	if done != nil {
		out.Status, out.FinishedAt = matchingv1.OrderStatus_ORDER_STATUS_FILLED, timestamppb.New(done.At)
		if done.Status == matching.DoneCancelled {
			out.Status, out.CancelReason = matchingv1.OrderStatus_ORDER_STATUS_CANCELLED, matchingv1.CancelReason(done.Reason)
		}
	}
	return out, nil
}

func levelsPB(ls []engine.LevelInfo) []*matchingv1.PriceLevel {
	out := make([]*matchingv1.PriceLevel, len(ls))
	for i, l := range ls {
		out[i] = &matchingv1.PriceLevel{Price: l.Price, Quantity: l.Qty, OrderCount: int32(l.Orders)}
	}
	return out
}

func (s *Server) GetOrderBook(ctx context.Context, r *matchingv1.GetOrderBookRequest) (*matchingv1.GetOrderBookResponse, error) {
	depth := int(r.GetDepth())
	if depth == 0 {
		depth = matchingv1.DefaultDepth
	}
	b, err := s.m.OrderBook(r.GetSymbol(), depth)
	if err != nil {
		return nil, togRPCError(err)
	}
	return &matchingv1.GetOrderBookResponse{Symbol: b.Symbol, Bids: levelsPB(b.Bids), Asks: levelsPB(b.Asks),
		LastTradeSequence: b.LastTrade, Algorithm: b.Algorithm, RestingOrders: int64(b.Orders)}, nil
}

func (s *Server) ListSymbols(ctx context.Context, _ *matchingv1.ListSymbolsRequest) (*matchingv1.ListSymbolsResponse, error) {
	books, err := s.m.Books()
	if err != nil {
		return nil, togRPCError(err)
	}
	out := &matchingv1.ListSymbolsResponse{}
	for _, b := range books {
		si := &matchingv1.SymbolInfo{Symbol: b.Symbol, Algorithm: b.Algorithm, RestingOrders: int64(b.Orders), LastTradeSequence: b.LastTrade}
		if len(b.Bids) > 0 {
			si.BestBid = b.Bids[0].Price
		}
		if len(b.Asks) > 0 {
			si.BestAsk = b.Asks[0].Price
		}
		out.Symbols = append(out.Symbols, si)
	}
	return out, nil
}

// StreamTrades sends durable trades from the requested sequence on, then
// follows new ones. It ends with UNAVAILABLE when the engine unloads or the
// service stops (the client resumes from the next sequence), and with
// OUT_OF_RANGE when it falls further behind than the ring keeps.
//
// It is not behind the gate: an ordinary stream enters the engine here (it
// wakes it and counts in flight while open, as a gated call would). A
// passive one never enters it: it waits while the engine is not loaded,
// reads while it is (under closeMu, so never across the close), and counts
// as nobody's use, so the engine idles out and unloads as if nobody
// followed it; the unload first lets it read the last trades
// (awaitFollowers). So orders, risk, the gateway and historical follow
// matching without keeping it loaded, and miss no trade.
func (s *Server) StreamTrades(r *matchingv1.StreamTradesRequest, stream grpc.ServerStreamingServer[matchingv1.StreamTradesResponse]) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	passive := r.GetPassive()
	var f *follower
	if passive {
		f = &follower{symbol: r.GetSymbol()}
		s.followers.Store(f, struct{}{})
		defer s.followers.Delete(f)
		go func() { // the service stopping ends a stream waiting for an activation
			select {
			case <-s.done:
				cancel()
			case <-ctx.Done():
			}
		}()
	} else {
		exit, err := s.main.Enter(ctx)
		if err != nil {
			return togRPCError(err)
		}
		defer exit()
	}
	stopping := func(from uint64) error {
		if err := stream.Context().Err(); err != nil {
			return status.FromContextError(err).Err()
		}
		return status.Errorf(codes.Unavailable, "matching service stopping; resume from_sequence %d", from)
	}
	from := r.GetFromSequence()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	buf := make([]engine.Trade, 0, 256)
	for {
		var wake <-chan struct{}
		var err error
		if passive {
			s.closeMu.RLock()
		}
		if from == 0 && s.m.Active() {
			from = s.m.DurableTradeSeq(r.GetSymbol()) + 1
		}
		if from > 0 || !passive {
			buf, from, wake, err = s.m.ReadTrades(r.GetSymbol(), from, cap(buf), buf[:0])
		} else {
			err = matching.ErrNotActive
		}
		if passive {
			s.closeMu.RUnlock()
		}
		switch {
		case passive && errors.Is(err, matching.ErrNotActive):
			// Not loaded: wait for the next activation, without causing it.
			if err := s.main.WaitActive(ctx); err != nil {
				if ctx.Err() != nil {
					return stopping(from)
				}
				return togRPCError(err)
			}
			continue
		case err != nil:
			return togRPCError(err)
		}
		if f != nil {
			f.next.Store(from)
		}
		for i := range buf {
			if err := stream.Send(&matchingv1.StreamTradesResponse{Trade: tradePB(&buf[i])}); err != nil {
				return err
			}
		}
		if len(buf) > 0 {
			continue
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return stopping(from)
		case <-s.done:
			return stopping(from)
		case <-tick.C:
			// An unload does not close wake: a passive stream's next read
			// finds the engine closed and waits for the next activation;
			// an ordinary one ends.
			if st := s.main.Status().State; !passive && st != lazy.Active {
				return status.Errorf(codes.Unavailable, "matching engine %s; resume from_sequence %d", st, from)
			}
		}
	}
}

// followerGrace bounds how long an unload waits for passive followers.
const followerGrace = 2 * time.Second

// awaitFollowers waits (at most followerGrace, or ctx) until every passive
// trade stream has read through its symbol's last durable trade, so an
// unload (idle, preemption, shutdown) never leaves a follower such as
// orders without a fill until the next activation. Nothing new trades
// meanwhile: the engine is draining, its calls done.
func (s *Server) awaitFollowers(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, followerGrace)
	defer cancel()
	for {
		behind := ""
		s.followers.Range(func(k, _ any) bool {
			f := k.(*follower)
			if next := f.next.Load(); next > 0 && next <= s.m.DurableTradeSeq(f.symbol) {
				behind = f.symbol
				return false
			}
			return true
		})
		if behind == "" {
			return
		}
		select {
		case <-ctx.Done():
			s.log.Warn("unloading with a passive trade follower behind; it resumes at the next activation", zap.String("symbol", behind))
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// SubmitOrders pipelines a stream: each order is applied as it arrives and
// answered, in order, once durable, so one stream shares fsyncs (group
// commit) across the orders in flight. An order the engine refuses gets a
// Rejection and the stream goes on; an invalid message ends the stream with
// INVALID_ARGUMENT after the answers to the orders before it.
func (s *Server) SubmitOrders(stream grpc.BidiStreamingServer[matchingv1.SubmitOrdersRequest, matchingv1.SubmitOrdersResponse]) error {
	ctx := stream.Context()
	type item struct {
		id  uint64
		p   *matching.Pending
		err error
	}
	q := make(chan item, 4096)
	sent := make(chan error, 1)
	go func() {
		var sendErr error
		for it := range q {
			if it.err == nil {
				it.err = it.p.Wait()
			}
			if sendErr != nil {
				continue // keep draining so the receiver never blocks
			}
			resp := &matchingv1.SubmitOrdersResponse{OrderId: it.id}
			if it.err != nil {
				st := status.Convert(togRPCError(it.err))
				rej := &matchingv1.Rejection{Code: int32(st.Code()), Message: st.Message()}
				if reason := errorReason(st); reason != "" {
					rej.Reason = reason
				}
				resp.Result = &matchingv1.SubmitOrdersResponse_Rejection{Rejection: rej}
			} else {
				resp.Result = &matchingv1.SubmitOrdersResponse_Execution{Execution: executionPB(&it.p.Execution)}
			}
			sendErr = stream.Send(resp)
		}
		sent <- sendErr
	}()
	// A stopping service ends the stream (a client may keep it open
	// forever) instead of waiting for it.
	reqs, recvDone := grpcserver.ReceiveAll(ctx, stream.Recv)
	var recvErr error
recv:
	for {
		select {
		case req := <-reqs:
			p, err := s.submit(ctx, req.GetOrder())
			q <- item{id: req.GetOrder().GetOrderId(), p: p, err: err}
		case err := <-recvDone:
			if !errors.Is(err, io.EOF) {
				recvErr = err
			}
			break recv
		case <-s.done:
			recvErr = status.Error(codes.Unavailable, "matching service stopping; orders not answered were not received")
			break recv
		}
	}
	close(q)
	sendErr := <-sent
	if recvErr != nil {
		if _, ok := status.FromError(recvErr); ok {
			return recvErr
		}
		return status.FromContextError(ctx.Err()).Err()
	}
	return sendErr
}

func errorReason(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(interface{ GetReason() string }); ok {
			return info.GetReason()
		}
	}
	return ""
}

func (s *Server) algorithmPB(name string, c *lazy.Component, symbols []string) *matchingv1.Algorithm {
	st := c.Status()
	sort.Strings(symbols)
	return &matchingv1.Algorithm{Name: name, Component: c.Name(), State: coordinatorv1.ComponentState(st.State),
		MemoryBytes: c.Spec().MemoryBytes, LeaseId: st.LeaseID, Symbols: symbols}
}

func (s *Server) LoadAlgorithm(ctx context.Context, r *matchingv1.LoadAlgorithmRequest) (*matchingv1.LoadAlgorithmResponse, error) {
	name, c, err := s.algorithm(r.GetName())
	if err != nil {
		return nil, togRPCError(err)
	}
	tok, err := s.m.Fenced(ctx, s.locker, r.GetFencingToken(), s.lockWait, func() error { return c.Activate(ctx) })
	if err != nil {
		return nil, togRPCError(err)
	}
	return &matchingv1.LoadAlgorithmResponse{Algorithm: s.algorithmPB(name, c, s.m.SymbolsByAlgorithm()[name]), FencingToken: tok}, nil
}

func (s *Server) UnloadAlgorithm(ctx context.Context, r *matchingv1.UnloadAlgorithmRequest) (*matchingv1.UnloadAlgorithmResponse, error) {
	name, c, err := s.algorithm(r.GetName())
	if err != nil {
		return nil, togRPCError(err)
	}
	tok, err := s.m.Fenced(ctx, s.locker, r.GetFencingToken(), s.lockWait, func() error { return c.Deactivate(ctx, "operator") })
	if err != nil {
		return nil, togRPCError(err)
	}
	return &matchingv1.UnloadAlgorithmResponse{Algorithm: s.algorithmPB(name, c, s.m.SymbolsByAlgorithm()[name]), FencingToken: tok}, nil
}

func (s *Server) ListAlgorithms(ctx context.Context, r *matchingv1.ListAlgorithmsRequest) (*matchingv1.ListAlgorithmsResponse, error) {
	bySym := s.m.SymbolsByAlgorithm()
	out := &matchingv1.ListAlgorithmsResponse{}
	for _, name := range matching.Algorithms() {
		out.Algorithms = append(out.Algorithms, s.algorithmPB(name, s.algos[name], bySym[name]))
	}
	return out, nil
}

func (s *Server) SetSymbolAlgorithm(ctx context.Context, r *matchingv1.SetSymbolAlgorithmRequest) (*matchingv1.SetSymbolAlgorithmResponse, error) {
	name, c, err := s.algorithm(r.GetAlgorithm())
	if err != nil {
		return nil, togRPCError(err)
	}
	var prev string
	tok, err := s.m.Fenced(ctx, s.locker, r.GetFencingToken(), s.lockWait, func() error {
		// Load (lease) the new algorithm before the book switches to it.
		exit, err := c.Enter(ctx)
		if err != nil {
			return err
		}
		defer exit()
		var p *matching.Pending
		prev, p, err = s.m.SetAlgorithm(r.GetSymbol(), name)
		if err != nil {
			return err
		}
		return p.Wait()
	})
	if err != nil {
		return nil, togRPCError(err)
	}
	return &matchingv1.SetSymbolAlgorithmResponse{Symbol: r.GetSymbol(), Algorithm: name, PreviousAlgorithm: prev, FencingToken: tok}, nil
}
