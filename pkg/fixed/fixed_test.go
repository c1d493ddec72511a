package fixed

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	good := []struct {
		in   string
		want Decimal
		str  string
	}{
		{"0", 0, "0.00000000"},
		{"1", Scale, "1.00000000"},
		{"-0", 0, "0.00000000"},
		{"86780.01000000", 8678001000000, "86780.01000000"},
		{"86830.00000000", 8683000000000, "86830.00000000"},
		{"15.23832000", 1523832000, "15.23832000"},
		{"1322414.29340390", 132241429340390, "1322414.29340390"},
		{"0.00000001", 1, "0.00000001"},
		{"-0.00000001", -1, "-0.00000001"},
		{"-0.5", -50000000, "-0.50000000"},
		{"+12", 12 * Scale, "12.00000000"},
		{"7.", 7 * Scale, "7.00000000"},
		{".25", 25000000, "0.25000000"},
		{".5", Scale / 2, "0.50000000"},
		{"-.5", -Scale / 2, "-0.50000000"},
		{"1.1234567800", 112345678, "1.12345678"},
		{"1.000000000000", Scale, "1.00000000"}, // trailing zeros beyond 8 digits are exact
		{"00012.5", 1250000000, "12.50000000"},
		{"000123.4500", 12345000000, "123.45000000"},
		{"92233720368.54775807", Max, "92233720368.54775807"},
		{"-92233720368.54775808", Min, "-92233720368.54775808"},
		{"0000000000000000000000000092233720368.5477580700000000000", Max, "92233720368.54775807"},
	}
	for _, tc := range good {
		got, err := Parse(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			continue
		}
		gotB, errB := ParseBytes([]byte(tc.in))
		if errB != nil || gotB != tc.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", tc.in, gotB, errB, tc.want)
		}
		if s := got.String(); s != tc.str {
			t.Errorf("%q.String() = %q, want %q", tc.in, s, tc.str)
		}
	}

	bad := []struct {
		in     string
		err    error
		offset int
		reason string
	}{
		{"", ErrSyntax, -1, "empty string"},
		{"-", ErrSyntax, -1, "no digits"},
		{"+", ErrSyntax, -1, "no digits"},
		{".", ErrSyntax, -1, "no digits"},
		{"+.", ErrSyntax, -1, "no digits"},
		{"1.2.3", ErrSyntax, 3, "second decimal point"},
		{"1..2", ErrSyntax, 2, "second decimal point"},
		{"1e5", ErrSyntax, 1, "exponent not supported"},
		{"1E-5", ErrSyntax, 1, "exponent not supported"},
		{"1-2", ErrSyntax, 1, "misplaced sign"},
		{"--1", ErrSyntax, 1, "misplaced sign"},
		{"+-1", ErrSyntax, 1, "misplaced sign"},
		{"1.5-", ErrSyntax, 3, "misplaced sign"},
		{" 1", ErrSyntax, 0, "unexpected character ' '"},
		{"1 ", ErrSyntax, 1, "unexpected character ' '"},
		{"1,000", ErrSyntax, 1, "unexpected character ','"},
		{"1_000", ErrSyntax, 1, "unexpected character '_'"},
		{"NaN", ErrSyntax, 0, "unexpected character 'N'"},
		{"Inf", ErrSyntax, 0, "unexpected character 'I'"},
		{"-Inf", ErrSyntax, 1, "unexpected character 'I'"},
		{"0x10", ErrSyntax, 1, "unexpected character 'x'"},
		{"1\x00", ErrSyntax, 1, "unexpected character '\\x00'"},
		{"1\xff", ErrSyntax, 1, "unexpected byte 0xff"},
		{"1½", ErrSyntax, 1, "unexpected character '½'"},
		{"1.000000001", ErrPrecision, 10, "more than 8 significant fractional digits"},
		{"0.0000000000001", ErrPrecision, 14, "more than 8 significant fractional digits"},
		{"92233720368.54775808", ErrRange, -1, "value out of range"},
		{"-92233720368.54775809", ErrRange, -1, "value out of range"},
		{"92233720369", ErrRange, 10, "value out of range"},
		{"100000000000", ErrRange, 11, "value out of range"},
		{"99999999999999999999999", ErrRange, 10, "value out of range"},
		{"-99999999999999999999999", ErrRange, 11, "value out of range"},
	}
	for _, tc := range bad {
		for _, bytes := range []bool{false, true} {
			var err error
			if bytes {
				_, err = ParseBytes([]byte(tc.in))
			} else {
				_, err = Parse(tc.in)
			}
			if err == nil {
				t.Errorf("Parse(%q) (bytes=%v) accepted", tc.in, bytes)
				continue
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Errorf("Parse(%q) error %T is not a *ParseError", tc.in, err)
				continue
			}
			if !errors.Is(err, ErrInvalid) || !errors.Is(err, tc.err) {
				t.Errorf("Parse(%q) err = %v; want errors.Is %v and ErrInvalid", tc.in, err, tc.err)
			}
			if pe.Input != tc.in || pe.Offset != tc.offset || pe.Reason != tc.reason {
				t.Errorf("Parse(%q) error = %+v; want offset %d, reason %q", tc.in, *pe, tc.offset, tc.reason)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("Parse(%q) error %q does not mention %q", tc.in, err, tc.reason)
			}
		}
	}
}

