package validate

import "testing"

func TestIDAndSignedDecimal(t *testing.T) {
	for _, ok := range []string{"alice", "acct-1", "a.b_c:d@e"} {
		if err := ID("account", ok); err != nil {
			t.Errorf("ID(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "a/b", string(make([]byte, MaxIDLen+1))} {
		if err := ID("account", bad); err == nil {
			t.Errorf("ID(%q) = nil, want an error", bad)
		}
	}
	for _, ok := range []string{"0", "-0.5", "12.34567890", "-99999999999"} {
		if err := SignedDecimal("position", ok, 11); err != nil {
			t.Errorf("SignedDecimal(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "-", "--1", "1e5", "0.123456789", "999999999999", "1.2.3", " 1"} {
		err := SignedDecimal("position", bad, 11)
		if err == nil {
			t.Errorf("SignedDecimal(%q) = nil, want an error", bad)
		} else if got := err.Error(); len(got) < 16 || got[:16] != "invalid position" {
			t.Errorf("SignedDecimal(%q) = %q, want it to name the field", bad, got)
		}
	}
}

type side int32

func (s side) String() string {
	return [...]string{"SIDE_UNSPECIFIED", "SIDE_BUY", "SIDE_SELL", "side(3)"}[s]
}

func TestOrder(t *testing.T) {
	if err := Order("alice", "BTC-USD", side(1), 1, 2); err != nil {
		t.Errorf("buy: %v", err)
	}
	if err := Order("alice", "BTC-USD", side(2), 1, 2); err != nil {
		t.Errorf("sell: %v", err)
	}
	for _, c := range []struct {
		account, symbol string
		side            side
		want            string
	}{
		{"", "BTC-USD", 1, "invalid account: must not be empty"},
		{"a b", "BTC-USD", 1, `invalid account: "a b" has byte ' ' at offset 1 (want [A-Za-z0-9._:@-])`},
		{"alice", "", 1, "invalid symbol: must not be empty"},
		{"alice", "BTC/USD", 1, `invalid symbol: "BTC/USD" has byte '/' at offset 3 (want [A-Za-z0-9._-])`},
		{"alice", "BTC-USD", 0, "invalid side: SIDE_UNSPECIFIED is not SIDE_BUY or SIDE_SELL"},
		{"alice", "BTC-USD", 3, "invalid side: side(3) is not SIDE_BUY or SIDE_SELL"},
	} {
		err := Order(c.account, c.symbol, c.side, 1, 2)
		if err == nil || err.Error() != c.want {
			t.Errorf("Order(%q, %q, %v) = %v, want %q", c.account, c.symbol, c.side, err, c.want)
		}
	}
}

func TestOptionalPositiveDecimal(t *testing.T) {
	if err := OptionalPositiveDecimal("price", "", 11); err != nil {
		t.Errorf("empty: %v", err)
	}
	if err := OptionalPositiveDecimal("price", "1.5", 11); err != nil {
		t.Errorf("1.5: %v", err)
	}
	if err := OptionalPositiveDecimal("price", "0", 11); err == nil || err.Error() != `invalid price: "0" must be more than zero` {
		t.Errorf("0: %v", err)
	}
}

// A refused decimal says what is wrong with it: empty, signed, too long,
// not a decimal at all.
func TestPositiveDecimalSaysWhy(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "invalid price: must not be empty"},
		{"-1", `invalid price: "-1" must be more than zero`},
		{"-0.5", `invalid price: "-0.5" must be more than zero`},
		{"0", `invalid price: "0" must be more than zero`},
		{"1234567890123456789012345", `invalid price: "123456789012345678901234..." is longer than 24 characters`},
		{"-x", `invalid price: "-x" is not a plain decimal`},
		{"1e5", `invalid price: "1e5" is not a plain decimal`},
		{"999999999999", `invalid price: "999999999999" is too large`},
	} {
		if err := PositiveDecimal("price", c.in, 11); err == nil || err.Error() != c.want {
			t.Errorf("PositiveDecimal(%q) = %v, want %s", c.in, err, c.want)
		}
	}
	if err := SignedDecimal("position", "", 11); err == nil || err.Error() != "invalid position: must not be empty" {
		t.Errorf("SignedDecimal(\"\") = %v", err)
	}
}
