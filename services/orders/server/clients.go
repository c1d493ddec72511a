package server

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tradsys/mesh/pkg/fixed"
	"github.com/tradsys/mesh/pkg/muxstream"
	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	riskv1 "github.com/tradsys/mesh/proto/tradsys/risk/v1"
	"github.com/tradsys/mesh/services/orders/oms"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// withTimeout bounds a call to another service by the caller's deadline
// (propagated by gRPC) and our own call timeout, whichever is sooner.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// riskClient is oms.Risk over tradsys.risk.v1.RiskService.
type riskClient struct {
	conn    *grpc.ClientConn
	timeout time.Duration
	// stream, when set, carries the checks on one shared ValidateOrders
	// stream (nil: a unary ValidateOrder each).
	stream *muxstream.Shared[riskv1.ValidateOrdersRequest, riskv1.ValidateOrdersResponse]
	nextID atomic.Uint64
}

func newRiskClient(conn *grpc.ClientConn, timeout time.Duration, stream bool, idle time.Duration) *riskClient {
	c := &riskClient{conn: conn, timeout: timeout}
	if stream {
		c.stream = muxstream.New(riskv1.NewRiskServiceClient(conn).ValidateOrders, (*riskv1.ValidateOrdersResponse).GetRequestId, idle)
	}
	return c
}

// defaultStreamIdle is how long a shared stream may go without calls
// before it is closed.
const defaultStreamIdle = time.Minute

func decimalText(d fixed.Decimal) string {
	if d == 0 {
		return ""
	}
	return d.Text()
}

func (c *riskClient) Validate(ctx context.Context, r oms.RiskCheck) ([]string, error) {
	ctx, cancel := withTimeout(ctx, c.timeout)
	defer cancel()
	side := riskv1.Side_SIDE_BUY
	if r.Side == oms.Sell {
		side = riskv1.Side_SIDE_SELL
	}
	req := &riskv1.ValidateOrderRequest{
		Account: r.Account, Symbol: r.Symbol, Side: side, Price: decimalText(r.Price), Quantity: r.Quantity.Text(),
		TickSize: r.TickSize.Text(), LotSize: r.LotSize.Text(), Position: r.Position.Text(),
		OpenQuantity: decimalText(r.OpenQuantity), OrderId: r.OrderID,
	}
	resp, err := c.validate(ctx, req)
	if err != nil {
		return nil, err
	}
	if resp.GetApproved() {
		return nil, nil
	}
	var failures []string
	for _, res := range resp.GetResults() {
		if !res.GetPassed() {
			failures = append(failures, res.GetValidator()+": "+res.GetReason())
		}
	}
	if len(failures) == 0 {
		failures = []string{"rejected by risk"}
	}
	return failures, nil
}

// validate asks risk once: on the shared stream when there is one, else
// (or when the stream failed without an answer: a check has no effect
// that asking again could double) with a unary call.
func (c *riskClient) validate(ctx context.Context, req *riskv1.ValidateOrderRequest) (*riskv1.ValidateOrderResponse, error) {
	if c.stream != nil {
		id := c.nextID.Add(1)
		resp, err := c.stream.Call(ctx, id, &riskv1.ValidateOrdersRequest{RequestId: id, Order: req})
		var timeout *muxstream.TimeoutError
		switch {
		case err == nil && resp.GetError() != nil:
			return nil, status.Error(codes.Code(resp.GetError().GetCode()), resp.GetError().GetMessage())
		case err == nil:
			return resp.GetVerdict(), nil
		case errors.As(err, &timeout):
			return nil, errors.New("risk did not answer in time: " + err.Error())
		}
	}
	return riskv1.NewRiskServiceClient(c.conn).ValidateOrder(ctx, req)
}

// matchingClient is oms.Matching over tradsys.matching.v1.MatchingService.
type matchingClient struct {
	conn    *grpc.ClientConn
	timeout time.Duration
	// stream, when set, carries the submits on one shared SubmitOrders
	// stream (nil: a unary SubmitOrder each).
	stream *muxstream.Shared[matchingv1.SubmitOrdersRequest, matchingv1.SubmitOrdersResponse]
}

func newMatchingClient(conn *grpc.ClientConn, timeout time.Duration, stream bool, idle time.Duration) *matchingClient {
	c := &matchingClient{conn: conn, timeout: timeout}
	if stream {
		c.stream = muxstream.New(matchingv1.NewMatchingServiceClient(conn).SubmitOrders, (*matchingv1.SubmitOrdersResponse).GetOrderId, idle)
	}
	return c
}

