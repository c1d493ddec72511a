package feeds

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const (
	tradeMsg = `{"stream":"btcusdt@trade","data":{"e":"trade","E":1763942400123,"s":"BTCUSDT","t":5432101,"p":"86780.01000000","q":"0.00150000","T":1763942400120,"m":true,"M":true}}`
	depthMsg = `{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1763942400200,"s":"BTCUSDT","U":157,"u":160,"b":[["86780.00","1.5"],["86779.99","0"]],"a":[["86780.01","0.25"]]}}`
)

func TestParseBinanceGood(t *testing.T) {
	ev, err := ParseBinanceMessage([]byte(tradeMsg))
	if err != nil {
		t.Fatal(err)
	}
	tr := ev.(Trade)
	want := Trade{Venue: "binance", Symbol: "BTCUSDT", TradeID: 5432101, Time: time.UnixMilli(1763942400120).UTC(),
		Price: MustDecimal("86780.01"), Qty: MustDecimal("0.0015"), TakerSide: SideSell}
	if tr != want {
		t.Fatalf("trade = %+v\nwant    %+v", tr, want)
	}
	// raw (non-combined) form, buyer taker, "M" must not clobber "m"
	ev, err = ParseBinanceMessage([]byte(`{"e":"trade","E":1,"s":"ethusdt","t":1,"p":"1","q":"2","T":1763942400120,"m":false,"M":true}`))
	if err != nil || ev.(Trade).TakerSide != SideBuy || ev.(Trade).Symbol != "ETHUSDT" {
		t.Fatalf("raw trade: %+v %v", ev, err)
	}
	// aggTrade
	ev, err = ParseBinanceMessage([]byte(`{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":26129,"p":"0.01633102","q":"4.70443515","f":27781,"l":27781,"T":1498793709153,"m":true,"M":true}}`))
	if err != nil || ev.(Trade).TradeID != 26129 {
		t.Fatalf("aggTrade: %+v %v", ev, err)
	}
	ev, err = ParseBinanceMessage([]byte(depthMsg))
	if err != nil {
		t.Fatal(err)
	}
	bu := ev.(BookUpdate)
	if bu.Seq != 160 || bu.FirstSeq != 157 || bu.Snapshot || len(bu.Bids) != 2 || len(bu.Asks) != 1 ||
		bu.Bids[1] != (Level{MustDecimal("86779.99"), 0}) || bu.Asks[0].Qty != MustDecimal("0.25") {
		t.Fatalf("depth = %+v", bu)
	}
	// partial depth snapshot: symbol from the stream name
	ev, err = ParseBinanceMessage([]byte(`{"stream":"btcusdt@depth5@100ms","data":{"lastUpdateId":160,"bids":[["1.0","2"]],"asks":[["1.1","3"]]}}`))
	if err != nil || !ev.(BookUpdate).Snapshot || ev.(BookUpdate).Symbol != "BTCUSDT" || ev.(BookUpdate).Seq != 160 {
		t.Fatalf("snapshot: %+v %v", ev, err)
	}
	// control: subscription ack
	ev, err = ParseBinanceMessage([]byte(`{"result":null,"id":1}`))
	if ev != nil || err != nil {
		t.Fatalf("ack: %v %v", ev, err)
	}
	_, err = ParseBinanceMessage([]byte(`{"error":{"code":2,"msg":"Invalid request"},"id":1}`))
	var api *APIError
	if !errors.As(err, &api) || api.Code != 2 {
		t.Fatalf("api error: %v", err)
	}
}

func TestParseBinanceBad(t *testing.T) {
	cases := []struct {
		name, msg, field string
		err              error
	}{
		{"not json", `{"stream":`, "", ErrInvalidValue},
		{"empty", ``, "", ErrInvalidValue},
		{"array", `[1,2]`, "", ErrInvalidValue},
		{"no event type", `{"stream":"x","data":{"s":"BTCUSDT"}}`, "data.e", ErrMissingField},
		{"unsupported", `{"stream":"x","data":{"e":"kline","s":"BTCUSDT"}}`, "data.e", ErrUnsupportedEvent},
		{"no symbol", strings.Replace(tradeMsg, `"s":"BTCUSDT",`, ``, 1), "data.s", ErrMissingField},
		{"no trade id", strings.Replace(tradeMsg, `"t":5432101,`, ``, 1), "data.t", ErrMissingField},
		{"trade id string", strings.Replace(tradeMsg, `"t":5432101`, `"t":"5432101"`, 1), "data.t", ErrInvalidValue},
		{"bad price", strings.Replace(tradeMsg, `"86780.01000000"`, `"86,780.01"`, 1), "data.p", ErrInvalidValue},
		{"price number", strings.Replace(tradeMsg, `"86780.01000000"`, `86780.01`, 1), "data.p", ErrInvalidValue},
		{"zero price", strings.Replace(tradeMsg, `"86780.01000000"`, `"0"`, 1), "data.p", ErrInvalidValue},
		{"missing qty", strings.Replace(tradeMsg, `"q":"0.00150000",`, ``, 1), "data.q", ErrMissingField},
		{"negative qty", strings.Replace(tradeMsg, `"0.00150000"`, `"-1"`, 1), "data.q", ErrInvalidValue},
		{"qty precision", strings.Replace(tradeMsg, `"0.00150000"`, `"0.000000001"`, 1), "data.q", ErrInvalidValue},
		{"no time", strings.Replace(strings.Replace(tradeMsg, `"T":1763942400120,`, ``, 1), `"E":1763942400123,`, ``, 1), "data.T", ErrMissingField},
		{"no maker flag", strings.Replace(tradeMsg, `"m":true,`, ``, 1), "data.m", ErrMissingField},
		{"maker flag string", strings.Replace(tradeMsg, `"m":true`, `"m":"yes"`, 1), "data.m", ErrInvalidValue},
		{"depth no u", strings.Replace(depthMsg, `"u":160,`, ``, 1), "data.u", ErrMissingField},
		{"depth U>u", strings.Replace(depthMsg, `"U":157`, `"U":170`, 1), "data.U", ErrInvalidValue},
		{"depth bids not array", strings.Replace(depthMsg, `"b":[["86780.00","1.5"],["86779.99","0"]]`, `"b":7`, 1), "data.b", ErrInvalidValue},
		{"depth level len", strings.Replace(depthMsg, `["86779.99","0"]`, `["86779.99"]`, 1), "data.b[1]", ErrInvalidValue},
		{"depth level price", strings.Replace(depthMsg, `"86780.01","0.25"`, `"x","0.25"`, 1), "data.a[0][0]", ErrInvalidValue},
		{"depth level qty", strings.Replace(depthMsg, `"86780.01","0.25"`, `"86780.01","-2"`, 1), "data.a[0][1]", ErrInvalidValue},
		{"depth no asks", strings.Replace(depthMsg, `,"a":[["86780.01","0.25"]]`, ``, 1), "data.a", ErrMissingField},
		{"snapshot no symbol", `{"data":{"lastUpdateId":1,"bids":[],"asks":[]}}`, "stream", ErrMissingField},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := ParseBinanceMessage([]byte(tc.msg))
			if err == nil {
				t.Fatalf("no error, event %+v", ev)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v is not *ParseError", err, err)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("error %v is not %v", err, tc.err)
			}
			if pe.Field != tc.field {
				t.Errorf("field = %q, want %q (%v)", pe.Field, tc.field, err)
			}
			if tc.field != "" && !strings.Contains(err.Error(), `"`+tc.field+`"`) {
				t.Errorf("message %q does not name field %q", err, tc.field)
			}
		})
	}
}
