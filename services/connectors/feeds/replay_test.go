package feeds

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/marketdata"
)

// klineDir is the real data beside the repository (../shared/data).
var klineDir = marketdata.DirOrMissing(marketdata.BinanceBTCUSDT1m)

func runReplay(t *testing.T, cfg ReplayConfig) (*Replay, *collector) {
	t.Helper()
	r, err := NewReplay(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := newCollector()
	if err := r.Start(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.Done():
	case <-time.After(60 * time.Second):
		r.Stop()
		t.Fatal("replay did not finish")
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return r, c
}

func TestReplayBinanceKlines(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(klineDir, "*.csv"))
	if len(files) != 7 {
		t.Fatalf("want 7 kline files in %s, found %d", klineDir, len(files))
	}
	sort.Strings(files)
	firstRow := strings.Split(readLine(t, files[0], 0), ",")
	lastRow := strings.Split(readLine(t, files[6], -1), ",")

	r, c := runReplay(t, ReplayConfig{Paths: []string{klineDir}, Speed: 0})
	tr := c.trades()
	if len(tr) != 10080 {
		t.Fatalf("%d trades, want 10080", len(tr))
	}
	st := r.Stats()
	if st.Messages != 10080 || st.Events != 10080 || st.Malformed != 0 {
		t.Fatalf("stats %+v", st)
	}
	first, last := tr[0], tr[len(tr)-1]
	if first.Price != MustDecimal(firstRow[4]) || first.Qty != MustDecimal(firstRow[5]) || first.Symbol != "BTCUSDT" || first.Venue != VenueReplay {
		t.Fatalf("first trade %+v, row %v", first, firstRow)
	}
	if last.Price != MustDecimal(lastRow[4]) || last.Price != MustDecimal("90360.00") {
		t.Fatalf("last trade %+v, row %v", last, lastRow)
	}
	// µs timestamps: close_time 1763942459999999 -> 2025-11-24T00:00:59.999999Z
	if want := time.Date(2025, 11, 24, 0, 0, 59, 999999000, time.UTC); !first.Time.Equal(want) {
		t.Fatalf("first time %v, want %v", first.Time, want)
	}
	if first.TradeID != 1763942400000 {
		t.Fatalf("first id %d", first.TradeID)
	}
	if want := time.Date(2025, 11, 30, 23, 59, 59, 999999000, time.UTC); !last.Time.Equal(want) {
		t.Fatalf("last time %v, want %v", last.Time, want)
	}
	for i := 1; i < len(tr); i++ {
		if d := tr[i].Time.Sub(tr[i-1].Time); d != time.Minute {
			t.Fatalf("trade %d: gap %v", i, d)
		}
	}
	// exact volume sum of one day, no floats
	var vol Decimal
	for _, x := range tr[:1440] {
		vol += x.Qty
	}
	var fileVol Decimal
	for _, line := range readLines(t, files[0]) {
		fileVol += MustDecimal(strings.Split(line, ",")[5])
	}
	if vol != fileVol {
		t.Fatalf("volume %v != %v", vol, fileVol)
	}
}

func readLines(t *testing.T, path string) []string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

func readLine(t *testing.T, path string, i int) string {
	l := readLines(t, path)
	if i < 0 {
		i += len(l)
	}
	return l[i]
}

func writeFile(t *testing.T, dir, name, body string) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReplayJSONLAndMalformed(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "trades.jsonl", `{"symbol":"btcusdt","id":1,"time":"2025-11-24T00:00:00Z","price":"86780.01","qty":"0.5","side":"buy"}
{"symbol":"BTCUSDT","id":"2","time":1763942400100,"price":86780.02,"qty":"0.25","side":"SELL"}

not json
{"symbol":"BTCUSDT","id":3,"time":1763942400200,"price":"1e5","qty":"1"}
{"symbol":"ETHUSDT","id":4,"time":"1763942400300","price":"3000","qty":"2","venue":"x"}
`)
	r, c := runReplay(t, ReplayConfig{Paths: []string{p}})
	tr := c.trades()
	if len(tr) != 3 {
		t.Fatalf("%d trades: %+v", len(tr), tr)
	}
	st := r.Stats()
	if st.Messages != 5 || st.Malformed != 2 || st.Events != 3 {
		t.Fatalf("stats %+v", st)
	}
	var pe *ParseError
	if !errors.As(st.LastError, &pe) || pe.Field != "price" || !strings.Contains(st.LastError.Error(), "trades.jsonl:4") {
		t.Fatalf("last error %v", st.LastError)
	}
	if tr[0].Symbol != "BTCUSDT" || tr[0].TakerSide != SideBuy || tr[1].Price != MustDecimal("86780.02") || tr[1].TakerSide != SideSell ||
		tr[1].Time.Sub(tr[0].Time) != 100*time.Millisecond || tr[2].Venue != "x" || tr[2].TakerSide != SideUnknown || tr[0].Venue != VenueReplay {
		t.Fatalf("trades %+v", tr)
	}
}

