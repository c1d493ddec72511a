package ordersv1

// Hand-written request validation (see coordinatorv1's validate.go for why),
// called by the validator interceptor before any handler runs; every error
// names the field. Whether a price or quantity lies on the instrument's grid
// is the service's check (it needs the instrument), also INVALID_ARGUMENT.

import (
	"github.com/tradsys/mesh/proto/validate"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	// MaxIntDigits bounds the integer digits of every decimal (pkg/fixed's
	// range).
	MaxIntDigits = 11
	// MaxPageSize bounds ListOrders' page_size; DefaultPageSize is used for 0.
	MaxPageSize, DefaultPageSize = 1000, 100
	// MaxPageTokenLen bounds page tokens.
	MaxPageTokenLen = 128
)

func decimal(field, s string) error { return validate.PositiveDecimal(field, s, MaxIntDigits) }

func optionalDecimal(field, s string) error {
	return validate.OptionalPositiveDecimal(field, s, MaxIntDigits)
}

func checkOrderID(field string, v uint64) error {
	if v == 0 {
		return validate.Errorf(field, "must not be zero")
	}
	return nil
}

func checkTime(field string, t *timestamppb.Timestamp) error {
	if t == nil {
		return nil
	}
	if err := t.CheckValid(); err != nil {
		return validate.Errorf(field, "%v", err)
	}
	return nil
}

func (r *SubmitOrderRequest) Validate() error {
	if err := validate.Order(r.GetAccount(), r.GetSymbol(), r.GetSide(), Side_SIDE_BUY, Side_SIDE_SELL); err != nil {
		return err
	}
	if err := validate.ID("client_order_id", r.GetClientOrderId()); err != nil {
		return err
	}
	switch r.GetType() {
	case OrderType_ORDER_TYPE_MARKET:
		if r.GetPrice() != "" {
			return validate.Errorf("price", "must be empty for a market order, got %q", r.GetPrice())
		}
	case OrderType_ORDER_TYPE_LIMIT, OrderType_ORDER_TYPE_IOC, OrderType_ORDER_TYPE_FOK, OrderType_ORDER_TYPE_POST_ONLY:
		if err := decimal("price", r.GetPrice()); err != nil {
			return err
		}
	default:
		return validate.Errorf("type", "%v is not a known order type", r.GetType())
	}
	return decimal("quantity", r.GetQuantity())
}

// SubmitOrdersRequest has no Validate on purpose: the validator interceptor
// would end the whole stream at the first bad message. The handler checks
// each message's order itself and answers a bad one with an error; the
// stream goes on.

func (r *CancelOrderRequest) Validate() error {
	if err := validate.ID("account", r.GetAccount()); err != nil {
		return err
	}
	return checkOrderID("order_id", r.GetOrderId())
}

func (r *ReplaceOrderRequest) Validate() error {
	if err := validate.ID("account", r.GetAccount()); err != nil {
		return err
	}
	if err := checkOrderID("order_id", r.GetOrderId()); err != nil {
		return err
	}
	return replaceTerms(r.GetPrice(), r.GetQuantity())
}

// replaceTerms checks a replace's new price and/or total quantity: either
// may be empty (kept as it is), not both.
func replaceTerms(price, quantity string) error {
	if price == "" && quantity == "" {
		return validate.Errorf("price", "a replace needs a new price, a new quantity or both")
	}
	if err := optionalDecimal("price", price); err != nil {
		return err
	}
	return optionalDecimal("quantity", quantity)
}

// ReplaceTerms is ReplaceOrderRequest's check of price and quantity, for
// APIs that pass a replace on (the gateway).
func ReplaceTerms(price, quantity string) error { return replaceTerms(price, quantity) }

func (r *GetOrderRequest) Validate() error { return checkOrderID("order_id", r.GetOrderId()) }

