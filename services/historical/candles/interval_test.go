package candles

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseInterval(t *testing.T) {
	for _, iv := range Intervals {
		got, err := ParseInterval(iv.String())
		if err != nil || got != iv {
			t.Errorf("ParseInterval(%q) = %v, %v", iv.String(), got, err)
		}
	}
	for _, bad := range []string{"", "1M", "3m", "60s", "1w", " 1m", "1m "} {
		_, err := ParseInterval(bad)
		if err == nil {
			t.Errorf("ParseInterval(%q) accepted", bad)
			continue
		}
		if !errors.Is(err, ErrUnknownInterval) || !strings.Contains(err.Error(), `"`+bad+`"`) {
			t.Errorf("ParseInterval(%q) error %q does not name the value", bad, err)
		}
	}
	if Interval(0).Valid() || Interval(6).Valid() {
		t.Error("invalid intervals reported valid")
	}
	var iv Interval
	if err := iv.UnmarshalText([]byte("15m")); err != nil || iv != Interval15m {
		t.Errorf("UnmarshalText: %v %v", iv, err)
	}
}

func TestAlign(t *testing.T) {
	ts := time.Date(2025, 11, 24, 13, 47, 31, 999, time.FixedZone("X", 5*3600+1800))
	u := ts.UTC() // 08:17:31
	want := map[Interval]time.Time{
		Interval1m:  time.Date(2025, 11, 24, 8, 17, 0, 0, time.UTC),
		Interval5m:  time.Date(2025, 11, 24, 8, 15, 0, 0, time.UTC),
		Interval15m: time.Date(2025, 11, 24, 8, 15, 0, 0, time.UTC),
		Interval1h:  time.Date(2025, 11, 24, 8, 0, 0, 0, time.UTC),
		Interval1d:  time.Date(2025, 11, 24, 0, 0, 0, 0, time.UTC),
	}
	for iv, w := range want {
		if got := iv.Align(ts); !got.Equal(w) || got.Location() != time.UTC {
			t.Errorf("%s.Align(%v) = %v, want %v", iv, u, got, w)
		}
	}
	// Before 1970 floors, not truncates toward zero.
	pre := time.Date(1969, 12, 31, 23, 59, 30, 0, time.UTC)
	if got := Interval1m.Align(pre); !got.Equal(time.Date(1969, 12, 31, 23, 59, 0, 0, time.UTC)) {
		t.Errorf("pre-epoch align = %v", got)
	}
}
