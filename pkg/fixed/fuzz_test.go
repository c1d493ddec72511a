package fixed

import (
	"errors"
	"math"
	"math/big"
	"regexp"
	"strings"
	"testing"
)

var plainDecimal = regexp.MustCompile(`^[+-]?[0-9]*\.?[0-9]*$`)

// FuzzParse checks Parse against math/big: every accepted input must equal
// its exact rational value times 1e8; every rejected input must be out of
// syntax, out of range or lose precision, with a *ParseError whose sentinel
// matches the reason; Parse and ParseBytes must agree; and String (and
// MarshalText) must round trip. It merges the former feeds.FuzzParseDecimal
// and candles.FuzzParseFixed targets. Run it with
//
//	go test -run '^$' -fuzz '^FuzzParse$' -fuzztime 30s -fuzzminimizetime 2s -parallel 1 ./fixed/
//
// (without a short -fuzzminimizetime the engine can spend most of a short
// run minimizing new coverage-expanding inputs, showing 0 execs/s).
func FuzzParse(f *testing.F) {
	for _, s := range []string{"0", "1.5", "-0.00000001", "86830.00000000", "92233720368.54775807",
		"-92233720368.54775808", "92233720368.54775808", "1e5", ".", "7.", "+.5", "-.5", "1.000000000",
		"0.000000001", "--1", "1..2", "", " 1", "99999999999999999999999"} {
		f.Add(s)
	}
	scale := big.NewRat(Scale, 1)
	minR := new(big.Rat).SetInt64(math.MinInt64)
	maxR := new(big.Rat).SetInt64(math.MaxInt64)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Parse(s)
		gotB, errB := ParseBytes([]byte(s))
		if got != gotB || (err == nil) != (errB == nil) || (err != nil && err.Error() != errB.Error()) {
			t.Fatalf("string/bytes disagree on %q: %d,%v vs %d,%v", s, got, err, gotB, errB)
		}
		syntaxOK := plainDecimal.MatchString(s) && strings.ContainsAny(s, "0123456789")
		var want *big.Rat
		isInt, inRange := false, false
		if syntaxOK {
			// big.Rat rejects some plain forms ("7.", "-.5"); normalise.
			n := strings.TrimPrefix(s, "+")
			n = strings.TrimSuffix(n, ".")
			n = strings.Replace(n, "-.", "-0.", 1)
			if strings.HasPrefix(n, ".") {
				n = "0" + n
			}
			r, ok := new(big.Rat).SetString(n)
			if !ok {
				t.Fatalf("oracle cannot parse %q (normalised %q)", s, n)
			}
			want = r.Mul(r, scale)
			isInt = want.IsInt()
			inRange = want.Cmp(minR) >= 0 && want.Cmp(maxR) <= 0
		}
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error for %q is not a *ParseError matching ErrInvalid: %T %v", s, err, err)
			}
			if pe.Offset < -1 || pe.Offset >= len(s) || pe.Reason == "" || !strings.HasPrefix(s, strings.TrimSuffix(pe.Input, "...")) {
				t.Fatalf("bad error fields for %q: %+v", s, *pe)
			}
			nKinds := 0
			for _, k := range []error{ErrSyntax, ErrRange, ErrPrecision} {
				if errors.Is(err, k) {
					nKinds++
				}
			}
			if nKinds != 1 {
				t.Fatalf("error for %q matches %d sentinels: %v", s, nKinds, err)
			}
			switch {
			case !syntaxOK:
				// any kind: a range or precision problem may come first
			case errors.Is(err, ErrSyntax):
				t.Fatalf("syntax error for plain decimal %q: %v", s, err)
			case isInt && inRange:
				t.Fatalf("rejected valid %q: %v", s, err)
			case isInt && !errors.Is(err, ErrRange):
				t.Fatalf("exact out-of-range %q gave %v, want ErrRange", s, err)
			}
			return
		}
		if !syntaxOK || !isInt || !inRange {
			t.Fatalf("accepted %q = %d but oracle says syntax=%v exact=%v inRange=%v", s, got, syntaxOK, isInt, inRange)
		}
		if new(big.Rat).SetInt64(int64(got)).Cmp(want) != 0 {
			t.Fatalf("Parse(%q) = %d, want %s", s, got, want.RatString())
		}
		back, err := Parse(got.String())
		if err != nil || back != got {
			t.Fatalf("round trip of %q via %q gave %d, %v", s, got.String(), back, err)
		}
		txt, _ := got.MarshalText()
		var u Decimal
		if err := u.UnmarshalText(txt); err != nil || u != got || string(txt) != got.String() {
			t.Fatalf("text round trip of %q via %q gave %d, %v", s, txt, u, err)
		}
	})
}