// submitStreamed sends one order on the shared stream: a failure before it
// was sent is ErrNotSent; a broken stream or a missed deadline leave the
// outcome unknown (the reconciler settles it).
func (c *matchingClient) submitStreamed(ctx context.Context, r *matchingv1.SubmitOrderRequest) (*matchingv1.Execution, error) {
	resp, err := c.stream.Call(ctx, r.GetOrderId(), &matchingv1.SubmitOrdersRequest{Order: r})
	var notSent *muxstream.NotSentError
	var timeout *muxstream.TimeoutError
	switch {
	case errors.As(err, &notSent):
		return nil, errors.Join(oms.ErrNotSent, notSent.Err)
	case errors.As(err, &timeout):
		return nil, errors.New("matching did not answer in time: " + timeout.Err.Error())
	case err != nil:
		return nil, matchingError(err, false)
	}
	if rej := resp.GetRejection(); rej != nil {
		return nil, matchingError(status.Error(codes.Code(rej.GetCode()), rej.GetMessage()), false)
	}
	return resp.GetExecution(), nil
}

func (c *matchingClient) api() matchingv1.MatchingServiceClient {
	return matchingv1.NewMatchingServiceClient(c.conn)
}

var orderTypes = map[oms.OrderType]matchingv1.OrderType{
	oms.Limit: matchingv1.OrderType_ORDER_TYPE_LIMIT, oms.Market: matchingv1.OrderType_ORDER_TYPE_MARKET,
	oms.IOC: matchingv1.OrderType_ORDER_TYPE_IOC, oms.FOK: matchingv1.OrderType_ORDER_TYPE_FOK,
	oms.PostOnly: matchingv1.OrderType_ORDER_TYPE_POST_ONLY,
}

func matchingSide(s oms.Side) matchingv1.Side {
	if s == oms.Sell {
		return matchingv1.Side_SIDE_SELL
	}
	return matchingv1.Side_SIDE_BUY
}

func (c *matchingClient) Submit(ctx context.Context, o oms.MatchOrder) (oms.Execution, error) {
	ctx, cancel := withTimeout(ctx, c.timeout)
	defer cancel()
	req := &matchingv1.SubmitOrderRequest{Symbol: o.Symbol, OrderId: o.ID, Account: o.Account,
		Side: matchingSide(o.Side), Type: orderTypes[o.Type], Price: o.Ticks, Quantity: o.Lots}
	if c.stream != nil {
		x, err := c.submitStreamed(ctx, req)
		if err != nil {
			return oms.Execution{}, err
		}
		return execution(o.Symbol, x), nil
	}
	resp, err := c.api().SubmitOrder(ctx, req)
	if err != nil {
		return oms.Execution{}, matchingError(err, false)
	}
	return execution(o.Symbol, resp.GetExecution()), nil
}

func (c *matchingClient) Cancel(ctx context.Context, symbol string, id uint64) (int64, error) {
	ctx, cancel := withTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.api().CancelOrder(ctx, &matchingv1.CancelOrderRequest{Symbol: symbol, OrderId: id})
	if err != nil {
		return 0, matchingError(err, true)
	}
	return resp.GetCancelledQuantity(), nil
}

func (c *matchingClient) State(ctx context.Context, symbol string, id uint64) (oms.MatchState, error) {
	ctx, cancel := withTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.api().GetOrder(ctx, &matchingv1.GetOrderRequest{Symbol: symbol, OrderId: id})
	if err != nil {
		return oms.MatchState{}, matchingError(err, true)
	}
	acct := resp.GetOrder().GetAccount()
	switch resp.GetStatus() {
	case matchingv1.OrderStatus_ORDER_STATUS_FILLED:
		return oms.MatchState{Account: acct}, nil
	case matchingv1.OrderStatus_ORDER_STATUS_CANCELLED:
		return oms.MatchState{Cancelled: true, Cause: cancelCause(resp.GetCancelReason()), Account: acct}, nil
	}
	return oms.MatchState{Resting: true, Account: acct}, nil
}

func (c *matchingClient) Replace(ctx context.Context, symbol string, id uint64, ticks, lots int64) (oms.Execution, error) {
	ctx, cancel := withTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.api().ReplaceOrder(ctx, &matchingv1.ReplaceOrderRequest{Symbol: symbol, OrderId: id, Price: ticks, Quantity: lots})
	if err != nil {
		return oms.Execution{}, matchingError(err, true)
	}
	return execution(symbol, resp.GetExecution()), nil
}

