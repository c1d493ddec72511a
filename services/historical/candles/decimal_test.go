package candles

import (
	"errors"
	"strings"
	"testing"

	"github.com/tradsys/mesh/pkg/fixed"
)

// The decimal parser, arithmetic and their tests live in pkg/fixed; this
// only checks that the candles names stay compatible with it.
func TestFixedAliases(t *testing.T) {
	if f, err := ParseFixed("86830.01000000"); err != nil || f != 8683001000000 || f.String() != "86830.01000000" {
		t.Fatalf("ParseFixed = %d, %v", f, err)
	}
	if f, err := ParseFixedBytes([]byte("-0.5")); err != nil || f != -Scale/2 {
		t.Fatalf("ParseFixedBytes = %d, %v", f, err)
	}
	if f, ok := FixedFromInt(7); !ok || f != MustFixed("7") {
		t.Fatal("FixedFromInt")
	}
	if _, ok := FixedFromInt(1e11); ok {
		t.Fatal("FixedFromInt overflow not reported")
	}
	if got, ok := MulFixed(MustFixed("86830.01"), MustFixed("0.00015")); !ok || got != MustFixed("13.0245015") {
		t.Fatalf("MulFixed = %s, %v", got, ok)
	}
	if _, ok := AddFixed(MaxFixed, 1); ok {
		t.Fatal("AddFixed overflow not reported")
	}
	for _, in := range []string{"1e5", "1.000000001", "-92233720368.54775809", ""} {
		_, err := ParseFixed(in)
		var de *DecimalError
		if !errors.As(err, &de) || de.Input != in || !errors.Is(err, ErrInvalidDecimal) || !strings.Contains(err.Error(), "invalid decimal") {
			t.Errorf("ParseFixed(%q) err = %v, want a *DecimalError matching ErrInvalidDecimal", in, err)
		}
	}
	if _, err := ParseFixed("1.2.3"); !errors.Is(err, fixed.ErrSyntax) || !strings.Contains(err.Error(), "second decimal point at offset 3") {
		t.Errorf("ParseFixed(1.2.3) err = %v", err)
	}
}
