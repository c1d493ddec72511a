// Package fixed provides Decimal, the exact fixed-point decimal used for
// prices, quantities and volumes across the services: a signed int64 count
// of 1e-8 units. Parsing is exact (no silent rounding) and all arithmetic is
// integer arithmetic with explicit overflow reporting; floats are for
// display only.
package fixed

import (
	"errors"
	"math"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

// Decimal is an exact signed fixed-point number with ScaleDigits fractional
// digits, stored as an int64 count of 1e-8 units: the value v represents
// v / Scale, so 1.5 is Decimal(150_000_000). Its range is [Min, Max], about
// ±92,233,720,368.54775807.
type Decimal int64

const (
	// ScaleDigits is the number of fractional decimal digits a Decimal holds
	// exactly.
	ScaleDigits = 8
	// Scale is 10^ScaleDigits: Decimal(Scale) is 1.0.
	Scale = 100_000_000

	// Max and Min bound the representable range
	// (92233720368.54775807 and -92233720368.54775808).
	Max Decimal = math.MaxInt64
	Min Decimal = math.MinInt64
)

// Errors reported by Parse and ParseBytes. Every *ParseError wraps exactly
// one of ErrSyntax, ErrRange or ErrPrecision, and also matches ErrInvalid.
var (
	// ErrInvalid is matched (errors.Is) by every *ParseError.
	ErrInvalid = errors.New("invalid decimal")
	// ErrSyntax: not a plain decimal (empty, no digits, whitespace,
	// exponent, thousands separator, NaN/Inf, misplaced sign, second point,
	// any other character).
	ErrSyntax = errors.New("invalid decimal syntax")
	// ErrRange: outside [Min, Max].
	ErrRange = errors.New("decimal out of range")
	// ErrPrecision: a non-zero digit beyond the 8th fractional digit.
	ErrPrecision = errors.New("decimal has more than 8 significant fractional digits")
)

// maxErrInput is how much of a rejected input a ParseError keeps.
const maxErrInput = 64

// ParseError reports why a string was rejected by Parse or ParseBytes.
type ParseError struct {
	Input  string // the rejected input, truncated to 64 bytes (then "..." is appended)
	Offset int    // byte offset of the problem in the input, -1 when not positional
	Reason string // human readable, e.g. "unexpected character ','"
	Err    error  // ErrSyntax, ErrRange or ErrPrecision
}

func (e *ParseError) Error() string {
	b := make([]byte, 0, 32+len(e.Input)+len(e.Reason))
	b = append(b, "invalid decimal "...)
	b = strconv.AppendQuote(b, e.Input)
	b = append(b, ": "...)
	b = append(b, e.Reason...)
	if e.Offset >= 0 {
		b = append(b, " at offset "...)
		b = strconv.AppendInt(b, int64(e.Offset), 10)
	}
	return string(b)
}

// Unwrap returns the sentinel (ErrSyntax, ErrRange or ErrPrecision).
func (e *ParseError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrInvalid) true for every *ParseError.
func (e *ParseError) Is(target error) bool { return target == ErrInvalid }

// Parse parses a plain decimal string such as "86780.01000000", "-0.5",
// "+12", "7." or ".25" into a Decimal, exactly.
//
// Accepted syntax: an optional sign, digits, an optional '.' and fractional
// digits, with at least one digit in total. Fractional digits beyond the 8th
// are accepted only when they are all zero (no silent rounding). Rejected
// with a *ParseError: empty input, whitespace, exponents, thousands
// separators, NaN/Inf, more than one sign or point, any other character
// (ErrSyntax); values outside [Min, Max] (ErrRange); and precision loss
// (ErrPrecision). The first problem found scanning left to right is
// reported.
func Parse(s string) (Decimal, error) { return parse(s) }

// ParseBytes is Parse for a byte slice; it does not allocate on success.
func ParseBytes(b []byte) (Decimal, error) { return parse(b) }

func parse[T ~string | ~[]byte](s T) (Decimal, error) {
	n := len(s)
	if n == 0 {
		return 0, newError(s, -1, ErrSyntax, "empty string")
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
	const limit = uint64(math.MaxInt64) + 1 // magnitude of Min
	var v uint64                            // magnitude in 1e-8 units
	start := i
	for ; i < n && s[i] >= '0' && s[i] <= '9'; i++ {
		v = v*10 + uint64(s[i]-'0') // v <= limit/Scale < 2^37 before: cannot overflow
		if v > limit/Scale {
			return 0, newError(s, i, ErrRange, "value out of range")
		}
	}
	digits := i - start
	v *= Scale // <= 92233720368e8 < 2^64; the fraction adds < 1e8
	if i < n && s[i] == '.' {
		i++
		start = i
		mul := uint64(Scale / 10)
		for ; i < n && s[i] >= '0' && s[i] <= '9'; i++ {
			d := uint64(s[i] - '0')
			if mul == 0 { // beyond the 8th fractional digit
				if d != 0 {
					return 0, newError(s, i, ErrPrecision, "more than 8 significant fractional digits")
				}
				continue
			}
			v += d * mul
			mul /= 10
		}
		digits += i - start
	}
	if i != n {
		return 0, syntaxError(s, i)
	}
	if digits == 0 {
		return 0, newError(s, -1, ErrSyntax, "no digits")
	}
	if neg {
		if v > limit {
			return 0, newError(s, -1, ErrRange, "value out of range")
		}
		return Decimal(-int64(v-1) - 1), nil // safe for v == limit (Min)
	}
	if v > math.MaxInt64 {
		return 0, newError(s, -1, ErrRange, "value out of range")
	}
	return Decimal(v), nil
}

// syntaxError describes the unexpected byte s[i] (the scan stopped there).
func syntaxError[T ~string | ~[]byte](s T, i int) error {
	var reason string
	switch c := s[i]; {
	case c == '.':
		reason = "second decimal point" // the scan consumes the first one
	case c == '-' || c == '+':
		reason = "misplaced sign"
	case c == 'e' || c == 'E':
		reason = "exponent not supported"
	case c < utf8.RuneSelf:
		reason = "unexpected character " + strconv.QuoteRune(rune(c))
	default:
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && size <= 1 {
			reason = "unexpected byte 0x" + strconv.FormatUint(uint64(c), 16)
		} else {
			reason = "unexpected character " + strconv.QuoteRune(r)
		}
	}
	return newError(s, i, ErrSyntax, reason)
}

func newError[T ~string | ~[]byte](s T, off int, kind error, reason string) error {
	var in string
	if len(s) > maxErrInput {
		in = string(s[:maxErrInput]) + "..."
	} else {
		in = string(s)
	}
	return &ParseError{Input: in, Offset: off, Reason: reason, Err: kind}
}

// Must is Parse for constants in code and tests; it panics (with the
// *ParseError) on error.
func Must(s string) Decimal {
	d, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return d
}

// FromInt returns the Decimal for the whole number n; ok is false (and d is
// 0) when n*Scale does not fit.
func FromInt(n int64) (d Decimal, ok bool) {
	if n > math.MaxInt64/Scale || n < math.MinInt64/Scale {
		return 0, false
	}
	return Decimal(n * Scale), true
}

// String formats d with exactly 8 fractional digits, the layout Binance
// uses ("86780.01000000"). Parse(d.String()) == d for every d.
func (d Decimal) String() string {
	var buf [24]byte
	return string(d.AppendTo(buf[:0]))
}

// AppendTo appends the String form of d to b.
func (d Decimal) AppendTo(b []byte) []byte {
	u := d.abs()
	if d < 0 {
		b = append(b, '-')
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
// only; never use it for values that are compared or summed.
func (d Decimal) Float64() float64 {
	return float64(d/Scale) + float64(d%Scale)/Scale
}

// MarshalText implements encoding.TextMarshaler (the exact String form).
func (d Decimal) MarshalText() ([]byte, error) { return d.AppendTo(nil), nil }

// UnmarshalText implements encoding.TextUnmarshaler using ParseBytes.
func (d *Decimal) UnmarshalText(b []byte) error {
	v, err := ParseBytes(b)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Mul returns d*e truncated toward zero to 8 fractional digits, using a
// 128-bit intermediate product; ok is false (and the result 0) on overflow.
func (d Decimal) Mul(e Decimal) (Decimal, bool) {
	neg := (d < 0) != (e < 0)
	hi, lo := bits.Mul64(d.abs(), e.abs())
	if hi >= Scale { // the quotient would not fit in 64 bits
		return 0, false
	}
	q, _ := bits.Div64(hi, lo, Scale)
	if neg {
		if q > uint64(math.MaxInt64)+1 {
			return 0, false
		}
		return Decimal(-int64(q-1) - 1), true // q == 0 gives 0
	}
	if q > math.MaxInt64 {
		return 0, false
	}
	return Decimal(q), true
}

// Add returns d+e; ok is false (and the result 0) on overflow.
func (d Decimal) Add(e Decimal) (Decimal, bool) {
	s := d + e
	if (e > 0 && s < d) || (e < 0 && s > d) {
		return 0, false
	}
	return s, true
}

// abs returns |d| as a uint64 (correct for Min).
func (d Decimal) abs() uint64 {
	if d < 0 {
		return uint64(-(d + 1)) + 1
	}
	return uint64(d)
}

// pow10 are the powers of ten up to Scale; maxScaled and minScaled bound
// what FromScaled accepts at each digit count (no division on that path).
var (
	pow10     = [ScaleDigits + 1]int64{1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000}
	maxScaled = [ScaleDigits + 1]int64{}
	minScaled = [ScaleDigits + 1]int64{}
)

func init() {
	for k := range pow10 {
		maxScaled[k], minScaled[k] = math.MaxInt64/pow10[ScaleDigits-k], math.MinInt64/pow10[ScaleDigits-k]
	}
}

// Digits is the number of fractional digits d needs (0..ScaleDigits): the
// fewest digits for which Scaled is exact.
func (d Decimal) Digits() int {
	n := 0
	for {
		if _, exact := d.Scaled(n); exact {
			return n
		}
		n++
	}
}

// Scaled returns d as a whole number of 10^-digits units (1.25 at 2 digits
// is 125); ok is false when that is not exact (d has more fractional
// digits) or digits is outside 0..ScaleDigits.
//
// Each case divides by a constant, which the compiler turns into a
// multiplication: encoders call this for every value they send.
func (d Decimal) Scaled(digits int) (v int64, ok bool) {
	switch digits {
	case 0:
		return divExact(int64(d), 100_000_000)
	case 1:
		return divExact(int64(d), 10_000_000)
	case 2:
		return divExact(int64(d), 1_000_000)
	case 3:
		return divExact(int64(d), 100_000)
	case 4:
		return divExact(int64(d), 10_000)
	case 5:
		return divExact(int64(d), 1_000)
	case 6:
		return divExact(int64(d), 100)
	case 7:
		return divExact(int64(d), 10)
	case 8:
		return int64(d), true
	}
	return 0, false
}

func divExact(v, p int64) (int64, bool) {
	q := v / p
	if q*p != v {
		return 0, false
	}
	return q, true
}

// FromScaled returns the Decimal for v units of 10^-digits (the inverse of
// Scaled); ok is false when it does not fit or digits is outside
// 0..ScaleDigits.
func FromScaled(v int64, digits int) (d Decimal, ok bool) {
	if digits < 0 || digits > ScaleDigits || v > maxScaled[digits] || v < minScaled[digits] {
		return 0, false
	}
	return Decimal(v * pow10[ScaleDigits-digits]), true
}

// Text formats d in its shortest exact form, without trailing fractional
// zeros ("86780.01", "0.015", "12"): the form APIs answer with.
// Parse(d.Text()) == d for every d.
func (d Decimal) Text() string {
	var buf [24]byte
	b := d.AppendTo(buf[:0])
	n := len(b)
	for b[n-1] == '0' {
		n--
	}
	if b[n-1] == '.' {
		n--
	}
	return string(b[:n])
}
