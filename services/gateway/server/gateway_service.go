package server

import (
	"context"
	"strings"

	gatewayv1 "github.com/tradsys/mesh/proto/tradsys/gateway/v1"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	"github.com/tradsys/mesh/services/gateway/hub"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// gatewayService is tradsys.gateway.v1.GatewayService: the WebSocket
// protocol's operations over gRPC, with the same keys and rate limits.
type gatewayService struct {
	gatewayv1.UnimplementedGatewayServiceServer
	keys   *hub.Keys
	orders ordersv1.OrderServiceClient
	entry  *orderEntry
	md     *marketData
}

// caller is the key a call presents (metadata "authorization: Bearer <key>"
// or "x-api-key"), after its rate limit; claimed, when set, must be its
// account.
func (g *gatewayService) caller(ctx context.Context, claimed string) (*hub.Key, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	secret := ""
	if v := md.Get("authorization"); len(v) > 0 {
		secret, _ = strings.CutPrefix(v[0], "Bearer ")
	} else if v := md.Get("x-api-key"); len(v) > 0 {
		secret = v[0]
	}
	k := g.keys.Lookup(strings.TrimSpace(secret))
	if k == nil {
		return nil, toStatus(&hub.Error{Code: codeUnauthenticated, Message: "missing or unknown API key: send authorization: Bearer <key> or x-api-key metadata"})
	}
	if !k.Allow() {
		return nil, toStatus(hub.Errorf(hub.CodeRateLimited, "key %s: more than %g requests/s (burst %d)", k.Name, k.Rate, k.Burst))
	}
	if claimed != "" && claimed != k.Account {
		return nil, toStatus(&hub.Error{Code: hub.CodeForbidden, Field: "account",
			Message: "key " + k.Name + " acts for account " + k.Account + " only, not account " + claimed})
	}
	return k, nil
}

func (g *gatewayService) SubmitOrder(ctx context.Context, r *gatewayv1.SubmitOrderRequest) (*gatewayv1.SubmitOrderResponse, error) {
	k, err := g.caller(ctx, r.GetAccount())
	if err != nil {
		return nil, err
	}
	coid := r.GetClientOrderId()
	if coid == "" {
		coid = hub.NewClientOrderID()
	}
	resp, err := g.entry.Submit(ctx, &ordersv1.SubmitOrderRequest{Account: k.Account, ClientOrderId: coid, Symbol: r.GetSymbol(),
		Side: r.GetSide(), Type: r.GetType(), Price: r.GetPrice(), Quantity: r.GetQuantity()})
	if err != nil {
		return nil, toStatus(toHubError(err))
	}
	return &gatewayv1.SubmitOrderResponse{Order: resp.GetOrder(), Duplicate: resp.GetDuplicate()}, nil
}

func (g *gatewayService) ReplaceOrder(ctx context.Context, r *gatewayv1.ReplaceOrderRequest) (*gatewayv1.ReplaceOrderResponse, error) {
	k, err := g.caller(ctx, r.GetAccount())
	if err != nil {
		return nil, err
	}
	resp, err := g.orders.ReplaceOrder(ctx, &ordersv1.ReplaceOrderRequest{Account: k.Account, OrderId: r.GetOrderId(),
		Price: r.GetPrice(), Quantity: r.GetQuantity()})
	if err != nil {
		return nil, toStatus(toHubError(err))
	}
	return &gatewayv1.ReplaceOrderResponse{Order: resp.GetOrder()}, nil
}

func (g *gatewayService) CancelOrder(ctx context.Context, r *gatewayv1.CancelOrderRequest) (*gatewayv1.CancelOrderResponse, error) {
	k, err := g.caller(ctx, r.GetAccount())
	if err != nil {
		return nil, err
	}
	resp, err := g.orders.CancelOrder(ctx, &ordersv1.CancelOrderRequest{Account: k.Account, OrderId: r.GetOrderId()})
	if err != nil {
		return nil, toStatus(toHubError(err))
	}
	return &gatewayv1.CancelOrderResponse{Order: resp.GetOrder()}, nil
}

func (g *gatewayService) StreamOrderUpdates(r *gatewayv1.StreamOrderUpdatesRequest, stream grpc.ServerStreamingServer[gatewayv1.StreamOrderUpdatesResponse]) error {
	k, err := g.caller(stream.Context(), "")
	if err != nil {
		return err
	}
	st, err := g.orders.StreamOrderUpdates(stream.Context(), &ordersv1.StreamOrderUpdatesRequest{Account: k.Account,
		Symbol: r.GetSymbol(), FromSequence: r.GetFromSequence()})
	if err != nil {
		return toStatus(toHubError(err))
	}
	for {
		u, err := st.Recv()
		if err != nil {
			return toStatus(toHubError(err))
		}
		if err := stream.Send(&gatewayv1.StreamOrderUpdatesResponse{Sequence: u.GetSequence(), Order: u.GetOrder(), Event: u.GetEvent()}); err != nil {
			return err
		}
	}
}

var takerSides = map[string]ordersv1.Side{"buy": ordersv1.Side_SIDE_BUY, "sell": ordersv1.Side_SIDE_SELL}

func (g *gatewayService) StreamTrades(r *gatewayv1.StreamTradesRequest, stream grpc.ServerStreamingServer[gatewayv1.StreamTradesResponse]) error {
	if _, err := g.caller(stream.Context(), ""); err != nil {
		return err
	}
	var sendErr error
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	err := g.md.Trades(ctx, r.GetSymbol(), r.GetFromSequence(), func(t hub.Trade) {
		if sendErr != nil {
			return
		}
		sendErr = stream.Send(&gatewayv1.StreamTradesResponse{Trade: &gatewayv1.Trade{Symbol: t.Symbol, Sequence: t.Sequence,
			Price: t.Price, Quantity: t.Quantity, TakerSide: takerSides[t.TakerSide], Time: t.Time}})
		if sendErr != nil {
			cancel()
		}
	})
	if sendErr != nil {
		return sendErr
	}
	return toStatus(err)
}

func (g *gatewayService) GetOrderBook(ctx context.Context, r *gatewayv1.GetOrderBookRequest) (*gatewayv1.GetOrderBookResponse, error) {
	if _, err := g.caller(ctx, ""); err != nil {
		return nil, err
	}
	depth := int(r.GetDepth())
	if depth == 0 {
		depth = 10
	}
	b, err := g.md.Book(ctx, r.GetSymbol(), depth)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &gatewayv1.GetOrderBookResponse{Symbol: b.Symbol, LastTradeSequence: b.LastTradeSeq}
	for _, l := range b.Bids {
		out.Bids = append(out.Bids, &gatewayv1.PriceLevel{Price: l.Price, Quantity: l.Quantity, Orders: l.Orders})
	}
	for _, l := range b.Asks {
		out.Asks = append(out.Asks, &gatewayv1.PriceLevel{Price: l.Price, Quantity: l.Quantity, Orders: l.Orders})
	}
	return out, nil
}

func (g *gatewayService) GetCandles(ctx context.Context, r *gatewayv1.GetCandlesRequest) (*gatewayv1.GetCandlesResponse, error) {
	if _, err := g.caller(ctx, ""); err != nil {
		return nil, err
	}
	interval, limit := r.GetInterval(), int(r.GetLimit())
	if interval == "" {
		interval = "1m"
	}
	if limit == 0 {
		limit = 120
	}
	cs, err := g.md.Candles(ctx, r.GetSymbol(), interval, limit)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &gatewayv1.GetCandlesResponse{Symbol: r.GetSymbol(), Interval: interval}
	for _, c := range cs {
		out.Candles = append(out.Candles, &gatewayv1.Candle{OpenTime: c.OpenTime, Open: c.Open, High: c.High, Low: c.Low, Close: c.Close,
			Volume: c.Volume, Trades: c.Trades, Partial: c.Partial})
	}
	return out, nil
}
