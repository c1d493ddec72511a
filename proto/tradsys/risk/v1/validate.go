package riskv1

// Hand-written request validation (see coordinatorv1's validate.go for why),
// called by the validator interceptor before any handler runs; every error
// names the field.

import (
	"math"
	"strings"

	"github.com/tradsys/mesh/proto/validate"
)

const (
	// MaxIntDigits bounds the integer digits of every decimal (pkg/fixed's
	// range).
	MaxIntDigits = 11
	// MaxValidatorLen bounds validator names.
	MaxValidatorLen = 64
	// MaxOrdersPerSecond and MaxBurst bound the order-rate limits.
	MaxOrdersPerSecond = 1e6
	MaxBurst           = 1_000_000
)

func decimal(field, s string) error { return validate.PositiveDecimal(field, s, MaxIntDigits) }

func optionalDecimal(field, s string) error {
	return validate.OptionalPositiveDecimal(field, s, MaxIntDigits)
}

func optionalSigned(field, s string) error {
	if s == "" {
		return nil
	}
	return validate.SignedDecimal(field, s, MaxIntDigits)
}

func checkValidator(field, v string) error {
	switch {
	case v == "":
		return validate.Errorf(field, "must not be empty")
	case len(v) > MaxValidatorLen:
		return validate.Errorf(field, "longer than %d bytes", MaxValidatorLen)
	case strings.ContainsAny(v, "\x00\n\r\t /"):
		return validate.Errorf(field, "must not contain whitespace, '/' or NUL")
	}
	return nil
}

func (r *ValidateOrderRequest) Validate() error {
	if err := validate.Order(r.GetAccount(), r.GetSymbol(), r.GetSide(), Side_SIDE_BUY, Side_SIDE_SELL); err != nil {
		return err
	}
	if err := optionalDecimal("price", r.GetPrice()); err != nil {
		return err
	}
	if err := decimal("quantity", r.GetQuantity()); err != nil {
		return err
	}
	if err := optionalDecimal("tick_size", r.GetTickSize()); err != nil {
		return err
	}
	if err := optionalDecimal("lot_size", r.GetLotSize()); err != nil {
		return err
	}
	if err := optionalSigned("position", r.GetPosition()); err != nil {
		return err
	}
	if s := r.GetOpenQuantity(); s != "" && s != "0" {
		return decimal("open_quantity", s)
	}
	return nil
}

func (r *LoadValidatorRequest) Validate() error   { return checkValidator("name", r.GetName()) }
func (r *UnloadValidatorRequest) Validate() error { return checkValidator("name", r.GetName()) }
func (r *ListValidatorsRequest) Validate() error  { return nil }

func (r *GetLimitsRequest) Validate() error {
	if err := validate.ID("account", r.GetAccount()); err != nil {
		return err
	}
	if s := r.GetSymbol(); s != "" {
		return validate.Symbol("symbol", s)
	}
	return nil
}

func (r *SetLimitsRequest) Validate() error {
	l := r.GetLimits()
	if l == nil {
		return validate.Errorf("limits", "must be set")
	}
	if err := validate.ID("limits.account", l.GetAccount()); err != nil {
		return err
	}
	if s := l.GetSymbol(); s != "" {
		if err := validate.Symbol("limits.symbol", s); err != nil {
			return err
		}
	}
	for _, f := range []struct{ name, v string }{
		{"limits.max_order_quantity", l.GetMaxOrderQuantity()}, {"limits.max_notional", l.GetMaxNotional()},
		{"limits.max_position", l.GetMaxPosition()}, {"limits.price_band", l.GetPriceBand()},
	} {
		if err := optionalDecimal(f.name, f.v); err != nil {
			return err
		}
	}
	if v := l.GetOrdersPerSecond(); math.IsNaN(v) || v < 0 || v > MaxOrdersPerSecond {
		return validate.Errorf("limits.orders_per_second", "%v is outside 0..%v", v, MaxOrdersPerSecond)
	}
	if b := l.GetOrderBurst(); b < 0 || b > MaxBurst {
		return validate.Errorf("limits.order_burst", "%d is outside 0..%d", b, MaxBurst)
	}
	return nil
}
