package feeds

import (
	"strconv"

	"github.com/tradsys/mesh/pkg/fixed"
)

// Decimal is an exact fixed-point number with 8 fractional digits, stored as
// an int64 count of 1e-8 units (so 1.5 is Decimal(150_000_000)). It is the
// shared fixed.Decimal; see that package for parsing rules and arithmetic.
type Decimal = fixed.Decimal

// Scale is the fixed-point scale of Decimal: one unit is 1e-8.
const Scale = fixed.Scale

// ScaleDigits is the number of fractional digits a Decimal holds exactly.
const ScaleDigits = fixed.ScaleDigits

// Errors wrapped by every *DecimalError from ParseDecimal (aliases of the
// fixed package sentinels).
var (
	ErrDecimalSyntax    = fixed.ErrSyntax
	ErrDecimalRange     = fixed.ErrRange
	ErrDecimalPrecision = fixed.ErrPrecision
)

// DecimalError describes a string that could not be parsed as a Decimal.
type DecimalError = fixed.ParseError

// ParseDecimal is fixed.Parse: it parses a plain decimal string such as
// "86780.01000000", "-0.5", "+12" or "7." exactly, rejecting exponents,
// spaces, thousands separators, NaN/Inf and more than 8 non-zero fractional
// digits with a *DecimalError.
func ParseDecimal(s string) (Decimal, error) { return fixed.Parse(s) }

// MustDecimal is ParseDecimal for constants; it panics on error.
func MustDecimal(s string) Decimal { return fixed.Must(s) }

// DecimalFromInt returns the Decimal for a whole number n. It panics when
// n*Scale does not fit (|n| above about 9.2e10); use fixed.FromInt to get
// an overflow flag instead.
func DecimalFromInt(n int64) Decimal {
	d, ok := fixed.FromInt(n)
	if !ok {
		panic("feeds.DecimalFromInt: " + strconv.FormatInt(n, 10) + " out of range")
	}
	return d
}
