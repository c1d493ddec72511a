package candles

import (
	"bufio"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/marketdata"
)

// dataDir is the real data beside the repository (../shared/data).
var dataDir = marketdata.DirOrMissing(marketdata.BinanceBTCUSDT1m)

func dataFiles(t testing.TB) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dataDir, "BTCUSDT-1m-*.csv"))
	if len(files) == 0 {
		t.Fatal("no Binance data files in " + dataDir)
	}
	sort.Strings(files)
	return files
}

const sampleLine = "1763942400000000,86830.00000000,86830.00000000,86753.82000000,86780.01000000,15.23832000,1763942459999999,1322414.29340390,4447,5.05353000,438500.13902330,0"

func TestParseBinanceKline(t *testing.T) {
	c, err := ParseBinanceKline("BTCUSDT", Interval1m, []byte(sampleLine+"\r"))
	if err != nil {
		t.Fatal(err)
	}
	want := Candle{Symbol: "BTCUSDT", Interval: Interval1m, OpenTime: time.Date(2025, 11, 24, 0, 0, 0, 0, time.UTC),
		Open: MustFixed("86830"), High: MustFixed("86830"), Low: MustFixed("86753.82"), Close: MustFixed("86780.01"),
		Volume: MustFixed("15.23832"), QuoteVolume: MustFixed("1322414.2934039"), Trades: 4447}
	if fmtCandle(c) != fmtCandle(want) || !c.OpenTime.Equal(want.OpenTime) {
		t.Errorf("got %s", fmtCandle(c))
	}
	// Milliseconds (pre-2025 files) give the same candle.
	ms := "1763942400000,86830.00000000,86830.00000000,86753.82000000,86780.01000000,15.23832000,1763942459999,1322414.29340390,4447,5.05353000,438500.13902330,0"
	c2, err := ParseBinanceKline("BTCUSDT", Interval1m, []byte(ms))
	if err != nil || fmtCandle(c2) != fmtCandle(want) || !c2.OpenTime.Equal(want.OpenTime) {
		t.Errorf("ms line: %s, %v", fmtCandle(c2), err)
	}
}

func replaceCol(line string, col int, v string) string {
	f := strings.Split(line, ",")
	f[col-1] = v
	return strings.Join(f, ",")
}

func TestParseBinanceKlineErrors(t *testing.T) {
	cases := []struct {
		line string
		col  int
		msg  string
	}{
		{"", 0, "1 columns, want 12"},
		{"garbage", 0, "1 columns, want 12"},
		{sampleLine + ",1", 0, "too many columns"},
		{strings.TrimSuffix(sampleLine, ",0"), 0, "11 columns"},
		{replaceCol(sampleLine, 1, "17639424x0000000"), 1, "column 1 (open_time): invalid integer"},
		{replaceCol(sampleLine, 1, ""), 1, "empty integer"},
		{replaceCol(sampleLine, 1, "-1763942400000000"), 1, "unexpected character '-'"},
		{replaceCol(sampleLine, 1, "1763942401000000"), 1, "not aligned to 1m"},
		{replaceCol(sampleLine, 1, "99999999999999999"), 1, "beyond year 2200"},
		{replaceCol(sampleLine, 7, "1763942459999"), 7, "column 7 (close_time)"},
		{replaceCol(sampleLine, 2, "86830.0.0"), 2, "column 2 (open): invalid decimal"},
		{replaceCol(sampleLine, 3, "1e5"), 3, "exponent"},
		{replaceCol(sampleLine, 4, "0"), 4, "column 4 (low): price 0.00000000 must be > 0"},
		{replaceCol(sampleLine, 3, "86700"), 3, "high 86700.00000000 below low"},
		{replaceCol(sampleLine, 5, "90000"), 5, "close 90000.00000000 outside"},
		{replaceCol(sampleLine, 6, "-1"), 6, "column 6 (volume): volume -1.00000000 is negative"},
		{replaceCol(sampleLine, 8, "NaN"), 8, "column 8 (quote_asset_volume)"},
		{replaceCol(sampleLine, 9, "4447.5"), 9, "column 9 (number_of_trades)"},
		{replaceCol(sampleLine, 10, "16"), 10, "exceeds volume"},
		{replaceCol(sampleLine, 11, "x"), 11, "column 11 (taker_buy_quote_volume)"},
	}
	for _, tc := range cases {
		_, err := ParseBinanceKline("BTCUSDT", Interval1m, []byte(tc.line))
		var ke *KlineError
		if !errors.As(err, &ke) || !errors.Is(err, ErrMalformedKline) {
			t.Errorf("%q: error %v is not a *KlineError", tc.line, err)
			continue
		}
		if ke.Column != tc.col || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q: got column %d %q; want column %d containing %q", tc.line, ke.Column, err, tc.col, tc.msg)
		}
	}
}

