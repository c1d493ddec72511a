package gatewayv1

// Hand-written request validation (see coordinatorv1's validate.go for why),
// called by the validator interceptor before any handler runs; every error
// names the field. Grids and ownership are orders' checks.

import (
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	"github.com/tradsys/mesh/proto/validate"
)

func decimal(field, s string) error { return validate.PositiveDecimal(field, s, ordersv1.MaxIntDigits) }

func optionalAccount(s string) error {
	if s == "" {
		return nil
	}
	return validate.ID("account", s)
}

func (r *SubmitOrderRequest) Validate() error {
	if r.GetClientOrderId() != "" {
		if err := validate.ID("client_order_id", r.GetClientOrderId()); err != nil {
			return err
		}
	}
	if err := validate.Symbol("symbol", r.GetSymbol()); err != nil {
		return err
	}
	switch r.GetSide() {
	case ordersv1.Side_SIDE_BUY, ordersv1.Side_SIDE_SELL:
	default:
		return validate.Errorf("side", "must be SIDE_BUY or SIDE_SELL")
	}
	switch r.GetType() {
	case ordersv1.OrderType_ORDER_TYPE_MARKET:
		if r.GetPrice() != "" {
			return validate.Errorf("price", "a market order has no price")
		}
	case ordersv1.OrderType_ORDER_TYPE_LIMIT, ordersv1.OrderType_ORDER_TYPE_IOC, ordersv1.OrderType_ORDER_TYPE_FOK,
		ordersv1.OrderType_ORDER_TYPE_POST_ONLY:
		if err := decimal("price", r.GetPrice()); err != nil {
			return err
		}
	default:
		return validate.Errorf("type", "must be an order type (ORDER_TYPE_LIMIT, ...)")
	}
	if err := decimal("quantity", r.GetQuantity()); err != nil {
		return err
	}
	return optionalAccount(r.GetAccount())
}

func (r *ReplaceOrderRequest) Validate() error {
	if r.GetOrderId() == 0 {
		return validate.Errorf("order_id", "must not be zero")
	}
	if err := ordersv1.ReplaceTerms(r.GetPrice(), r.GetQuantity()); err != nil {
		return err
	}
	return optionalAccount(r.GetAccount())
}

func (r *CancelOrderRequest) Validate() error {
	if r.GetOrderId() == 0 {
		return validate.Errorf("order_id", "must not be zero")
	}
	return optionalAccount(r.GetAccount())
}

func (r *StreamOrderUpdatesRequest) Validate() error {
	if r.GetSymbol() != "" {
		return validate.Symbol("symbol", r.GetSymbol())
	}
	return nil
}

func (r *StreamTradesRequest) Validate() error { return validate.Symbol("symbol", r.GetSymbol()) }

func (r *GetOrderBookRequest) Validate() error {
	if err := validate.Symbol("symbol", r.GetSymbol()); err != nil {
		return err
	}
	if r.GetDepth() < 0 || r.GetDepth() > 50 {
		return validate.Errorf("depth", "%d is outside 0..50", r.GetDepth())
	}
	return nil
}

func (r *GetCandlesRequest) Validate() error {
	if err := validate.Symbol("symbol", r.GetSymbol()); err != nil {
		return err
	}
	switch r.GetInterval() {
	case "", "1m", "5m", "15m", "1h", "1d":
	default:
		return validate.Errorf("interval", "%q is not 1m, 5m, 15m, 1h or 1d", r.GetInterval())
	}
	if r.GetLimit() < 0 || r.GetLimit() > 1000 {
		return validate.Errorf("limit", "%d is outside 0..1000", r.GetLimit())
	}
	return nil
}