func (c *matchingClient) LastTradeSeq(ctx context.Context, symbol string) (uint64, error) {
	ctx, cancel := withTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.api().GetOrderBook(ctx, &matchingv1.GetOrderBookRequest{Symbol: symbol, Depth: 1})
	if status.Code(err) == codes.NotFound {
		return 0, nil // no book yet: no trades
	}
	if err != nil {
		return 0, err
	}
	return resp.GetLastTradeSequence(), nil
}

func (c *matchingClient) Trades(ctx context.Context, symbol string, from uint64, fn func(oms.Trade) error) error {
	stream, err := c.api().StreamTrades(ctx, &matchingv1.StreamTradesRequest{Symbol: symbol, FromSequence: from, Passive: true})
	if err != nil {
		return err
	}
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			return errors.New("trade stream ended")
		}
		if err != nil {
			if st, ok := status.FromError(err); ok && st.Code() == codes.OutOfRange {
				oor := &oms.OutOfRangeError{Requested: from}
				for _, d := range st.Details() {
					if info, ok := d.(*errdetails.ErrorInfo); ok {
						oor.Oldest = parseUint(info.GetMetadata()["oldest_sequence"])
					}
				}
				return oor
			}
			return err
		}
		if err := fn(trade(resp.GetTrade())); err != nil {
			return err
		}
		from = resp.GetTrade().GetSequence() + 1
	}
}

func parseUint(s string) uint64 {
	var n uint64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + uint64(c-'0')
	}
	return n
}

func trade(t *matchingv1.Trade) oms.Trade {
	side := oms.Buy
	if t.GetTakerSide() == matchingv1.Side_SIDE_SELL {
		side = oms.Sell
	}
	tr := oms.Trade{Symbol: t.GetSymbol(), Seq: t.GetSequence(), Ticks: t.GetPrice(), Lots: t.GetQuantity(),
		TakerID: t.GetTakerOrderId(), MakerID: t.GetMakerOrderId(), TakerSide: side,
		TakerAccount: t.GetTakerAccount(), MakerAccount: t.GetMakerAccount()}
	if t.GetExecutedAt() != nil {
		tr.ExecutedAt = t.GetExecutedAt().AsTime()
	}
	return tr
}

func execution(symbol string, e *matchingv1.Execution) oms.Execution {
	x := oms.Execution{RestingLots: e.GetRestingQuantity()}
	for _, t := range e.GetTrades() {
		tr := trade(t)
		if tr.Symbol == "" {
			tr.Symbol = symbol
		}
		x.Trades = append(x.Trades, tr)
	}
	for _, c := range e.GetCancellations() {
		x.Cancellations = append(x.Cancellations, oms.Cancellation{OrderID: c.GetOrderId(), Lots: c.GetQuantity(), Cause: cancelCause(c.GetReason())})
	}
	return x
}

func cancelCause(r matchingv1.CancelReason) oms.CancelCause {
	switch r {
	case matchingv1.CancelReason_CANCEL_REASON_SELF_TRADE:
		return oms.CancelSelfTrade
	case matchingv1.CancelReason_CANCEL_REASON_UNFILLED:
		return oms.CancelUnfilled
	}
	return oms.CancelUser
}

// matchingError says what is known of a failed matching call: a definite
// refusal, not sent at all, not found (for calls on a resting order), or
// ambiguous (returned as is).
func matchingError(err error, onResting bool) error {
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.NotFound:
		if onResting {
			return oms.ErrNotFound
		}
		return &oms.RefusedError{Reason: st.Message()}
	case codes.FailedPrecondition, codes.InvalidArgument, codes.AlreadyExists, codes.OutOfRange, codes.PermissionDenied:
		return &oms.RefusedError{Reason: st.Message()}
	case codes.Unavailable:
		msg := st.Message()
		// The call never ran: no connection, or matching's gate refused it
		// before the handler (component not activated).
		if strings.Contains(msg, "while dialing") || strings.Contains(msg, "connection refused") ||
			strings.Contains(msg, "produced zero addresses") ||
			(strings.HasPrefix(msg, "component ") && strings.Contains(msg, " unavailable")) {
			return errors.Join(oms.ErrNotSent, errors.New("matching unavailable: "+msg))
		}
	}
	return errors.New("matching: " + st.Code().String() + ": " + st.Message())
}