func TestReadBinanceKlinesErrorsNameFileLine(t *testing.T) {
	good2 := replaceCol(replaceCol(sampleLine, 1, "1763942460000000"), 7, "1763942519999999")
	in := "open_time,open,high,low,close,volume,close_time,quote_volume,count,tbb,tbq,ignore\n" +
		sampleLine + "\n\n" + good2 + "\n" + replaceCol(sampleLine, 1, "1763942520000000") + "\n"
	_, err := ReadBinanceKlines(strings.NewReader(in), "day.csv", "BTCUSDT", Interval1m)
	if err == nil || !strings.HasPrefix(err.Error(), "day.csv:5: column 7 (close_time)") {
		t.Fatalf("err = %v", err)
	}
	// Out of order rows.
	in = good2 + "\n" + sampleLine + "\n"
	_, err = ReadBinanceKlines(strings.NewReader(in), "day.csv", "BTCUSDT", Interval1m)
	if err == nil || !strings.HasPrefix(err.Error(), "day.csv:2: column 1 (open_time): open time") {
		t.Fatalf("err = %v", err)
	}
	// Over-long line.
	_, err = ReadBinanceKlines(strings.NewReader(sampleLine+"\n"+strings.Repeat("9", 10000)), "day.csv", "BTCUSDT", Interval1m)
	if err == nil || !strings.HasPrefix(err.Error(), "day.csv:2: line longer") {
		t.Fatalf("err = %v", err)
	}
	cs, err := ReadBinanceKlines(strings.NewReader(sampleLine+"\r\n"+good2), "x", "BTCUSDT", Interval1m)
	if err != nil || len(cs) != 2 {
		t.Fatalf("crlf: %d, %v", len(cs), err)
	}
}

// FuzzParseBinanceKline: never panics; accepted lines satisfy the candle
// invariants; errors are *KlineError with a valid column.
func FuzzParseBinanceKline(f *testing.F) {
	f.Add(sampleLine)
	f.Add("1763942400000,86830.00000000,86830.00000000,86753.82000000,86780.01000000,15.23832000,1763942459999,1322414.29340390,4447,5.05353000,438500.13902330,0")
	f.Add("0,1,1,1,1,0,59999,0,0,0,0,0")
	f.Add(",,,,,,,,,,,")
	f.Add("1,2,3")
	f.Fuzz(func(t *testing.T, line string) {
		c, err := ParseBinanceKline("BTCUSDT", Interval1m, []byte(line))
		if err != nil {
			var ke *KlineError
			if !errors.As(err, &ke) || ke.Column < 0 || ke.Column > klineColumns {
				t.Fatalf("bad error for %q: %#v", line, err)
			}
			_ = err.Error()
			return
		}
		if verr := c.Validate(); verr != nil {
			t.Fatalf("accepted %q but candle invalid: %v", line, verr)
		}
		// Re-serialising the parsed fields must parse to the same candle.
		f := strings.Split(strings.TrimSuffix(line, "\r"), ",")
		f[1], f[2], f[3], f[4], f[5], f[7] = c.Open.String(), c.High.String(), c.Low.String(), c.Close.String(), c.Volume.String(), c.QuoteVolume.String()
		c2, err := ParseBinanceKline("BTCUSDT", Interval1m, []byte(strings.Join(f, ",")))
		if err != nil || fmtCandle(c2) != fmtCandle(c) || !c2.OpenTime.Equal(c.OpenTime) {
			t.Fatalf("reparse of %q: %v", line, err)
		}
	})
}

func TestLoadRealDataDays(t *testing.T) {
	for _, f := range dataFiles(t) {
		cs, err := LoadBinanceKlines(f, "BTCUSDT")
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 1440 {
			t.Fatalf("%s: %d candles, want 1440", filepath.Base(f), len(cs))
		}
		day, _ := time.Parse("2006-01-02", strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "BTCUSDT-1m-"), ".csv"))
		for i, c := range cs {
			if want := day.Add(time.Duration(i) * time.Minute); !c.OpenTime.Equal(want) {
				t.Fatalf("%s row %d: open %v, want %v", filepath.Base(f), i+1, c.OpenTime, want)
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("%s row %d: %v", filepath.Base(f), i+1, err)
			}
		}
	}
}

// refBar is the test's independent roll-up, computed straight from the
// CSV text with math/big (no Fixed, no package parser).
type refBar struct {
	open, high, low, close, vol, qvol *big.Rat
	trades                            int64
	first, last                       int64
}

func ratOf(t *testing.T, s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		t.Fatalf("big.Rat cannot parse %q", s)
	}
	return r
}

