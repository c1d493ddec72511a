package hub

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"id":"1","type":"subscribe","channel":"trades","symbol":"BTC-USD"}`,
		`{"type":"subscribe","channel":"book","symbol":"ETH-USD","depth":5}`,
		`{"type":"subscribe","channel":"candles","symbol":"ETH-USD","interval":"5m"}`,
		`{"type":"unsubscribe","channel":"mesh"}`,
		`{"id":"2","type":"submit","order":{"symbol":"BTC-USD","side":"buy","type":"limit","price":"100.5","quantity":"2","client_order_id":"a"}}`,
		`{"type":"submit","order":{"symbol":"BTC-USD","side":"sell","type":"market","quantity":"0.001","account":"acct-1"}}`,
		`{"type":"replace","order_id":"12","price":"101","quantity":"1"}`,
		`{"type":"cancel","symbol":"BTC-USD","order_id":"12","account":"3"}`,
		`{"type":"ping"}`, `{`, `[]`, `null`, `{"type":1}`, `{"type":"ping"} {}`, "\xff", `{"id":"` + strings.Repeat("x", 70) + `"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Decode(b)
		if err != nil {
			if err.Code == "" || err.Message == "" {
				t.Fatalf("error without code or message: %+v", err)
			}
			if err.Code == CodeInvalidField && err.Field == "" {
				t.Fatalf("invalid_field error naming no field: %+v", err)
			}
			if len(r.ID) > maxIDLen {
				t.Fatalf("error echoes an id of %d bytes", len(r.ID))
			}
			return
		}
		// A valid request survives a round trip unchanged (defaults
		// applied once are stable).
		again, err2 := json.Marshal(r)
		if err2 != nil {
			t.Fatal(err2)
		}
		r2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", again, err)
		}
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip changed %+v into %+v", r, r2)
		}
	})
}

func TestDecodeNamesTheProblem(t *testing.T) {
	for _, tc := range []struct{ in, code, field, msg string }{
		{``, CodeBadJSON, "", "empty frame"},
		{`{"type":"subscribe"`, CodeBadJSON, "", "truncated"},
		{`{"type":"subscribe","channel":5}`, CodeBadJSON, "", `field "channel" must be a string`},
		{`{"type":"subscribe","bogus":true}`, CodeBadJSON, "", `unknown field "bogus"`},
		{`{"type":"ping"}{"type":"ping"}`, CodeBadJSON, "", "trailing data"},
		{`{}`, CodeInvalidField, "type", "missing"},
		{`{"type":"fly"}`, CodeUnknownType, "", `unknown message type "fly"`},
		{`{"type":"subscribe","channel":"trades"}`, CodeInvalidField, "symbol", "must not be empty"},
		{`{"type":"subscribe","channel":"mesh","symbol":"X"}`, CodeInvalidField, "symbol", "takes no symbol"},
		{`{"type":"subscribe","channel":"book","symbol":"X","depth":51}`, CodeInvalidField, "depth", "51 is outside 1..50"},
		{`{"type":"subscribe","channel":"trades","symbol":"X","depth":5}`, CodeInvalidField, "depth", "only book subscriptions take a depth"},
		{`{"type":"subscribe","channel":"candles","symbol":"X","interval":"2m"}`, CodeInvalidField, "interval", "1m, 5m"},
		{`{"type":"submit"}`, CodeInvalidField, "order", "missing"},
		{`{"type":"submit","order":{"symbol":"X","side":"hold","quantity":"1","price":"1"}}`, CodeInvalidField, "order.side", "buy or sell"},
		{`{"type":"submit","order":{"symbol":"X","side":"buy","type":"stop","quantity":"1","price":"1"}}`, CodeInvalidField, "order.type", "limit, market"},
		{`{"type":"submit","order":{"symbol":"X","side":"buy","type":"market","quantity":"1","price":"1"}}`, CodeInvalidField, "order.price", "no price"},
		{`{"type":"submit","order":{"symbol":"X","side":"buy","quantity":"0","price":"1"}}`, CodeInvalidField, "order.quantity", ""},
		{`{"type":"submit","order":{"symbol":"X","side":"buy","quantity":"1","price":"-1"}}`, CodeInvalidField, "order.price", `"-1" must be more than zero`},
		{`{"type":"submit","order":{"symbol":"X","side":"buy","quantity":"1"}}`, CodeInvalidField, "order.price", "missing"},
		{`{"type":"submit","order":{"symbol":"X","side":"buy","quantity":1,"price":"1"}}`, CodeBadJSON, "", `field "order.quantity" must be a string`},
		{`{"type":"submit","order":{"symbol":"X","side":"buy","quantity":"1","price":"1","client_order_id":"a b"}}`, CodeInvalidField, "order.client_order_id", "offset 1"},
		{`{"type":"replace","order_id":"0","price":"1","quantity":"1"}`, CodeInvalidField, "order_id", "positive"},
		{`{"type":"replace","order_id":"4","quantity":"1"}`, CodeInvalidField, "price", "missing"},
	} {
		_, err := Decode([]byte(tc.in))
		if err == nil || err.Code != tc.code || err.Field != tc.field || !strings.Contains(err.Message, tc.msg) {
			t.Errorf("%s: got %+v, want %s field %q containing %q", tc.in, err, tc.code, tc.field, tc.msg)
		}
	}
}

func TestParseKeys(t *testing.T) {
	ks, err := ParseKeys("# c\n0123456789abcdef 7 name=ops rate=5 burst=9\n\nfedcba9876543210fe 8\n")
	if err != nil {
		t.Fatal(err)
	}
	k := ks.Lookup("0123456789abcdef")
	if k == nil || k.Account != "7" || k.Name != "ops" || k.Rate != 5 || k.Burst != 9 {
		t.Fatalf("key %+v", k)
	}
	if k := ks.Lookup("fedcba9876543210fe"); k == nil || k.Account != "8" || k.Rate != DefaultRate {
		t.Fatalf("key %+v", k)
	}
	if ks.Lookup("0123456789abcdeX") != nil || ks.Lookup("") != nil {
		t.Fatal("lookup of a wrong secret found a key")
	}
	for _, bad := range []string{"short 1", "0123456789abcdef", "0123456789abcdef a/b", "0123456789abcdef xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
		"0123456789abcdef 1 rate=0", "0123456789abcdef 1 color=red", "0123456789abcdef 1\n0123456789abcdef 2"} {
		if _, err := ParseKeys(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
