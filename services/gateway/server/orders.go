package server

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tradsys/mesh/pkg/fixed"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	"github.com/tradsys/mesh/services/gateway/hub"
)

// orders is hub.Orders over the orders service: every order goes through
// it, so risk always applies.
type orders struct {
	c     ordersv1.OrderServiceClient
	entry *orderEntry
}

var sides = map[string]ordersv1.Side{"buy": ordersv1.Side_SIDE_BUY, "sell": ordersv1.Side_SIDE_SELL}

var orderTypes = map[string]ordersv1.OrderType{
	"limit": ordersv1.OrderType_ORDER_TYPE_LIMIT, "market": ordersv1.OrderType_ORDER_TYPE_MARKET,
	"ioc": ordersv1.OrderType_ORDER_TYPE_IOC, "fok": ordersv1.OrderType_ORDER_TYPE_FOK,
	"post_only": ordersv1.OrderType_ORDER_TYPE_POST_ONLY,
}

func (o *orders) Submit(ctx context.Context, n hub.NewOrderFor) (hub.OrderUpdate, error) {
	resp, err := o.entry.Submit(ctx, &ordersv1.SubmitOrderRequest{Account: n.Account, ClientOrderId: n.ClientOrderID,
		Symbol: n.Symbol, Side: sides[n.Side], Type: orderTypes[n.Type], Price: n.Price, Quantity: n.Quantity})
	if err != nil {
		return hub.OrderUpdate{}, toHubError(err)
	}
	u := updateFromOrder(resp.GetOrder(), nil)
	if resp.GetDuplicate() {
		u.Event = "duplicate"
	}
	return u, nil
}

func (o *orders) Replace(ctx context.Context, account, orderID, price, quantity string) (hub.OrderUpdate, error) {
	id, _ := strconv.ParseUint(orderID, 10, 64) // the decoder checked it
	resp, err := o.c.ReplaceOrder(ctx, &ordersv1.ReplaceOrderRequest{Account: account, OrderId: id, Price: price, Quantity: quantity})
	if err != nil {
		return hub.OrderUpdate{}, toHubError(err)
	}
	return updateFromOrder(resp.GetOrder(), nil), nil
}

func (o *orders) Cancel(ctx context.Context, account, orderID string) (hub.OrderUpdate, error) {
	id, _ := strconv.ParseUint(orderID, 10, 64)
	resp, err := o.c.CancelOrder(ctx, &ordersv1.CancelOrderRequest{Account: account, OrderId: id})
	if err != nil {
		return hub.OrderUpdate{}, toHubError(err)
	}
	return updateFromOrder(resp.GetOrder(), nil), nil
}

// Updates follows account's order updates; after a broken stream it
// resumes after the last update it delivered.
func (o *orders) Updates(ctx context.Context, account string, opened func(), fn func(hub.OrderUpdate)) error {
	var next uint64
	for {
		st, err := o.c.StreamOrderUpdates(ctx, &ordersv1.StreamOrderUpdatesRequest{Account: account, FromSequence: next})
		if err != nil {
			return toHubError(err)
		}
		opened()
		for {
			resp, err := st.Recv()
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if next == 0 || !errors.Is(err, io.EOF) && !isUnavailable(err) {
					return toHubError(err)
				}
				break // resume from next
			}
			u := updateFromOrder(resp.GetOrder(), resp.GetEvent())
			u.Sequence = resp.GetSequence()
			next = u.Sequence + 1
			fn(u)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func isUnavailable(err error) bool {
	var he *hub.Error
	return errors.As(toHubError(err), &he) && he.Code == hub.CodeUnavailable
}

func lowerEnum(s, prefix string) string { return strings.ToLower(strings.TrimPrefix(s, prefix)) }

func updateFromOrder(o *ordersv1.Order, ev *ordersv1.OrderEvent) hub.OrderUpdate {
	u := hub.OrderUpdate{OrderID: strconv.FormatUint(o.GetOrderId(), 10), ClientOrderID: o.GetClientOrderId(),
		Account: o.GetAccount(), Symbol: o.GetSymbol(), Side: lowerEnum(o.GetSide().String(), "SIDE_"),
		Type: lowerEnum(o.GetType().String(), "ORDER_TYPE_"), Price: o.GetPrice(), Quantity: o.GetQuantity(),
		Filled: o.GetFilledQuantity(), Open: o.GetOpenQuantity(), AvgPrice: o.GetAverageFillPrice(),
		Status: lowerEnum(o.GetStatus().String(), "ORDER_STATUS_"), Reasons: o.GetRejectReasons(), Sequence: o.GetSequence()}
	if t := o.GetUpdatedAt(); t != nil {
		u.Time = t.AsTime().UnixMilli()
	}
	if ev != nil {
		u.Event = ev.GetReason()
		if f := ev.GetFill(); f != nil {
			u.Event, u.FillPrice, u.FillQuantity = "fill", f.GetPrice(), f.GetQuantity()
		}
		if u.Event == "" {
			u.Event = u.Status
		}
		if t := ev.GetTime(); t != nil {
			u.Time = t.AsTime().UnixMilli()
		}
	}
	return u
}

// grids converts matching's ticks and lots into the decimals orders uses,
// from the instruments orders defines (cached; a symbol without one is
// shown in ticks and lots, and asked about again after a while).
type grids struct {
	c ordersv1.OrderServiceClient

	mu    sync.Mutex
	known map[string]grid
}

type grid struct {
	tick, lot fixed.Decimal
	ok        bool
	checked   time.Time
}

func (g *grids) get(ctx context.Context, symbol string) grid {
	if g == nil || g.c == nil {
		return grid{}
	}
	g.mu.Lock()
	gr, ok := g.known[symbol]
	g.mu.Unlock()
	if ok && (gr.ok || time.Since(gr.checked) < 10*time.Second) {
		return gr
	}
	gr = grid{checked: time.Now()}
	if resp, err := g.c.GetInstrument(ctx, &ordersv1.GetInstrumentRequest{Symbol: symbol}); err == nil {
		tick, err1 := fixed.Parse(resp.GetInstrument().GetTickSize())
		lot, err2 := fixed.Parse(resp.GetInstrument().GetLotSize())
		gr.tick, gr.lot, gr.ok = tick, lot, err1 == nil && err2 == nil
	}
	g.mu.Lock()
	g.known[symbol] = gr
	g.mu.Unlock()
	return gr
}

// scale is n units of unit as a decimal string (n itself without a unit).
func scale(n int64, unit fixed.Decimal, ok bool) string {
	if ok {
		if d, fits := fixed.FromInt(n); fits {
			if v, fits := d.Mul(unit); fits {
				return v.Text()
			}
		}
	}
	return strconv.FormatInt(n, 10)
}
