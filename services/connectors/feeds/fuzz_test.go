package feeds

import (
	"errors"
	"testing"
	"time"
)

// checkTrade asserts the invariants every successfully parsed trade has.
func checkTrade(t *testing.T, tr Trade, needSymbol bool) {
	t.Helper()
	if tr.Price <= 0 || tr.Qty < 0 {
		t.Fatalf("non-positive price/negative qty: %+v", tr)
	}
	if needSymbol && tr.Symbol == "" {
		t.Fatalf("empty symbol: %+v", tr)
	}
	if tr.Symbol != normSymbol(tr.Symbol) {
		t.Fatalf("symbol not normalised: %q", tr.Symbol)
	}
	if !tr.Time.After(time.Unix(0, 0)) {
		t.Fatalf("time not after 1970: %+v", tr)
	}
	if tr.TakerSide > SideSell {
		t.Fatalf("bad side %d", tr.TakerSide)
	}
	if d, err := ParseDecimal(tr.Price.String()); err != nil || d != tr.Price {
		t.Fatalf("price does not round-trip: %v %v", tr.Price, err)
	}
}

func FuzzParseBinanceMessage(f *testing.F) {
	for _, s := range []string{
		tradeMsg, depthMsg,
		`{"e":"trade","E":1,"s":"ethusdt","t":1,"p":"1","q":"2","T":1763942400120,"m":false,"M":true}`,
		`{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":26129,"p":"0.01633102","q":"4.70443515","f":27781,"l":27781,"T":1498793709153,"m":true,"M":true}}`,
		`{"stream":"btcusdt@depth5@100ms","data":{"lastUpdateId":160,"bids":[["1.0","2"]],"asks":[["1.1","3"]]}}`,
		`{"result":null,"id":1}`, `{"error":{"code":2,"msg":"Invalid request"},"id":1}`,
		`{"data":null}`, `{"data":{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":7,"a":[]}}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		ev, err := ParseBinanceMessage(msg)
		if err != nil {
			if ev != nil {
				t.Fatal("event with error")
			}
			var pe *ParseError
			var api *APIError
			if !errors.As(err, &pe) && !errors.As(err, &api) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			_ = err.Error()
			return
		}
		switch v := ev.(type) {
		case nil: // control message
		case Trade:
			checkTrade(t, v, true)
			if v.Venue != VenueBinance || v.TakerSide == SideUnknown || v.Time.IsZero() {
				t.Fatalf("bad trade %+v", v)
			}
		case BookUpdate:
			if v.Symbol == "" || v.Seq <= 0 || v.FirstSeq > v.Seq {
				t.Fatalf("bad book update %+v", v)
			}
			for _, l := range append(append([]Level(nil), v.Bids...), v.Asks...) {
				if l.Price <= 0 || l.Qty < 0 {
					t.Fatalf("bad level %+v", l)
				}
			}
		default:
			t.Fatalf("unexpected event type %T", ev)
		}
	})
}

func FuzzParseJSONLTrade(f *testing.F) {
	for _, s := range []string{
		`{"symbol":"btcusdt","id":1,"time":"2025-11-24T00:00:00Z","price":"86780.01","qty":"0.5","side":"buy"}`,
		`{"symbol":"BTCUSDT","id":"2","time":1763942400100,"price":86780.02,"qty":"0.25","side":"SELL"}`,
		`{"symbol":"ETHUSDT","id":4,"time":"1763942400300","price":"3000","qty":"2","venue":"x"}`,
		`{"symbol":"X","time":-1,"price":"1","qty":"1"}`, `{"symbol":"X","time":"2025-11-24T00:00:00+01:00","price":"1e3","qty":"1"}`,
		`{}`, `[]`, `"x"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		tr, err := ParseJSONLTrade(line)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		checkTrade(t, tr, true)
		if tr.Qty <= 0 || tr.Time.IsZero() {
			t.Fatalf("bad trade %+v", tr)
		}
	})
}

func FuzzParseCSVLine(f *testing.F) {
	for _, s := range []string{
		"1763942400000000,86830.00000000,86830.00000000,86753.82000000,86780.01000000,15.23832000,1763942459999999,1322414.29340390,4447,5.05353000,438500.13902330,0\n",
		"1763942400000,86830.0,86830.0,86753.82,86780.01,15.2,1763942459999,1322414.2,4447,5.0,438500.1,0\r\n",
		"1,3000.5,0.1,300.05,1763942400000000,true,true",
		"1,3000.5,0.1,300.05,1763942400000,False",
		"id,price,qty,quote_qty,time,is_buyer_maker,is_best_match", ",,,,,,", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		tr, err := ParseCSVLine(line)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		checkTrade(t, tr, false)
		if tr.Time.IsZero() {
			t.Fatalf("zero time %+v", tr)
		}
		// the specific parsers agree with the dispatcher
		k, kerr := ParseKlineCSVLine(line)
		tt, terr := ParseTradeCSVLine(line)
		if (kerr != nil || k != tr) && (terr != nil || tt != tr) {
			t.Fatalf("dispatcher result %+v matches neither kline (%v) nor trade (%v) parser", tr, kerr, terr)
		}
	})
}

// FuzzBinanceFastPath: whenever the trade fast path accepts a message, the
// general encoding/json path must produce exactly the same result.
func FuzzBinanceFastPath(f *testing.F) {
	for _, s := range []string{
		tradeMsg,
		`{"e":"trade","E":1,"s":"ethusdt","t":1,"p":"1","q":"2","T":1763942400120,"m":false,"M":true}`,
		` { "stream" : "x" , "data" : { "e":"trade","s":"A","t":-1,"p":"0.1","q":"1.","T":5,"m":true } } `,
		`{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"0","q":"1","T":1,"m":true}}`,
		`{"data":{"e":"trade"},"e":"trade"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		fev, ferr, ok := parseBinanceTradeFast(msg)
		if !ok {
			return
		}
		sev, serr := parseBinanceMessageJSON(msg)
		if (ferr == nil) != (serr == nil) || (ferr != nil && ferr.Error() != serr.Error()) {
			t.Fatalf("errors differ: fast %v, json %v", ferr, serr)
		}
		if fev != sev {
			t.Fatalf("events differ:\nfast %+v\njson %+v", fev, sev)
		}
	})
}
