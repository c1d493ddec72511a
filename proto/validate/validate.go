// Package validate holds the request checks every tradsys API shares, so
// that a symbol, a name or a decimal means the same thing in every service
// (a symbol matching accepts must be one historical can store). The
// generated packages' hand-written validate.go files use it; errors name
// the field, and the validator interceptor turns them into INVALID_ARGUMENT.
package validate

import (
	"fmt"
	"strings"
)

// MaxSymbolLen bounds instrument symbols everywhere.
const MaxSymbolLen = 32

// Errorf is an error naming the field: "invalid <field>: <reason>".
func Errorf(field, format string, args ...any) error {
	return fmt.Errorf("invalid %s: %s", field, fmt.Sprintf(format, args...))
}

// Symbol accepts 1..MaxSymbolLen bytes of [A-Za-z0-9._-].
func Symbol(field, s string) error {
	if s == "" {
		return Errorf(field, "must not be empty")
	}
	if len(s) > MaxSymbolLen {
		return Errorf(field, "longer than %d bytes", MaxSymbolLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' {
			continue
		}
		return Errorf(field, "%q has byte %q at offset %d (want [A-Za-z0-9._-])", s, c, i)
	}
	return nil
}

// PositiveDecimal accepts a plain decimal above zero with at most 8
// fractional digits and at most maxIntDigits integer digits ("86780.01").
func PositiveDecimal(field, s string, maxIntDigits int) error {
	switch {
	case s == "":
		return Errorf(field, "must not be empty")
	case len(s) > 24:
		return Errorf(field, "%q is longer than 24 characters", s[:24]+"...")
	case s[0] == '-' && PositiveDecimal(field, s[1:], maxIntDigits) == nil:
		// A plain decimal but for its sign: say what is wrong with it.
		return Errorf(field, "%q must be more than zero", s)
	}
	digits, dot, frac, nonzero := 0, false, 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
			if dot {
				frac++
			}
			if c != '0' {
				nonzero = true
			}
		case c == '.' && !dot:
			dot = true
		default:
			return Errorf(field, "%q is not a plain decimal", s)
		}
	}
	switch {
	case digits == 0:
		return Errorf(field, "%q is not a plain decimal", s)
	case frac > 8:
		return Errorf(field, "%q has more than 8 fractional digits", s)
	case digits-frac > maxIntDigits:
		return Errorf(field, "%q is too large", s)
	case !nonzero:
		return Errorf(field, "%q must be more than zero", s)
	}
	return nil
}

// MaxIDLen bounds account names and client order ids.
const MaxIDLen = 64

// ID accepts 1..MaxIDLen bytes of [A-Za-z0-9._:@-]: account names and
// client order ids, safe in keys, logs and URLs.
func ID(field, s string) error {
	if s == "" {
		return Errorf(field, "must not be empty")
	}
	if len(s) > MaxIDLen {
		return Errorf(field, "longer than %d bytes", MaxIDLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == ':' || c == '@' {
			continue
		}
		return Errorf(field, "%q has byte %q at offset %d (want [A-Za-z0-9._:@-])", s, c, i)
	}
	return nil
}

// SignedDecimal accepts a plain decimal, optionally negative, zero
// included, with at most 8 fractional digits and at most maxIntDigits
// integer digits ("-0.5", "0").
func SignedDecimal(field, s string, maxIntDigits int) error {
	switch {
	case s == "":
		return Errorf(field, "must not be empty")
	case len(s) > 25:
		return Errorf(field, "%q is longer than 25 characters", s[:25]+"...")
	}
	u := strings.TrimPrefix(s, "-")
	digits, dot, frac := 0, false, 0
	for i := 0; i < len(u); i++ {
		switch c := u[i]; {
		case c >= '0' && c <= '9':
			digits++
			if dot {
				frac++
			}
		case c == '.' && !dot:
			dot = true
		default:
			return Errorf(field, "%q is not a plain decimal", s)
		}
	}
	switch {
	case digits == 0:
		return Errorf(field, "%q is not a plain decimal", s)
	case frac > 8:
		return Errorf(field, "%q has more than 8 fractional digits", s)
	case digits-frac > maxIntDigits:
		return Errorf(field, "%q is too large", s)
	}
	return nil
}

// OptionalPositiveDecimal is PositiveDecimal for a field that may be empty.
func OptionalPositiveDecimal(field, s string, maxIntDigits int) error {
	if s == "" {
		return nil
	}
	return PositiveDecimal(field, s, maxIntDigits)
}

// Enum is a generated protobuf enum (each API has its own Side).
type Enum interface {
	~int32
	String() string
}

// Order checks what every order-shaped request (orders' SubmitOrder,
// risk's ValidateOrder) starts with: the account (ID), the symbol, and a
// side that is buy or sell.
func Order[E Enum](account, symbol string, side, buy, sell E) error {
	if err := ID("account", account); err != nil {
		return err
	}
	if err := Symbol("symbol", symbol); err != nil {
		return err
	}
	return Side("side", side, buy, sell)
}

// Side accepts an order side that is buy or sell.
func Side[E Enum](field string, side, buy, sell E) error {
	if side != buy && side != sell {
		return Errorf(field, "%v is not %v or %v", side, buy, sell)
	}
	return nil
}