func TestParseErrorMessage(t *testing.T) {
	_, err := Parse("1,5")
	if got, want := err.Error(), `invalid decimal "1,5": unexpected character ',' at offset 1`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	_, err = Parse("")
	if got, want := err.Error(), `invalid decimal "": empty string`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	long := strings.Repeat("7", 100) + "x"
	_, err = Parse(long)
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Input != long[:64]+"..." || !errors.Is(err, ErrRange) {
		t.Errorf("long input error = %#v", err)
	}
	if errors.Is(err, ErrSyntax) || errors.Is(err, ErrPrecision) {
		t.Errorf("error %v matches the wrong sentinel", err)
	}
}

func TestParseNoAllocs(t *testing.T) {
	b := []byte("86780.01000000")
	if n := testing.AllocsPerRun(100, func() {
		if _, err := ParseBytes(b); err != nil {
			t.Fatal(err)
		}
		if _, err := Parse("-0.00150000"); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Parse allocates %v times per run", n)
	}
}

func TestMust(t *testing.T) {
	if Must("1.5") != 150_000_000 {
		t.Fatal("Must(1.5)")
	}
	defer func() {
		err, _ := recover().(error)
		if !errors.Is(err, ErrSyntax) {
			t.Errorf("Must panic value %v, want a *ParseError", err)
		}
	}()
	Must("x")
	t.Error("Must did not panic")
}

func TestStringRoundTrip(t *testing.T) {
	for _, d := range []Decimal{0, 1, -1, Scale, -Scale, 8683001000000, -150000000, Max, Min, Min + 1, Max - 1} {
		s := d.String()
		g, err := Parse(s)
		if err != nil || g != d {
			t.Errorf("round trip %d -> %q -> %d, %v", d, s, g, err)
		}
		if a := string(d.AppendTo([]byte("x="))); a != "x="+s {
			t.Errorf("AppendTo = %q, want %q", a, "x="+s)
		}
	}
	if s := Decimal(-150000000).String(); s != "-1.50000000" {
		t.Errorf("String = %q", s)
	}
	if s := Min.String(); s != "-92233720368.54775808" {
		t.Errorf("Min.String = %q", s)
	}
}

func TestFromInt(t *testing.T) {
	cases := []struct {
		n    int64
		want Decimal
		ok   bool
	}{
		{0, 0, true},
		{100, 100 * Scale, true},
		{-7, -7 * Scale, true},
		{math.MaxInt64 / Scale, Decimal(math.MaxInt64 / Scale * Scale), true},
		{math.MinInt64 / Scale, Decimal(math.MinInt64 / Scale * Scale), true},
		{math.MaxInt64/Scale + 1, 0, false},
		{math.MinInt64/Scale - 1, 0, false},
		{math.MaxInt64, 0, false},
	}
	for _, tc := range cases {
		got, ok := FromInt(tc.n)
		if got != tc.want || ok != tc.ok {
			t.Errorf("FromInt(%d) = %d, %v; want %d, %v", tc.n, got, ok, tc.want, tc.ok)
		}
	}
}

func TestFloat64(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want float64
	}{{"0", 0}, {"1.5", 1.5}, {"-0.25", -0.25}, {"86780.01", 86780.01}} {
		if got := Must(tc.s).Float64(); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s.Float64() = %v", tc.s, got)
		}
	}
}

