package matchingv1

// Hand-written request validation (see coordinatorv1's validate.go for why),
// called by the validator interceptor before any handler runs; every error
// names the field, and the interceptor turns it into INVALID_ARGUMENT.

import (
	"github.com/tradsys/mesh/proto/validate"
	"strings"
)

const (
	// MaxSymbolLen is the longest symbol, the same in every service.
	MaxSymbolLen = validate.MaxSymbolLen
	// MaxPrice and MaxQuantity are the engine's input limits.
	MaxPrice    int64 = 1 << 48
	MaxQuantity int64 = 1 << 40
	// MaxDepth bounds GetOrderBook's depth; DefaultDepth is used for 0.
	MaxDepth, DefaultDepth = 1000, 10
	// MaxAlgorithmLen bounds algorithm names.
	MaxAlgorithmLen = 64
)

func checkOrderID(field string, v uint64) error {
	if v == 0 {
		return validate.Errorf(field, "must not be zero")
	}
	return nil
}

func checkPrice(field string, v int64) error {
	if v <= 0 || v > MaxPrice {
		return validate.Errorf(field, "%d ticks is outside 1..%d", v, MaxPrice)
	}
	return nil
}

func checkQuantity(field string, v int64) error {
	if v <= 0 || v > MaxQuantity {
		return validate.Errorf(field, "%d lots is outside 1..%d", v, MaxQuantity)
	}
	return nil
}

func checkAlgorithm(field, v string) error {
	switch {
	case v == "":
		return validate.Errorf(field, "must not be empty")
	case len(v) > MaxAlgorithmLen:
		return validate.Errorf(field, "longer than %d bytes", MaxAlgorithmLen)
	case strings.ContainsAny(v, "\x00\n\r\t /"):
		return validate.Errorf(field, "must not contain whitespace, '/' or NUL")
	}
	return nil
}

// validateOrder checks a submission; prefix names the enclosing field
// ("" or "order.").
func (r *SubmitOrderRequest) validate(prefix string) error {
	if r == nil {
		return validate.Errorf(strings.TrimSuffix(prefix, "."), "must be set")
	}
	if err := validate.Symbol(prefix+"symbol", r.GetSymbol()); err != nil {
		return err
	}
	if err := checkOrderID(prefix+"order_id", r.GetOrderId()); err != nil {
		return err
	}
	if err := validate.Side(prefix+"side", r.GetSide(), Side_SIDE_BUY, Side_SIDE_SELL); err != nil {
		return err
	}
	switch r.GetType() {
	case OrderType_ORDER_TYPE_MARKET:
		if r.GetPrice() != 0 {
			return validate.Errorf(prefix+"price", "must be 0 for a market order, got %d", r.GetPrice())
		}
	case OrderType_ORDER_TYPE_LIMIT, OrderType_ORDER_TYPE_IOC, OrderType_ORDER_TYPE_FOK, OrderType_ORDER_TYPE_POST_ONLY:
		if err := checkPrice(prefix+"price", r.GetPrice()); err != nil {
			return err
		}
	default:
		return validate.Errorf(prefix+"type", "%v is not a known order type", r.GetType())
	}
	return checkQuantity(prefix+"quantity", r.GetQuantity())
}

func (r *SubmitOrderRequest) Validate() error { return r.validate("") }

func (r *SubmitOrdersRequest) Validate() error { return r.GetOrder().validate("order.") }

func (r *CancelOrderRequest) Validate() error {
	if err := validate.Symbol("symbol", r.GetSymbol()); err != nil {
		return err
	}
	return checkOrderID("order_id", r.GetOrderId())
}

func (r *ReplaceOrderRequest) Validate() error {
	if err := validate.Symbol("symbol", r.GetSymbol()); err != nil {
		return err
	}
	if err := checkOrderID("order_id", r.GetOrderId()); err != nil {
		return err
	}
	if err := checkPrice("price", r.GetPrice()); err != nil {
		return err
	}
	return checkQuantity("quantity", r.GetQuantity())
}

func (r *GetOrderRequest) Validate() error {
	if err := validate.Symbol("symbol", r.GetSymbol()); err != nil {
		return err
	}
	return checkOrderID("order_id", r.GetOrderId())
}

func (r *GetOrderBookRequest) Validate() error {
	if err := validate.Symbol("symbol", r.GetSymbol()); err != nil {
		return err
	}
	if d := r.GetDepth(); d < 0 || d > MaxDepth {
		return validate.Errorf("depth", "%d is outside 1..%d (0 means %d)", d, MaxDepth, DefaultDepth)
	}
	return nil
}

func (r *StreamTradesRequest) Validate() error { return validate.Symbol("symbol", r.GetSymbol()) }

func (r *LoadAlgorithmRequest) Validate() error   { return checkAlgorithm("name", r.GetName()) }
func (r *UnloadAlgorithmRequest) Validate() error { return checkAlgorithm("name", r.GetName()) }
func (r *ListAlgorithmsRequest) Validate() error  { return nil }

func (r *SetSymbolAlgorithmRequest) Validate() error {
	if err := validate.Symbol("symbol", r.GetSymbol()); err != nil {
		return err
	}
	return checkAlgorithm("algorithm", r.GetAlgorithm())
}
