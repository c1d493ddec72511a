package feeds

import (
	"errors"
	"math"
	"testing"
)

func TestParseDecimal(t *testing.T) {
	good := []struct {
		in   string
		want Decimal
		str  string
	}{
		{"0", 0, "0.00000000"},
		{"1", Scale, "1.00000000"},
		{"86780.01000000", 8678001000000, "86780.01000000"},
		{"0.00000001", 1, "0.00000001"},
		{"-0.5", -50000000, "-0.50000000"},
		{"+12", 12 * Scale, "12.00000000"},
		{"7.", 7 * Scale, "7.00000000"},
		{".25", 25000000, "0.25000000"},
		{"1.1234567800", 112345678, "1.12345678"},
		{"00012.5", 1250000000, "12.50000000"},
		{"92233720368.54775807", math.MaxInt64, "92233720368.54775807"},
		{"-92233720368.54775808", math.MinInt64, "-92233720368.54775808"},
	}
	for _, tc := range good {
		got, err := ParseDecimal(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseDecimal(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			continue
		}
		if s := got.String(); s != tc.str {
			t.Errorf("%q.String() = %q, want %q", tc.in, s, tc.str)
		}
	}
	bad := []struct {
		in  string
		err error
	}{
		{"", ErrDecimalSyntax}, {"-", ErrDecimalSyntax}, {".", ErrDecimalSyntax}, {"1e5", ErrDecimalSyntax},
		{"1.2.3", ErrDecimalSyntax}, {" 1", ErrDecimalSyntax}, {"1,000", ErrDecimalSyntax}, {"NaN", ErrDecimalSyntax},
		{"0x10", ErrDecimalSyntax}, {"--1", ErrDecimalSyntax},
		{"1.000000001", ErrDecimalPrecision},
		{"92233720368.54775808", ErrDecimalRange}, {"100000000000", ErrDecimalRange},
		{"-92233720368.54775809", ErrDecimalRange}, {"99999999999999999999999", ErrDecimalRange},
	}
	for _, tc := range bad {
		_, err := ParseDecimal(tc.in)
		if !errors.Is(err, tc.err) {
			t.Errorf("ParseDecimal(%q) err = %v, want %v", tc.in, err, tc.err)
		}
	}
}

func TestUnixAuto(t *testing.T) {
	ms := UnixAuto(1763942400000)
	us := UnixAuto(1763942400000000)
	ns := UnixAuto(1763942400000000000)
	if !ms.Equal(us) || !us.Equal(ns) || ms.Format("2006-01-02") != "2025-11-24" {
		t.Fatalf("UnixAuto: %v %v %v", ms, us, ns)
	}
}