func TestText(t *testing.T) {
	type doc struct {
		P Decimal `json:"p"`
		Q Decimal `json:"q"`
	}
	b, err := json.Marshal(doc{Must("86780.01"), Must("-0.0015")})
	if err != nil || string(b) != `{"p":"86780.01000000","q":"-0.00150000"}` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	var d doc
	if err := json.Unmarshal(b, &d); err != nil || d.P != Must("86780.01") || d.Q != Must("-0.0015") {
		t.Fatalf("Unmarshal = %+v, %v", d, err)
	}
	err = json.Unmarshal([]byte(`{"p":"1e5"}`), &d)
	if !errors.Is(err, ErrSyntax) {
		t.Fatalf("Unmarshal(1e5) err = %v", err)
	}
}

func TestMul(t *testing.T) {
	cases := []struct {
		a, b, want string
	}{
		{"86830.01", "0.00015", "13.0245015"},
		{"2", "3.5", "7"},
		{"-2", "3.5", "-7"},
		{"-2", "-3.5", "7"},
		{"0.00000001", "0.5", "0"}, // truncated toward zero
		{"-0.00000001", "0.5", "0"},
		{"0.00000003", "-0.5", "-0.00000001"}, // -0.000000015 truncated toward zero
		{"92233720368.54775807", "1", "92233720368.54775807"},
		{"-92233720368.54775808", "1", "-92233720368.54775808"},
		{"90000", "1000000", "90000000000"},
	}
	for _, tc := range cases {
		got, ok := Must(tc.a).Mul(Must(tc.b))
		if !ok || got != Must(tc.want) {
			t.Errorf("%s.Mul(%s) = %s, %v; want %s", tc.a, tc.b, got, ok, tc.want)
		}
	}
	for _, tc := range [][2]Decimal{{Must("90000"), Must("2000000")}, {Max, Max}, {Min, Min}, {Min, -Scale}, {Max, Must("-2")}} {
		if got, ok := tc[0].Mul(tc[1]); ok || got != 0 {
			t.Errorf("%s.Mul(%s) = %s, %v; want overflow", tc[0], tc[1], got, ok)
		}
	}
}

func TestAdd(t *testing.T) {
	if got, ok := Must("1.5").Add(Must("-2.25")); !ok || got != Must("-0.75") {
		t.Errorf("Add = %s, %v", got, ok)
	}
	if got, ok := Max.Add(Min); !ok || got != -1 {
		t.Errorf("Max+Min = %s, %v", got, ok)
	}
	if _, ok := Max.Add(1); ok {
		t.Error("Add overflow not reported")
	}
	if _, ok := Min.Add(-1); ok {
		t.Error("Add underflow not reported")
	}
}

var (
	sinkDec Decimal
	sinkStr string
)

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		d, err := Parse("86780.01000000")
		if err != nil {
			b.Fatal(err)
		}
		sinkDec = d
	}
}

func BenchmarkParseBytes(b *testing.B) {
	in := []byte("1322414.29340390")
	b.ReportAllocs()
	for b.Loop() {
		d, err := ParseBytes(in)
		if err != nil {
			b.Fatal(err)
		}
		sinkDec = d
	}
}

func BenchmarkString(b *testing.B) {
	d := Must("86780.01")
	b.ReportAllocs()
	for b.Loop() {
		sinkStr = d.String()
	}
}