func (r *ListOrdersRequest) Validate() error {
	if a := r.GetAccount(); a != "" {
		if err := validate.ID("account", a); err != nil {
			return err
		}
	}
	if s := r.GetSymbol(); s != "" {
		if err := validate.Symbol("symbol", s); err != nil {
			return err
		}
	}
	// Each order is checked against every listed status while the store
	// is read-locked: a list longer than the statuses there are only
	// repeats them, and would stall writers for a hostile caller.
	if n, most := len(r.GetStatuses()), len(OrderStatus_name)-1; n > most {
		return validate.Errorf("statuses", "%d listed; there are %d order statuses", n, most)
	}
	for i, s := range r.GetStatuses() {
		if _, ok := OrderStatus_name[int32(s)]; !ok || s == OrderStatus_ORDER_STATUS_UNSPECIFIED {
			return validate.Errorf("statuses", "element %d: %v is not an order status", i, s)
		}
	}
	if err := checkTime("created_after", r.GetCreatedAfter()); err != nil {
		return err
	}
	if err := checkTime("created_before", r.GetCreatedBefore()); err != nil {
		return err
	}
	if n := r.GetPageSize(); n < 0 || n > MaxPageSize {
		return validate.Errorf("page_size", "%d is outside 1..%d (0 means %d)", n, MaxPageSize, DefaultPageSize)
	}
	if len(r.GetPageToken()) > MaxPageTokenLen {
		return validate.Errorf("page_token", "longer than %d bytes", MaxPageTokenLen)
	}
	return nil
}

func (r *StreamOrderUpdatesRequest) Validate() error {
	if a := r.GetAccount(); a != "" {
		if err := validate.ID("account", a); err != nil {
			return err
		}
	}
	if s := r.GetSymbol(); s != "" {
		return validate.Symbol("symbol", s)
	}
	return nil
}

func (r *GetPositionsRequest) Validate() error {
	if a := r.GetAccount(); a != "" {
		if err := validate.ID("account", a); err != nil {
			return err
		}
	}
	if s := r.GetSymbol(); s != "" {
		return validate.Symbol("symbol", s)
	}
	return nil
}

func (r *CreateInstrumentRequest) Validate() error {
	in := r.GetInstrument()
	if in == nil {
		return validate.Errorf("instrument", "must be set")
	}
	if err := validate.Symbol("instrument.symbol", in.GetSymbol()); err != nil {
		return err
	}
	if err := decimal("instrument.tick_size", in.GetTickSize()); err != nil {
		return err
	}
	if err := decimal("instrument.lot_size", in.GetLotSize()); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{
		{"instrument.min_price", in.GetMinPrice()}, {"instrument.max_price", in.GetMaxPrice()},
		{"instrument.min_quantity", in.GetMinQuantity()}, {"instrument.max_quantity", in.GetMaxQuantity()},
	} {
		if err := optionalDecimal(f.name, f.v); err != nil {
			return err
		}
	}
	switch in.GetStatus() {
	case InstrumentStatus_INSTRUMENT_STATUS_UNSPECIFIED, InstrumentStatus_INSTRUMENT_STATUS_TRADING, InstrumentStatus_INSTRUMENT_STATUS_HALTED:
	default:
		return validate.Errorf("instrument.status", "%v is not an instrument status", in.GetStatus())
	}
	return nil
}

func (r *GetInstrumentRequest) Validate() error   { return validate.Symbol("symbol", r.GetSymbol()) }
func (r *ListInstrumentsRequest) Validate() error { return nil }

func (r *UpdateInstrumentStatusRequest) Validate() error {
	if err := validate.Symbol("symbol", r.GetSymbol()); err != nil {
		return err
	}
	switch r.GetStatus() {
	case InstrumentStatus_INSTRUMENT_STATUS_TRADING, InstrumentStatus_INSTRUMENT_STATUS_HALTED:
		return nil
	}
	return validate.Errorf("status", "%v is not INSTRUMENT_STATUS_TRADING or INSTRUMENT_STATUS_HALTED", r.GetStatus())
}
