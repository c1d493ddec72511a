package feeds

import (
	"errors"
	"testing"

	"github.com/tradsys/mesh/pkg/fixed"
)

// The decimal parser and its tests live in pkg/fixed; this only checks
// that the feeds names stay compatible with it.
func TestDecimalAliases(t *testing.T) {
	if d, err := ParseDecimal("86780.01000000"); err != nil || d != 8678001000000 || d.String() != "86780.01000000" {
		t.Fatalf("ParseDecimal = %d, %v", d, err)
	}
	if MustDecimal("-0.5") != -Scale/2 || DecimalFromInt(100) != 100*Scale {
		t.Fatal("MustDecimal / DecimalFromInt")
	}
	for _, tc := range []struct {
		in  string
		err error
	}{{"1e5", ErrDecimalSyntax}, {"1.000000001", ErrDecimalPrecision}, {"100000000000", ErrDecimalRange}} {
		_, err := ParseDecimal(tc.in)
		var de *DecimalError
		if !errors.As(err, &de) || de.Input != tc.in || !errors.Is(err, tc.err) || !errors.Is(err, fixed.ErrInvalid) {
			t.Errorf("ParseDecimal(%q) err = %v, want a *DecimalError wrapping %v", tc.in, err, tc.err)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("DecimalFromInt did not panic on overflow")
		}
	}()
	DecimalFromInt(1e11)
}

func TestUnixAuto(t *testing.T) {
	ms := UnixAuto(1763942400000)
	us := UnixAuto(1763942400000000)
	ns := UnixAuto(1763942400000000000)
	if !ms.Equal(us) || !us.Equal(ns) || ms.Format("2006-01-02") != "2025-11-24" {
		t.Fatalf("UnixAuto: %v %v %v", ms, us, ns)
	}
}
