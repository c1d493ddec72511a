package oms

import (
	"errors"
	"fmt"

	"github.com/tradsys/mesh/pkg/fixed"
)

// Matching's input limits (matchingv1.MaxPrice, MaxQuantity): a price is
// 1..2^48 ticks, a quantity 1..2^40 lots.
const (
	MaxTicks int64 = 1 << 48
	MaxLots  int64 = 1 << 40
)

// ParseDecimal parses a request decimal, naming the field on error.
func ParseDecimal(field, s string) (fixed.Decimal, error) {
	d, err := fixed.Parse(s)
	if err != nil {
		var pe *fixed.ParseError
		if errors.Is(err, fixed.ErrRange) {
			return 0, &FieldError{Field: field, Reason: fmt.Sprintf("%q is above the largest decimal, %s", s, fixed.Max.Text())}
		}
		if errors.As(err, &pe) {
			return 0, &FieldError{Field: field, Reason: fmt.Sprintf("%q: %s", s, pe.Reason)}
		}
		return 0, &FieldError{Field: field, Reason: err.Error()}
	}
	return d, nil
}

// Check verifies an instrument definition: positive grids, limits on the
// grid and in order.
func (in *Instrument) Check() error {
	if in.TickSize <= 0 {
		return &FieldError{Field: "instrument.tick_size", Reason: "must be above zero"}
	}
	if in.LotSize <= 0 {
		return &FieldError{Field: "instrument.lot_size", Reason: "must be above zero"}
	}
	for _, f := range []struct {
		name string
		v    fixed.Decimal
		grid fixed.Decimal
		kind string
	}{
		{"instrument.min_price", in.MinPrice, in.TickSize, "tick"},
		{"instrument.max_price", in.MaxPrice, in.TickSize, "tick"},
		{"instrument.min_quantity", in.MinQuantity, in.LotSize, "lot"},
		{"instrument.max_quantity", in.MaxQuantity, in.LotSize, "lot"},
	} {
		if f.v < 0 {
			return &FieldError{Field: f.name, Reason: "must not be negative"}
		}
		if f.v%f.grid != 0 {
			return &FieldError{Field: f.name, Reason: fmt.Sprintf("%s is not a multiple of the %s size %s", f.v.Text(), f.kind, f.grid.Text())}
		}
	}
	if in.MaxPrice != 0 && in.MinPrice > in.MaxPrice {
		return &FieldError{Field: "instrument.min_price", Reason: fmt.Sprintf("%s is above max_price %s", in.MinPrice.Text(), in.MaxPrice.Text())}
	}
	if in.MaxQuantity != 0 && in.MinQuantity > in.MaxQuantity {
		return &FieldError{Field: "instrument.min_quantity", Reason: fmt.Sprintf("%s is above max_quantity %s", in.MinQuantity.Text(), in.MaxQuantity.Text())}
	}
	return nil
}

// Ticks converts a price onto the tick grid, exactly: a price off the grid
// or outside the instrument's limits is a FieldError naming field.
func (in *Instrument) Ticks(field string, price fixed.Decimal) (int64, error) {
	if price <= 0 {
		return 0, &FieldError{Field: field, Reason: "must be above zero"}
	}
	if price%in.TickSize != 0 {
		return 0, &FieldError{Field: field, Reason: fmt.Sprintf("%s is not on %s's price grid: not a multiple of the tick size %s",
			price.Text(), in.Symbol, in.TickSize.Text())}
	}
	if in.MinPrice != 0 && price < in.MinPrice {
		return 0, &FieldError{Field: field, Reason: fmt.Sprintf("%s is below %s's minimum price %s", price.Text(), in.Symbol, in.MinPrice.Text())}
	}
	if in.MaxPrice != 0 && price > in.MaxPrice {
		return 0, &FieldError{Field: field, Reason: fmt.Sprintf("%s is above %s's maximum price %s", price.Text(), in.Symbol, in.MaxPrice.Text())}
	}
	ticks := int64(price / in.TickSize)
	if ticks > MaxTicks {
		return 0, &FieldError{Field: field, Reason: fmt.Sprintf("%s is %d ticks, above matching's maximum of %d", price.Text(), ticks, MaxTicks)}
	}
	return ticks, nil
}

// Lots converts a quantity onto the lot grid, exactly (see Ticks).
func (in *Instrument) Lots(field string, qty fixed.Decimal) (int64, error) {
	if qty <= 0 {
		return 0, &FieldError{Field: field, Reason: "must be above zero"}
	}
	if qty%in.LotSize != 0 {
		return 0, &FieldError{Field: field, Reason: fmt.Sprintf("%s is not on %s's quantity grid: not a multiple of the lot size %s",
			qty.Text(), in.Symbol, in.LotSize.Text())}
	}
	if in.MinQuantity != 0 && qty < in.MinQuantity {
		return 0, &FieldError{Field: field, Reason: fmt.Sprintf("%s is below %s's minimum quantity %s", qty.Text(), in.Symbol, in.MinQuantity.Text())}
	}
	if in.MaxQuantity != 0 && qty > in.MaxQuantity {
		return 0, &FieldError{Field: field, Reason: fmt.Sprintf("%s is above %s's maximum quantity %s", qty.Text(), in.Symbol, in.MaxQuantity.Text())}
	}
	lots := int64(qty / in.LotSize)
	if lots > MaxLots {
		return 0, &FieldError{Field: field, Reason: fmt.Sprintf("%s is %d lots, above matching's maximum of %d", qty.Text(), lots, MaxLots)}
	}
	return lots, nil
}

// Price is ticks back on the decimal grid; ok is false on overflow.
func (in *Instrument) Price(ticks int64) (fixed.Decimal, bool) { return scale(ticks, in.TickSize) }

// Quantity is lots back as a decimal; ok is false on overflow.
func (in *Instrument) Quantity(lots int64) (fixed.Decimal, bool) { return scale(lots, in.LotSize) }

func scale(n int64, unit fixed.Decimal) (fixed.Decimal, bool) {
	if n < 0 || unit <= 0 || n > int64(fixed.Max)/int64(unit) {
		return 0, false
	}
	return fixed.Decimal(n * int64(unit)), true
}
