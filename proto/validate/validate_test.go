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
