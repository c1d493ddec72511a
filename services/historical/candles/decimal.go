// Package candles is the OHLCV domain of the historical-data service: exact
// fixed-point prices and volumes, candle intervals, a streaming trade
// aggregator, roll-up of 1m candles, a Binance kline CSV loader, a bbolt
// backed store and a byte-bounded read-through cache.
//
// The package holds no gRPC or protobuf types; the service layer converts.
package candles

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
)

// Fixed is a signed fixed-point decimal with FixedDecimals fractional digits:
// the value v represents v / Scale. All candle arithmetic is done on Fixed
// (integer) values, never on floats.
type Fixed int64

const (
	// FixedDecimals is the number of fractional decimal digits of a Fixed.
	FixedDecimals = 8
	// Scale is 10^FixedDecimals: Fixed(Scale) is 1.0.
	Scale = 100_000_000

	// MaxFixed and MinFixed bound the representable range
	// (±92233720368.54775807).
	MaxFixed Fixed = math.MaxInt64
	MinFixed Fixed = math.MinInt64
)

// ErrInvalidDecimal is matched (errors.Is) by every *DecimalError.
var ErrInvalidDecimal = errors.New("invalid decimal")

// DecimalError reports why a decimal string was rejected.
type DecimalError struct {
	Input  string // the rejected input (truncated to 64 bytes)
	Offset int    // byte offset of the problem, -1 when not positional
	Reason string
}

func (e *DecimalError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("invalid decimal %q: %s at offset %d", e.Input, e.Reason, e.Offset)
	}
	return fmt.Sprintf("invalid decimal %q: %s", e.Input, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidDecimal) true.
func (e *DecimalError) Is(target error) bool { return target == ErrInvalidDecimal }

func decErr[T ~string | ~[]byte](s T, off int, reason string) error {
	in := string(s)
	if len(in) > 64 {
		in = in[:64] + "..."
	}
	return &DecimalError{Input: in, Offset: off, Reason: reason}
}

// ParseFixed parses a plain decimal string such as "86830.01000000",
// "-0.5", "+12" or "7." into a Fixed, exactly.
//
// Accepted syntax: an optional sign, digits, an optional '.' and fractional
// digits, with at least one digit in total. Fractional digits beyond
// FixedDecimals are accepted only when they are all zero (no silent
// rounding). Rejected with a *DecimalError: empty input, whitespace,
// exponents, thousands separators, NaN/Inf, more than one sign or point,
// precision loss, and values outside [MinFixed, MaxFixed].
func ParseFixed(s string) (Fixed, error) { return parseFixed(s) }

// ParseFixedBytes is ParseFixed for a byte slice; it does not allocate on
// success.
func ParseFixedBytes(b []byte) (Fixed, error) { return parseFixed(b) }

// pow10 holds 10^0 .. 10^8.
var pow10 = [FixedDecimals + 1]uint64{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000}

func parseFixed[T ~string | ~[]byte](s T) (Fixed, error) {
	n := len(s)
	if n == 0 {
		return 0, decErr(s, -1, "empty string")
	}
	i := 0
	neg := false
	switch s[0] {
	case '-':
		neg = true
		i++
	case '+':
		i++
	}
	var mag uint64 // magnitude in units of 10^-FixedDecimals
	const maxMag = uint64(math.MaxInt64) + 1
	intDigits, fracDigits := 0, 0
	seenPoint := false
	for ; i < n; i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			d := uint64(c - '0')
			if seenPoint {
				if fracDigits >= FixedDecimals {
					if d != 0 {
						return 0, decErr(s, i, fmt.Sprintf("more than %d significant fractional digits", FixedDecimals))
					}
					fracDigits++
					continue
				}
				fracDigits++
				mag += d * pow10[FixedDecimals-fracDigits]
				if mag > maxMag {
					return 0, decErr(s, i, "value out of range")
				}
				continue
			}
			intDigits++
			// mag = mag*10 + d*Scale, with overflow checks.
			hi, lo := bits.Mul64(mag, 10)
			if hi != 0 {
				return 0, decErr(s, i, "value out of range")
			}
			add := d * Scale
			sum, carry := bits.Add64(lo, add, 0)
			if carry != 0 || sum > maxMag {
				return 0, decErr(s, i, "value out of range")
			}
			mag = sum
		case c == '.':
			if seenPoint {
				return 0, decErr(s, i, "second decimal point")
			}
			seenPoint = true
		case c == '-' || c == '+':
			return 0, decErr(s, i, "misplaced sign")
		case c == 'e' || c == 'E':
			return 0, decErr(s, i, "exponent not supported")
		default:
			return 0, decErr(s, i, "unexpected character "+strconv.QuoteRune(rune(c)))
		}
	}
	if intDigits+fracDigits == 0 {
		return 0, decErr(s, -1, "no digits")
	}
	if neg {
		if mag == maxMag {
			return MinFixed, nil
		}
		return -Fixed(mag), nil
	}
	if mag == maxMag {
		return 0, decErr(s, -1, "value out of range")
	}
	return Fixed(mag), nil
}

// MustFixed parses s and panics on error; for constants in tests and examples.
func MustFixed(s string) Fixed {
	f, err := ParseFixed(s)
	if err != nil {
		panic(err)
	}
	return f
}

// FixedFromInt returns the Fixed for the integer n, reporting overflow.
func FixedFromInt(n int64) (Fixed, bool) {
	if n > math.MaxInt64/Scale || n < math.MinInt64/Scale {
		return 0, false
	}
	return Fixed(n * Scale), true
}

// String formats f with exactly FixedDecimals fractional digits, the same
// layout Binance uses ("86830.01000000"). ParseFixed(f.String()) == f.
func (f Fixed) String() string {
	var buf [24]byte
	return string(f.AppendTo(buf[:0]))
}

// AppendTo appends the String form of f to dst.
func (f Fixed) AppendTo(dst []byte) []byte {
	u := uint64(f)
	if f < 0 {
		dst = append(dst, '-')
		u = uint64(-(f + 1)) + 1 // safe for MinFixed
	}
	dst = strconv.AppendUint(dst, u/Scale, 10)
	frac := u % Scale
	var fb [FixedDecimals]byte
	for i := FixedDecimals - 1; i >= 0; i-- {
		fb[i] = byte('0' + frac%10)
		frac /= 10
	}
	dst = append(dst, '.')
	return append(dst, fb[:]...)
}

// Float64 converts f to the nearest float64. For display only; no candle
// arithmetic uses it.
func (f Fixed) Float64() float64 {
	return float64(f/Scale) + float64(f%Scale)/Scale
}

// MulFixed returns a*b truncated toward zero to FixedDecimals digits, using
// 128-bit intermediate arithmetic; ok is false on overflow.
func MulFixed(a, b Fixed) (Fixed, bool) {
	neg := (a < 0) != (b < 0)
	ua, ub := absU(a), absU(b)
	hi, lo := bits.Mul64(ua, ub)
	if hi >= Scale { // quotient would not fit in 64 bits
		return 0, false
	}
	q, _ := bits.Div64(hi, lo, Scale)
	if neg {
		if q > uint64(math.MaxInt64)+1 {
			return 0, false
		}
		return Fixed(-int64(q-1) - 1), true
	}
	if q > math.MaxInt64 {
		return 0, false
	}
	return Fixed(q), true
}

func absU(f Fixed) uint64 {
	if f < 0 {
		return uint64(-(f + 1)) + 1
	}
	return uint64(f)
}

// AddFixed returns a+b; ok is false on overflow.
func AddFixed(a, b Fixed) (Fixed, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}
