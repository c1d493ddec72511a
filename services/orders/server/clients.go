package server

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/tradsys/mesh/pkg/fixed"
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
}

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
	resp, err := riskv1.NewRiskServiceClient(c.conn).ValidateOrder(ctx, &riskv1.ValidateOrderRequest{
		Account: r.Account, Symbol: r.Symbol, Side: side, Price: decimalText(r.Price), Quantity: r.Quantity.Text(),
		TickSize: r.TickSize.Text(), LotSize: r.LotSize.Text(), Position: r.Position.Text(),
		OpenQuantity: decimalText(r.OpenQuantity), OrderId: r.OrderID,
	})
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

// matchingClient is oms.Matching over tradsys.matching.v1.MatchingService.
type matchingClient struct {
	conn    *grpc.ClientConn
	timeout time.Duration
	stream  *submitStream // nil: unary SubmitOrder calls
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
		x, err := c.stream.submit(ctx, req)
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
	stream, err := c.api().StreamTrades(ctx, &matchingv1.StreamTradesRequest{Symbol: symbol, FromSequence: from})
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
		TakerID: t.GetTakerOrderId(), MakerID: t.GetMakerOrderId(), TakerSide: side}
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
		cause := oms.CancelUser
		switch c.GetReason() {
		case matchingv1.CancelReason_CANCEL_REASON_SELF_TRADE:
			cause = oms.CancelSelfTrade
		case matchingv1.CancelReason_CANCEL_REASON_UNFILLED:
			cause = oms.CancelUnfilled
		}
		x.Cancellations = append(x.Cancellations, oms.Cancellation{OrderID: c.GetOrderId(), Lots: c.GetQuantity(), Cause: cause})
	}
	return x
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