func referenceRollUp(t *testing.T, files []string, widthSec int64) map[int64]*refBar {
	out := map[int64]*refBar{}
	for _, path := range files {
		fh, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			f := strings.Split(sc.Text(), ",")
			ot, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			sec := ot / 1000 // ms
			if ot > 1e14 {
				sec = ot / 1_000_000 // µs
			}
			bucket := sec - sec%widthSec
			n, _ := strconv.ParseInt(f[8], 10, 64)
			o, h, l, c, v, q := ratOf(t, f[1]), ratOf(t, f[2]), ratOf(t, f[3]), ratOf(t, f[4]), ratOf(t, f[5]), ratOf(t, f[7])
			b := out[bucket]
			if b == nil {
				out[bucket] = &refBar{open: o, high: h, low: l, close: c, vol: v, qvol: q, trades: n, first: sec, last: sec}
				continue
			}
			if sec < b.first {
				b.first, b.open = sec, o
			}
			if sec > b.last {
				b.last, b.close = sec, c
			}
			if h.Cmp(b.high) > 0 {
				b.high = h
			}
			if l.Cmp(b.low) < 0 {
				b.low = l
			}
			b.vol = new(big.Rat).Add(b.vol, v)
			b.qvol = new(big.Rat).Add(b.qvol, q)
			b.trades += n
		}
		fh.Close()
	}
	return out
}

func fixedRat(f Fixed) *big.Rat { return big.NewRat(int64(f), Scale) }

// TestRollUpRealData rolls the week of real 1m candles up to every interval
// and checks each candle against the independent math/big computation.
func TestRollUpRealData(t *testing.T) {
	files := dataFiles(t)
	all, err := LoadBinanceKlinesGlob(filepath.Join(dataDir, "BTCUSDT-1m-*.csv"), "BTCUSDT")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1440*len(files) {
		t.Fatalf("%d candles for %d files", len(all), len(files))
	}
	wantCount := map[Interval]int{Interval1m: 1440, Interval5m: 288, Interval15m: 96, Interval1h: 24, Interval1d: 1}
	for _, iv := range Intervals {
		got, err := RollUp(all, iv)
		if err != nil {
			t.Fatal(err)
		}
		ref := referenceRollUp(t, files, int64(iv.Duration()/time.Second))
		if len(got) != len(ref) || len(got) != wantCount[iv]*len(files) {
			t.Fatalf("%s: %d candles, reference %d, want %d", iv, len(got), len(ref), wantCount[iv]*len(files))
		}
		for _, c := range got {
			r := ref[c.OpenTime.Unix()]
			if r == nil {
				t.Fatalf("%s %v: no reference bar", iv, c.OpenTime)
			}
			checks := []struct {
				name string
				got  Fixed
				want *big.Rat
			}{{"open", c.Open, r.open}, {"high", c.High, r.high}, {"low", c.Low, r.low}, {"close", c.Close, r.close},
				{"volume", c.Volume, r.vol}, {"quote_volume", c.QuoteVolume, r.qvol}}
			for _, ck := range checks {
				if fixedRat(ck.got).Cmp(ck.want) != 0 {
					t.Errorf("%s %v %s = %s, reference %s", iv, c.OpenTime, ck.name, ck.got, ck.want.FloatString(8))
				}
			}
			if c.Trades != r.trades {
				t.Errorf("%s %v trades = %d, reference %d", iv, c.OpenTime, c.Trades, r.trades)
			}
		}
		t.Logf("%s: %d candles match; first %s", iv, len(got), fmtCandle(got[0]))
	}
}

func TestRollUpGapsAndErrors(t *testing.T) {
	m := func(min int, o, h, l, c, v string) Candle {
		return mk(Interval1m, time.Duration(min)*time.Minute, o, h, l, c, v, v, 1)
	}
	src := []Candle{
		m(0, "10", "12", "9", "11", "1"),
		m(3, "11", "15", "11", "14", "2"),
		// minutes 5..9 missing: no 5m candle for 00:05
		m(11, "14", "14", "8", "9", "3"),
	}
	got, err := RollUp(src, Interval5m)
	if err != nil {
		t.Fatal(err)
	}
	sameCandles(t, "5m", got, []Candle{
		mk(Interval5m, 0, "10", "15", "9", "14", "3", "3", 2),
		mk(Interval5m, 10*time.Minute, "14", "14", "8", "9", "3", "3", 1),
	})
	if _, err := RollUp([]Candle{src[1], src[0]}, Interval5m); err == nil {
		t.Error("unsorted input accepted")
	}
	if _, err := RollUp(got, Interval1m); err == nil {
		t.Error("5m -> 1m accepted")
	}
	other := src[1]
	other.Symbol = "ETHUSDT"
	if _, err := RollUp([]Candle{src[0], other}, Interval5m); err == nil {
		t.Error("mixed symbols accepted")
	}
	big1 := m(0, "1", "1", "1", "1", "92233720368")
	big2 := m(1, "1", "1", "1", "1", "92233720368")
	if _, err := RollUp([]Candle{big1, big2}, Interval5m); !errors.Is(err, ErrOverflow) {
		t.Errorf("overflow: %v", err)
	}
}