func BenchmarkMul(b *testing.B) {
	p, q := Must("86780.01"), Must("0.0015")
	for b.Loop() {
		sinkDec, _ = p.Mul(q)
	}
}

func TestScaled(t *testing.T) {
	cases := []struct {
		s      string
		digits int // Digits()
		at     int // Scaled(at)
		want   int64
		ok     bool
	}{
		{"0", 0, 0, 0, true},
		{"86780.01", 2, 2, 8678001, true},
		{"86780.01", 2, 8, 8678001000000, true},
		{"86780.01", 2, 1, 0, false},
		{"-1.5", 1, 1, -15, true},
		{"-1.5", 1, 3, -1500, true},
		{"0.00000001", 8, 8, 1, true},
		{"0.00000001", 8, 7, 0, false},
		{"120", 0, 0, 120, true},
		{"92233720368.54775807", 8, 8, math.MaxInt64, true},
		{"-92233720368.54775808", 8, 8, math.MinInt64, true},
		{"-92233720368", 0, 0, -92233720368, true},
		{"1", 0, 9, 0, false},
		{"1", 0, -1, 0, false},
	}
	for _, tc := range cases {
		d := Must(tc.s)
		if got := d.Digits(); got != tc.digits {
			t.Errorf("%s.Digits() = %d, want %d", tc.s, got, tc.digits)
		}
		v, ok := d.Scaled(tc.at)
		if v != tc.want || ok != tc.ok {
			t.Errorf("%s.Scaled(%d) = %d, %v; want %d, %v", tc.s, tc.at, v, ok, tc.want, tc.ok)
		}
		if ok {
			if back, ok := FromScaled(v, tc.at); !ok || back != d {
				t.Errorf("FromScaled(%d, %d) = %s, %v; want %s", v, tc.at, back, ok, d)
			}
		}
	}
	for _, tc := range []struct {
		v      int64
		digits int
	}{{math.MaxInt64/10 + 1, 7}, {math.MinInt64/10 - 1, 7}, {math.MaxInt64, 0}, {1, 9}, {1, -1}} {
		if d, ok := FromScaled(tc.v, tc.digits); ok {
			t.Errorf("FromScaled(%d, %d) = %s, want overflow", tc.v, tc.digits, d)
		}
	}
}

// FuzzScaled: for any value, Scaled at Digits() and at every larger digit
// count is exact and FromScaled inverts it; at fewer digits it refuses.
func FuzzScaled(f *testing.F) {
	for _, v := range []int64{0, 1, -1, 150_000_000, 8678001000000, math.MaxInt64, math.MinInt64} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v int64) {
		d := Decimal(v)
		n := d.Digits()
		for k := 0; k <= ScaleDigits; k++ {
			s, ok := d.Scaled(k)
			if ok != (k >= n) {
				t.Fatalf("%s.Scaled(%d) ok = %v with Digits %d", d, k, ok, n)
			}
			if !ok {
				continue
			}
			back, ok := FromScaled(s, k)
			if !ok || back != d {
				t.Fatalf("FromScaled(%d, %d) = %s, %v; want %s", s, k, back, ok, d)
			}
			if str := d.String(); n < ScaleDigits && str[len(str)-ScaleDigits+n:] != strings.Repeat("0", ScaleDigits-n) {
				t.Fatalf("%s has Digits %d", str, n)
			}
		}
	})
}

func TestTextShortest(t *testing.T) {
	for in, want := range map[string]string{"86780.01": "86780.01", "0.015": "0.015", "12.000": "12", "0": "0",
		"-0.5": "-0.5", "100": "100", "0.00000001": "0.00000001"} {
		d := Must(in)
		if got := d.Text(); got != want {
			t.Errorf("Must(%q).Text() = %q, want %q", in, got, want)
		}
		if back := Must(d.Text()); back != d {
			t.Errorf("Parse(Text()) of %q = %v, want %v", in, back, d)
		}
	}
	if got := Min.Text(); Must(got) != Min {
		t.Errorf("Min.Text() = %q does not parse back", got)
	}
}
