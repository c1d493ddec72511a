package candles

import (
	"errors"
	"math"
	"math/big"
	"regexp"
	"strings"
	"testing"
)

func TestParseFixed(t *testing.T) {
	ok := []struct {
		in   string
		want Fixed
	}{
		{"0", 0},
		{"1", Scale},
		{"86830.00000000", 8683000000000},
		{"15.23832000", 1523832000},
		{"0.00000001", 1},
		{"-0.00000001", -1},
		{"+12", 12 * Scale},
		{"7.", 7 * Scale},
		{".5", Scale / 2},
		{"-0", 0},
		{"000123.4500", 12345000000},
		{"1.000000000000", Scale}, // trailing zeros beyond 8 digits are exact
		{"92233720368.54775807", MaxFixed},
		{"-92233720368.54775808", MinFixed},
		{"1322414.29340390", 132241429340390},
	}
	for _, tc := range ok {
		got, err := ParseFixed(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseFixed(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
		gotB, errB := ParseFixedBytes([]byte(tc.in))
		if errB != nil || gotB != tc.want {
			t.Errorf("ParseFixedBytes(%q) = %d, %v; want %d", tc.in, gotB, errB, tc.want)
		}
	}
	bad := []struct{ in, reason string }{
		{"", "empty string"},
		{"-", "no digits"},
		{".", "no digits"},
		{"+.", "no digits"},
		{"1.2.3", "second decimal point"},
		{"1e5", "exponent not supported"},
		{"1-2", "misplaced sign"},
		{"--1", "misplaced sign"},
		{" 1", "unexpected character ' '"},
		{"1 ", "unexpected character ' '"},
		{"1,000", "unexpected character ','"},
		{"NaN", "unexpected character 'N'"},
		{"Inf", "unexpected character 'I'"},
		{"0x10", "unexpected character 'x'"},
		{"1.000000001", "more than 8 significant fractional digits"},
		{"92233720368.54775808", "value out of range"},
		{"-92233720368.54775809", "value out of range"},
		{"99999999999999999999999", "value out of range"},
		{"1\x00", "unexpected character '\\x00'"},
	}
	for _, tc := range bad {
		_, err := ParseFixed(tc.in)
		if err == nil {
			t.Errorf("ParseFixed(%q) accepted", tc.in)
			continue
		}
		var de *DecimalError
		if !errors.As(err, &de) || !errors.Is(err, ErrInvalidDecimal) {
			t.Errorf("ParseFixed(%q) error %T not a *DecimalError", tc.in, err)
		}
		if !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("ParseFixed(%q) error %q does not mention %q", tc.in, err, tc.reason)
		}
	}
}

func TestFixedStringRoundTrip(t *testing.T) {
	for _, f := range []Fixed{0, 1, -1, Scale, -Scale, 8683001000000, MaxFixed, MinFixed, MinFixed + 1} {
		s := f.String()
		g, err := ParseFixed(s)
		if err != nil || g != f {
			t.Errorf("round trip %d -> %q -> %d, %v", f, s, g, err)
		}
	}
	if s := Fixed(-150000000).String(); s != "-1.50000000" {
		t.Errorf("String = %q", s)
	}
}

func TestMulFixed(t *testing.T) {
	cases := []struct {
		a, b, want string
	}{
		{"86830.01", "0.00015", "13.0245015"},
		{"2", "3.5", "7"},
		{"-2", "3.5", "-7"},
		{"0.00000001", "0.5", "0"}, // truncated toward zero
		{"-0.00000001", "0.5", "0"},
		{"92233720368.54775807", "1", "92233720368.54775807"},
		{"90000", "1000000", "90000000000"},
	}
	for _, tc := range cases {
		got, ok := MulFixed(MustFixed(tc.a), MustFixed(tc.b))
		if !ok || got != MustFixed(tc.want) {
			t.Errorf("MulFixed(%s, %s) = %s, %v; want %s", tc.a, tc.b, got, ok, tc.want)
		}
	}
	if _, ok := MulFixed(MustFixed("90000"), MustFixed("2000000")); ok {
		t.Error("MulFixed overflow not reported")
	}
	if _, ok := MulFixed(MaxFixed, MaxFixed); ok {
		t.Error("MulFixed overflow not reported")
	}
	if _, ok := AddFixed(MaxFixed, 1); ok {
		t.Error("AddFixed overflow not reported")
	}
	if _, ok := AddFixed(MinFixed, -1); ok {
		t.Error("AddFixed underflow not reported")
	}
}

var plainDecimal = regexp.MustCompile(`^[+-]?[0-9]*\.?[0-9]*$`)

// FuzzParseFixed checks ParseFixed against math/big: every accepted input
// must equal its exact rational value times 1e8, every rejected input must
// be out of syntax, out of range or lose precision, and String must round
// trip.
func FuzzParseFixed(f *testing.F) {
	for _, s := range []string{"0", "1.5", "-0.00000001", "86830.00000000", "92233720368.54775807",
		"-92233720368.54775808", "1e5", ".", "+.5", "1.000000000", "0.000000001", "--1", "1..2", ""} {
		f.Add(s)
	}
	scale := big.NewRat(Scale, 1)
	minR := new(big.Rat).SetInt64(math.MinInt64)
	maxR := new(big.Rat).SetInt64(math.MaxInt64)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseFixed(s)
		gotB, errB := ParseFixedBytes([]byte(s))
		if got != gotB || (err == nil) != (errB == nil) {
			t.Fatalf("string/bytes disagree on %q: %d,%v vs %d,%v", s, got, err, gotB, errB)
		}
		syntaxOK := plainDecimal.MatchString(s) && strings.ContainsAny(s, "0123456789")
		var want *big.Rat
		inRange := false
		if syntaxOK {
			r, ok := new(big.Rat).SetString(strings.TrimPrefix(s, "+"))
			if !ok {
				// big.Rat rejects forms like "7." or "-.5" in some versions;
				// normalise.
				n := strings.TrimPrefix(s, "+")
				n = strings.TrimSuffix(n, ".")
				n = strings.Replace(n, "-.", "-0.", 1)
				if strings.HasPrefix(n, ".") {
					n = "0" + n
				}
				if n == "" || n == "-" {
					n = "0"
				}
				r, ok = new(big.Rat).SetString(n)
				if !ok {
					t.Fatalf("oracle cannot parse %q", s)
				}
			}
			want = r.Mul(r, scale)
			inRange = want.IsInt() && want.Cmp(minR) >= 0 && want.Cmp(maxR) <= 0
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidDecimal) {
				t.Fatalf("error for %q is not ErrInvalidDecimal: %v", s, err)
			}
			if syntaxOK && inRange {
				t.Fatalf("rejected valid %q: %v", s, err)
			}
			return
		}
		if !syntaxOK || !inRange {
			t.Fatalf("accepted %q = %d but oracle says syntax=%v inRange=%v", s, got, syntaxOK, inRange)
		}
		if new(big.Rat).SetInt64(int64(got)).Cmp(want) != 0 {
			t.Fatalf("ParseFixed(%q) = %d, want %s", s, got, want.RatString())
		}
		back, err := ParseFixed(got.String())
		if err != nil || back != got {
			t.Fatalf("round trip of %q via %q gave %d, %v", s, got.String(), back, err)
		}
	})
}
