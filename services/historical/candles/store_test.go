package candles

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func weekCandles(t testing.TB) []Candle {
	t.Helper()
	dataFiles(t)
	all, err := LoadBinanceKlinesGlob(filepath.Join(dataDir, "BTCUSDT-1m-*.csv"), "BTCUSDT")
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func openTestStore(t testing.TB, path string) *Store {
	t.Helper()
	s, err := OpenStore(path, &StoreOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStoreEncodeRoundTrip(t *testing.T) {
	cs := []Candle{
		mk(Interval1m, 0, "86830", "86830", "86753.82", "86780.01", "15.23832", "1322414.2934039", 4447),
		mk(Interval1m, 0, "0.00000001", "92233720368.54775807", "0.00000001", "92233720368.54775807", "0", "0", 0),
		mk(Interval1m, 0, "5", "9", "1", "1", "92233720368.54775807", "92233720368.54775807", 1<<62),
	}
	for _, c := range cs {
		buf := encodeCandle(nil, &c)
		var d Candle
		if err := decodeCandle(buf, &d); err != nil {
			t.Fatal(err)
		}
		d.Symbol, d.Interval, d.OpenTime = c.Symbol, c.Interval, c.OpenTime
		if fmtCandle(d) != fmtCandle(c) {
			t.Errorf("round trip %s -> %s", fmtCandle(c), fmtCandle(d))
		}
		t.Logf("encoded %d bytes", len(buf))
	}
	for _, bad := range [][]byte{nil, {2}, {1}, {1, 0x80}, append(encodeCandle(nil, &cs[0]), 0)} {
		var d Candle
		if err := decodeCandle(bad, &d); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decode %v: %v", bad, err)
		}
	}
}

func TestStorePersistenceAndRange(t *testing.T) {
	week := weekCandles(t)
	path := filepath.Join(t.TempDir(), "candles.db")
	s := openTestStore(t, path)
	if _, err := s.Latest("BTCUSDT", Interval1m); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Latest on empty store: %v", err)
	}
	if err := s.Put(week...); err != nil {
		t.Fatal(err)
	}
	hours, _ := RollUp(week, Interval1h)
	if err := s.Put(hours...); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTestStore(t, path) // reopen: everything survived
	defer s.Close()
	start, end := week[0].OpenTime, week[len(week)-1].End()
	p, err := s.Range("BTCUSDT", Interval1m, start, end, MaxRangeLimit+5, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Candles) != MaxRangeLimit || p.NextPageToken == "" { // limit is capped
		t.Fatalf("full range: %d candles, token %q", len(p.Candles), p.NextPageToken)
	}
	p2, err := s.Range("BTCUSDT", Interval1m, start, end, MaxRangeLimit, p.NextPageToken)
	if err != nil || p2.NextPageToken != "" {
		t.Fatalf("second page: %v %q", err, p2.NextPageToken)
	}
	p.Candles = append(p.Candles, p2.Candles...)
	if len(p.Candles) != len(week) {
		t.Fatalf("full range: %d candles, want %d", len(p.Candles), len(week))
	}
	for i := range week {
		if fmtCandle(p.Candles[i]) != fmtCandle(week[i]) || !p.Candles[i].OpenTime.Equal(week[i].OpenTime) {
			t.Fatalf("candle %d: %s, want %s", i, fmtCandle(p.Candles[i]), fmtCandle(week[i]))
		}
	}
	last, err := s.Latest("BTCUSDT", Interval1h)
	if err != nil || fmtCandle(last) != fmtCandle(hours[len(hours)-1]) {
		t.Fatalf("Latest 1h: %s, %v", fmtCandle(last), err)
	}

	// Upsert replaces, does not duplicate.
	mod := week[100]
	mod.Close, mod.Trades = mod.Low, 1
	if err := s.Put(mod); err != nil {
		t.Fatal(err)
	}
	p, _ = s.Range("BTCUSDT", Interval1m, mod.OpenTime.Add(-time.Minute), mod.End().Add(time.Minute), 0, "")
	if len(p.Candles) != 3 || fmtCandle(p.Candles[1]) != fmtCandle(mod) {
		t.Fatalf("after upsert: %d candles, middle %s", len(p.Candles), fmtCandle(p.Candles[1]))
	}
	// Unknown series: empty page, no error.
	if p, err := s.Range("ETHUSDT", Interval1m, start, end, 0, ""); err != nil || len(p.Candles) != 0 || p.NextPageToken != "" {
		t.Fatalf("unknown series: %v %v", p, err)
	}
	// Invalid candle rejected, nothing written.
	bad := week[0]
	bad.High = bad.Low - 1
	if err := s.Put(week[1], bad); !errors.Is(err, ErrInvalidCandle) {
		t.Fatalf("invalid put: %v", err)
	}
}

// TestStorePagination walks ranges page by page with several limits and
// unaligned bounds: every candle in [start, end) appears exactly once, in
// order, and tokens only work with their own query.
func TestStorePagination(t *testing.T) {
	week := weekCandles(t)
	s := openTestStore(t, filepath.Join(t.TempDir(), "p.db"))
	defer s.Close()
	if err := s.Put(week...); err != nil {
		t.Fatal(err)
	}
	type rng struct{ start, end time.Time }
	ranges := []rng{
		{week[0].OpenTime, week[len(week)-1].End()},
		{week[17].OpenTime.Add(time.Millisecond), week[3000].OpenTime.Add(time.Nanosecond)}, // unaligned
		{week[0].OpenTime.Add(-48 * time.Hour), week[10].OpenTime},                          // starts before the data
		{week[500].OpenTime.Add(time.Second), week[501].OpenTime},                           // empty
	}
	for _, r := range ranges {
		var want []Candle
		for _, c := range week {
			if !c.OpenTime.Before(r.start) && c.OpenTime.Before(r.end) {
				want = append(want, c)
			}
		}
		for _, limit := range []int{1, 7, 100, 1440, 5000} {
			var got []Candle
			token := ""
			pages := 0
			for {
				p, err := s.Range("BTCUSDT", Interval1m, r.start, r.end, limit, token)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				if len(p.Candles) > limit || (p.NextPageToken != "" && len(p.Candles) != limit) {
					t.Fatalf("page of %d with limit %d, token %q", len(p.Candles), limit, p.NextPageToken)
				}
				got = append(got, p.Candles...)
				if p.NextPageToken == "" {
					break
				}
				token = p.NextPageToken
				if pages > len(want)+2 {
					t.Fatal("pagination does not terminate")
				}
			}
			if len(got) != len(want) {
				t.Fatalf("range %v..%v limit %d: %d candles, want %d", r.start, r.end, limit, len(got), len(want))
			}
			for i := range got {
				if !got[i].OpenTime.Equal(want[i].OpenTime) || fmtCandle(got[i]) != fmtCandle(want[i]) {
					t.Fatalf("limit %d candle %d: %s, want %s", limit, i, fmtCandle(got[i]), fmtCandle(want[i]))
				}
			}
			if wantPages := max(1, (len(want)+limit-1)/limit); pages != wantPages {
				t.Errorf("limit %d: %d pages, want %d", limit, pages, wantPages)
			}
		}
	}

	p, _ := s.Range("BTCUSDT", Interval1m, week[0].OpenTime, week[100].OpenTime, 10, "")
	tok := p.NextPageToken
	misuse := []struct {
		name       string
		symbol     string
		iv         Interval
		start, end time.Time
		token      string
	}{
		{"other end", "BTCUSDT", Interval1m, week[0].OpenTime, week[99].OpenTime, tok},
		{"other symbol", "ETHUSDT", Interval1m, week[0].OpenTime, week[100].OpenTime, tok},
		{"other interval", "BTCUSDT", Interval5m, week[0].OpenTime, week[100].OpenTime, tok},
		{"garbage", "BTCUSDT", Interval1m, week[0].OpenTime, week[100].OpenTime, "!!!"},
		{"truncated", "BTCUSDT", Interval1m, week[0].OpenTime, week[100].OpenTime, tok[:len(tok)-2]},
		{"flipped", "BTCUSDT", Interval1m, week[0].OpenTime, week[100].OpenTime, flip(tok)},
	}
	for _, m := range misuse {
		if _, err := s.Range(m.symbol, m.iv, m.start, m.end, 10, m.token); !errors.Is(err, ErrInvalidPageToken) {
			t.Errorf("%s: %v", m.name, err)
		}
	}
	for _, bad := range []struct {
		name       string
		symbol     string
		iv         Interval
		start, end time.Time
		limit      int
	}{
		{"empty symbol", "", Interval1m, week[0].OpenTime, week[1].OpenTime, 0},
		{"bad interval", "BTCUSDT", 0, week[0].OpenTime, week[1].OpenTime, 0},
		{"end before start", "BTCUSDT", Interval1m, week[1].OpenTime, week[0].OpenTime, 0},
		{"negative limit", "BTCUSDT", Interval1m, week[0].OpenTime, week[1].OpenTime, -1},
	} {
		if _, err := s.Range(bad.symbol, bad.iv, bad.start, bad.end, bad.limit, ""); !errors.Is(err, ErrInvalidRange) {
			t.Errorf("%s: %v", bad.name, err)
		}
	}
}

func flip(tok string) string {
	b := []byte(tok)
	if b[3] == 'A' {
		b[3] = 'B'
	} else {
		b[3] = 'A'
	}
	return string(b)
}
