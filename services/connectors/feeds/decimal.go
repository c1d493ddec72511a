package feeds

import (
	"errors"
	"math"
	"strconv"
)

// Scale is the fixed-point scale of Decimal: one unit is 1e-8.
const Scale = 100_000_000

// ScaleDigits is the number of fractional digits a Decimal holds exactly.
const ScaleDigits = 8

// Decimal is an exact fixed-point number with 8 fractional digits, stored as
// an int64 count of 1e-8 units (so 1.5 is Decimal(150_000_000)). Its range is
// about ±92,233,720,368.54775807.
type Decimal int64

// Errors returned (wrapped) by ParseDecimal.
var (
	ErrDecimalSyntax    = errors.New("invalid decimal syntax")
	ErrDecimalRange     = errors.New("decimal out of range")
	ErrDecimalPrecision = errors.New("decimal has more than 8 significant fractional digits")
)

// DecimalError describes a string that could not be parsed as a Decimal.
type DecimalError struct {
	Input string
	Err   error // ErrDecimalSyntax, ErrDecimalRange or ErrDecimalPrecision
}

func (e *DecimalError) Error() string {
	in := e.Input
	if len(in) > 40 {
		in = in[:40] + "..."
	}
	return strconv.Quote(in) + ": " + e.Err.Error()
}

func (e *DecimalError) Unwrap() error { return e.Err }

// ParseDecimal parses a plain decimal string such as "86780.01000000",
// "-0.5", "+12" or "7." into a Decimal, exactly. Exponents, spaces,
// thousands separators, "NaN"/"Inf" and more than 8 non-zero fractional
// digits are rejected (trailing zeros beyond the 8th digit are accepted).
func ParseDecimal(s string) (Decimal, error) {
	d, err := parseDecimalBytes(s)
	if err != nil {
		return 0, &DecimalError{Input: s, Err: err}
	}
	return d, nil
}

// parseDecimalBytes works on anything string-like without allocating.
func parseDecimalBytes[T string | []byte](s T) (Decimal, error) {
	n := len(s)
	if n == 0 {
		return 0, ErrDecimalSyntax
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
	var v uint64 // magnitude in 1e-8 units
	const limit = uint64(math.MaxInt64) + 1
	intDigits, fracDigits := 0, 0
	for ; i < n && s[i] >= '0' && s[i] <= '9'; i++ {
		intDigits++
		v = v*10 + uint64(s[i]-'0') // v <= limit/Scale < 2^37: cannot overflow
		if v > limit/Scale {
			return 0, ErrDecimalRange
		}
	}
	v *= Scale
	if i < n && s[i] == '.' {
		i++
		mul := uint64(Scale / 10)
		for ; i < n && s[i] >= '0' && s[i] <= '9'; i++ {
			fracDigits++
			dgt := uint64(s[i] - '0')
			if fracDigits > ScaleDigits {
				if dgt != 0 {
					return 0, ErrDecimalPrecision
				}
				continue
			}
			v += dgt * mul
			mul /= 10
		}
	}
	if i != n || intDigits+fracDigits == 0 {
		return 0, ErrDecimalSyntax
	}
	if neg {
		if v > limit {
			return 0, ErrDecimalRange
		}
		if v == limit {
			return Decimal(math.MinInt64), nil
		}
		return Decimal(-int64(v)), nil
	}
	if v > math.MaxInt64 {
		return 0, ErrDecimalRange
	}
	return Decimal(v), nil
}

// MustDecimal is ParseDecimal for constants; it panics on error.
func MustDecimal(s string) Decimal {
	d, err := ParseDecimal(s)
	if err != nil {
		panic("feeds.MustDecimal: " + err.Error())
	}
	return d
}

// DecimalFromInt returns the Decimal for a whole number n (no range check
// beyond int64 wrap-around; |n| must be below ~9.2e10).
func DecimalFromInt(n int64) Decimal { return Decimal(n * Scale) }

// String formats d with exactly 8 fractional digits, e.g. "86780.01000000".
func (d Decimal) String() string {
	var buf [32]byte
	return string(d.AppendTo(buf[:0]))
}

// AppendTo appends the String form of d to b.
func (d Decimal) AppendTo(b []byte) []byte {
	u := uint64(d)
	if d < 0 {
		b = append(b, '-')
		u = uint64(-(d + 1)) + 1
	}
	b = strconv.AppendUint(b, u/Scale, 10)
	frac := u % Scale
	var f [ScaleDigits]byte
	for k := ScaleDigits - 1; k >= 0; k-- {
		f[k] = byte('0' + frac%10)
		frac /= 10
	}
	b = append(b, '.')
	return append(b, f[:]...)
}

// Float64 returns an approximate float value, for display and statistics
// only; never use it for prices that are compared or summed.
func (d Decimal) Float64() float64 {
	return float64(d/Scale) + float64(d%Scale)/Scale
}

// MarshalText implements encoding.TextMarshaler (exact string form).
func (d Decimal) MarshalText() ([]byte, error) { return d.AppendTo(nil), nil }

// UnmarshalText implements encoding.TextUnmarshaler using ParseDecimal.
func (d *Decimal) UnmarshalText(b []byte) error {
	v, err := ParseDecimal(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}
