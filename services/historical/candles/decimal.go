// Package candles is the OHLCV domain of the historical-data service: exact
// fixed-point prices and volumes, candle intervals, a streaming trade
// aggregator, roll-up of 1m candles, a Binance kline CSV loader, a bbolt
// backed store and a byte-bounded read-through cache.
//
// The package holds no gRPC or protobuf types; the service layer converts.
package candles

import "github.com/tradsys/mesh/pkg/fixed"

// Fixed is a signed fixed-point decimal with FixedDecimals fractional digits:
// the value v represents v / Scale. All candle arithmetic is done on Fixed
// (integer) values, never on floats. It is the shared fixed.Decimal; see
// that package for parsing rules and arithmetic.
type Fixed = fixed.Decimal

const (
	// FixedDecimals is the number of fractional decimal digits of a Fixed.
	FixedDecimals = fixed.ScaleDigits
	// Scale is 10^FixedDecimals: Fixed(Scale) is 1.0.
	Scale = fixed.Scale

	// MaxFixed and MinFixed bound the representable range
	// (±92233720368.54775807).
	MaxFixed = fixed.Max
	MinFixed = fixed.Min
)

// ErrInvalidDecimal is matched (errors.Is) by every *DecimalError.
var ErrInvalidDecimal = fixed.ErrInvalid

// DecimalError reports why a decimal string was rejected (input, offset,
// reason, and the fixed.ErrSyntax/ErrRange/ErrPrecision sentinel).
type DecimalError = fixed.ParseError

// ParseFixed is fixed.Parse: it parses a plain decimal string such as
// "86830.01000000", "-0.5", "+12" or "7." exactly, rejecting anything else
// (including precision loss and values outside [MinFixed, MaxFixed]) with a
// *DecimalError.
func ParseFixed(s string) (Fixed, error) { return fixed.Parse(s) }

// ParseFixedBytes is ParseFixed for a byte slice; it does not allocate on
// success.
func ParseFixedBytes(b []byte) (Fixed, error) { return fixed.ParseBytes(b) }

// MustFixed parses s and panics on error; for constants in tests and examples.
func MustFixed(s string) Fixed { return fixed.Must(s) }

// FixedFromInt returns the Fixed for the integer n, reporting overflow.
func FixedFromInt(n int64) (Fixed, bool) { return fixed.FromInt(n) }

// MulFixed returns a*b truncated toward zero to FixedDecimals digits, using
// 128-bit intermediate arithmetic; ok is false on overflow.
func MulFixed(a, b Fixed) (Fixed, bool) { return a.Mul(b) }

// AddFixed returns a+b; ok is false on overflow.
func AddFixed(a, b Fixed) (Fixed, bool) { return a.Add(b) }
