package checks

import (
	"strings"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/fixed"
)

func TestChecks(t *testing.T) {
	trades := NewLastTrades()
	c := NewChecker(trades)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	l := Limits{MaxOrderQuantity: fixed.Must("2"), MaxNotional: fixed.Must("1000"), MaxPosition: fixed.Must("5"),
		PriceBand: fixed.Must("0.1"), OrdersPerSecond: 1, OrderBurst: 2}
	o := Order{Account: "a", Symbol: "X", Buy: true, Price: fixed.Must("100"), Quantity: fixed.Must("2")}
	for _, n := range Names[:4] {
		if r := c.Check(n, o, l); !r.Passed {
			t.Fatalf("%s: %v", n, r)
		}
	}
	cases := []struct {
		name string
		o    Order
		want string
	}{
		{MaxOrderQuantity, Order{Quantity: fixed.Must("2.00000001")}, "2.00000001 is above"},
		{MaxNotional, Order{Price: fixed.Must("500.5"), Quantity: fixed.Must("2")}, "= 1001 is above"},
		{PositionLimit, Order{Buy: true, Position: fixed.Must("2"), OpenQuantity: fixed.Must("1"), Quantity: fixed.Must("2.5")}, "would be 5.5"},
		{PositionLimit, Order{Buy: false, Position: fixed.Must("-4"), Quantity: fixed.Must("1.5")}, "would be -5.5"},
	}
	for _, tc := range cases {
		r := c.Check(tc.name, tc.o, l)
		if r.Passed || !strings.Contains(r.Reason, tc.want) || r.Code != CodeLimitExceeded {
			t.Errorf("%s(%+v) = %+v, want a failure mentioning %q", tc.name, tc.o, r, tc.want)
		}
	}
	// A market order (no price) under a notional limit is valued at the
	// last trade; with none it cannot be, and is refused rather than passed.
	if r := c.Check(MaxNotional, Order{Symbol: "M", Quantity: fixed.Must("1000")}, l); r.Passed || r.Code != CodeNoReferencePrice ||
		!strings.Contains(r.Reason, "no trade in M yet") {
		t.Fatalf("market order without a last trade: %+v", r)
	}
	if r := c.Check(MaxNotional, Order{Symbol: "M", Quantity: fixed.Must("1000")}, Limits{}); !r.Passed {
		t.Fatalf("market order without a notional limit: %+v", r)
	}
	trades.Set("M", fixed.Must("10"))
	if r := c.Check(MaxNotional, Order{Symbol: "M", Quantity: fixed.Must("100.1")}, l); r.Passed || !strings.Contains(r.Reason, "10 x 100.1 = 1001") {
		t.Fatalf("market order valued at the last trade: %+v", r)
	}
	// The band needs a last trade; then 90..110 passes, 110.01 does not.
	if r := c.Check(PriceBand, Order{Symbol: "X", Price: fixed.Must("1000")}, l); !r.Passed {
		t.Fatalf("band without a trade: %v", r)
	}
	trades.Set("X", fixed.Must("100"))
	if r := c.Check(PriceBand, Order{Symbol: "X", Price: fixed.Must("110")}, l); !r.Passed {
		t.Fatalf("110 within 10%% of 100: %v", r)
	}
	if r := c.Check(PriceBand, Order{Symbol: "X", Price: fixed.Must("110.01")}, l); r.Passed || r.Code != CodeOutsideBand {
		t.Fatalf("110.01: %v", r)
	}
	// Token bucket: burst 2, then one per second.
	for i, want := range []bool{true, true, false} {
		if r := c.Check(OrderRate, o, l); r.Passed != want {
			t.Fatalf("order %d: %v, want passed=%v", i, r, want)
		}
	}
	now = now.Add(time.Second)
	if r := c.Check(OrderRate, o, l); !r.Passed {
		t.Fatalf("after a second: %v", r)
	}
}
