package server

import (
	"context"
	"errors"
	"io"
	"strconv"

	"github.com/tradsys/mesh/pkg/fixed"
	connectorsv1 "github.com/tradsys/mesh/proto/tradsys/connectors/v1"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	"github.com/tradsys/mesh/services/strategy/strategies"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// marketData is strategies.MarketData over the connectors service.
type marketData struct {
	c connectorsv1.ConnectorServiceClient
}

func (m *marketData) Trades(ctx context.Context, connector, symbol string, fn func(fixed.Decimal)) error {
	st, err := m.c.StreamMarketData(ctx, &connectorsv1.StreamMarketDataRequest{Connector: connector, Symbols: []string{symbol}, TradesOnly: true})
	if err != nil {
		return err
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("connector ended the stream")
			}
			return err
		}
		if t := resp.GetTrade(); t != nil {
			if p, err := fixed.Parse(t.GetPrice()); err == nil && p > 0 {
				fn(p)
			}
		}
	}
}

// orders is strategies.Orders over the orders service.
type orders struct {
	c ordersv1.OrderServiceClient
}

func (o *orders) Instrument(ctx context.Context, symbol string) (strategies.Instrument, error) {
	resp, err := o.c.GetInstrument(ctx, &ordersv1.GetInstrumentRequest{Symbol: symbol})
	if err != nil {
		return strategies.Instrument{}, err
	}
	tick, err := fixed.Parse(resp.GetInstrument().GetTickSize())
	if err != nil {
		return strategies.Instrument{}, err
	}
	lot, err := fixed.Parse(resp.GetInstrument().GetLotSize())
	if err != nil {
		return strategies.Instrument{}, err
	}
	return strategies.Instrument{Tick: tick, Lot: lot}, nil
}

func (o *orders) Submit(ctx context.Context, r strategies.OrderRequest) (strategies.Order, error) {
	side, typ := ordersv1.Side_SIDE_SELL, ordersv1.OrderType_ORDER_TYPE_LIMIT
	if r.Buy {
		side = ordersv1.Side_SIDE_BUY
	}
	if r.IOC {
		typ = ordersv1.OrderType_ORDER_TYPE_IOC
	}
	resp, err := o.c.SubmitOrder(ctx, &ordersv1.SubmitOrderRequest{Account: r.Account, ClientOrderId: r.ClientOrderID, Symbol: r.Symbol,
		Side: side, Type: typ, Price: r.Price.Text(), Quantity: r.Quantity.Text()})
	if err != nil {
		return strategies.Order{}, err
	}
	return orderFromPB(resp.GetOrder()), nil
}

func (o *orders) Cancel(ctx context.Context, account string, id uint64) (strategies.Order, error) {
	resp, err := o.c.CancelOrder(ctx, &ordersv1.CancelOrderRequest{Account: account, OrderId: id})
	if err != nil {
		return strategies.Order{}, err
	}
	return orderFromPB(resp.GetOrder()), nil
}

func (o *orders) Updates(ctx context.Context, account, symbol string, from uint64, fn func(strategies.Update)) error {
	st, err := o.c.StreamOrderUpdates(ctx, &ordersv1.StreamOrderUpdatesRequest{Account: account, Symbol: symbol, FromSequence: from})
	if err != nil {
		return updatesError(from, err)
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			return updatesError(from, err)
		}
		u := strategies.Update{Sequence: resp.GetSequence(), Order: orderFromPB(resp.GetOrder()),
			Buy: resp.GetOrder().GetSide() == ordersv1.Side_SIDE_BUY}
		if f := resp.GetEvent().GetFill(); f != nil {
			u.FillPrice, _ = fixed.Parse(f.GetPrice())
			u.FillQuantity, _ = fixed.Parse(f.GetQuantity())
		}
		fn(u)
	}
}

// updatesError is a failed update stream's error; OUT_OF_RANGE (the
// sequence is trimmed, or ahead of the store) as the domain's
// UpdatesGapError, with where the updates go on.
func updatesError(from uint64, err error) error {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.OutOfRange {
		return err
	}
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok {
			continue
		}
		for _, key := range []string{"oldest_sequence", "next_sequence"} {
			if n, perr := strconv.ParseUint(info.GetMetadata()[key], 10, 64); perr == nil {
				return &strategies.UpdatesGapError{Requested: from, ResumeFrom: n, Reason: info.GetReason()}
			}
		}
	}
	return err
}

var statusNames = map[ordersv1.OrderStatus]string{
	ordersv1.OrderStatus_ORDER_STATUS_NEW: "new", ordersv1.OrderStatus_ORDER_STATUS_ACCEPTED: "accepted",
	ordersv1.OrderStatus_ORDER_STATUS_PARTIALLY_FILLED: "partially_filled", ordersv1.OrderStatus_ORDER_STATUS_FILLED: "filled",
	ordersv1.OrderStatus_ORDER_STATUS_REJECTED: "rejected", ordersv1.OrderStatus_ORDER_STATUS_CANCELED: "canceled",
}

func orderFromPB(o *ordersv1.Order) strategies.Order {
	filled, _ := fixed.Parse(o.GetFilledQuantity())
	open, _ := fixed.Parse(o.GetOpenQuantity())
	return strategies.Order{ID: o.GetOrderId(), Status: statusNames[o.GetStatus()], Filled: filled, Open: open,
		Reasons: o.GetRejectReasons(), ClientID: o.GetClientOrderId()}
}