func TestReplaySpeed(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	base := int64(1763942400000)
	for i := range 11 { // 10 gaps of 40ms = 400ms recorded
		b.WriteString(`{"symbol":"X","id":` + itoa(int64(i)) + `,"time":` + itoa(base+int64(i)*40) + `,"price":"1","qty":"1"}` + "\n")
	}
	p := writeFile(t, dir, "t.ndjson", b.String())
	for _, tc := range []struct {
		speed    float64
		min, max time.Duration
	}{{1, 390 * time.Millisecond, 1500 * time.Millisecond}, {4, 95 * time.Millisecond, 800 * time.Millisecond}, {0, 0, 300 * time.Millisecond}} {
		start := time.Now()
		_, c := runReplay(t, ReplayConfig{Paths: []string{p}, Speed: tc.speed})
		el := time.Since(start)
		if len(c.trades()) != 11 || el < tc.min || el > tc.max {
			t.Errorf("speed %v: %d trades in %v, want %v..%v", tc.speed, len(c.trades()), el, tc.min, tc.max)
		}
	}
	// Stop interrupts a slow replay promptly
	r, _ := NewReplay(ReplayConfig{Paths: []string{p}, Speed: 0.001})
	r.Start(context.Background(), newCollector())
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	r.Stop()
	if time.Since(start) > time.Second || !errors.Is(r.Err(), context.Canceled) {
		t.Fatalf("stop took %v, err %v", time.Since(start), r.Err())
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestReplayTradeCSVWithHeaderAndBadLines(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "ETHUSDT-trades-2025-11-24.csv", "id,price,qty,quote_qty,time,is_buyer_maker,is_best_match\r\n"+
		"1,3000.5,0.1,300.05,1763942400000000,true,true\r\n"+
		"2,3000.6,0.2,600.12,1763942400001000,false,true\r\n"+
		"3,3000.6,0.2,600.12,1763942400001000,maybe,true\r\n"+
		"4,abc,0.2,600.12,1763942400001000,false,true\r\n")
	r, c := runReplay(t, ReplayConfig{Paths: []string{filepath.Join(dir, "*.csv")}})
	tr := c.trades()
	if len(tr) != 2 || tr[0].Symbol != "ETHUSDT" || tr[0].TakerSide != SideSell || tr[1].TakerSide != SideBuy || tr[1].Time.Sub(tr[0].Time) != time.Millisecond {
		t.Fatalf("%+v", tr)
	}
	if st := r.Stats(); st.Malformed != 2 || st.Messages != 4 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := NewReplay(ReplayConfig{Paths: []string{filepath.Join(dir, "nope*.csv")}}); err != nil {
		t.Fatal(err) // resolution happens at Start
	}
	r2, _ := NewReplay(ReplayConfig{Paths: []string{filepath.Join(dir, "nope*.csv")}})
	if err := r2.Start(context.Background(), newCollector()); err == nil {
		t.Fatal("Start with no files succeeded")
	}
}

func TestParseCSVLineErrorsNameField(t *testing.T) {
	good := "1763942400000000,86830.00000000,86830.00000000,86753.82000000,86780.01000000,15.23832000,1763942459999999,1322414.29340390,4447,5.05353000,438500.13902330,0"
	cases := []struct{ line, field string }{
		{strings.Replace(good, "1763942400000000", "x", 1), "open_time"},
		{strings.Replace(good, "86780.01000000", "", 1), "close"},
		{strings.Replace(good, "86753.82000000", "86790", 1), "low"},
		{strings.Replace(good, "15.23832000", "-1", 1), "volume"},
		{strings.Replace(good, "1763942459999999", "1", 1), "close_time"},
		{strings.Replace(good, "5.05353000", "99", 1), "taker_buy_base_volume"},
		{strings.Replace(good, ",4447,", ",-4,", 1), "number_of_trades"},
		{good + ",extra", ""},
		{"1,2,3", ""},
	}
	for _, tc := range cases {
		_, err := ParseCSVLine([]byte(tc.line))
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Field != tc.field {
			t.Errorf("%q: err %v, want field %q", tc.line, err, tc.field)
		}
	}
	tr, err := ParseKlineCSVLine([]byte(good + "\n"))
	if err != nil || tr.TakerSide != SideSell || tr.Qty != MustDecimal("15.23832") {
		t.Fatalf("%+v %v", tr, err)
	}
}
