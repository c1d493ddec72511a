package main_test

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/marketdata"
	"github.com/tradsys/mesh/pkg/proctest"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	historicalv1 "github.com/tradsys/mesh/proto/tradsys/historical/v1"
	lifecyclev1 "github.com/tradsys/mesh/proto/tradsys/lifecycle/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var historicalBin, connectorsBin, matchingBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "historicaltest")
	if err != nil {
		panic(err)
	}
	if historicalBin, err = proctest.Build(dir, "tradsys-historical", "."); err != nil {
		panic("build historical: " + err.Error())
	}
	if connectorsBin, err = proctest.Build(dir, "tradsys-connectors", "../connectors"); err != nil {
		panic("build connectors: " + err.Error())
	}
	if matchingBin, err = proctest.Build(dir, "tradsys-matching", "../matching"); err != nil {
		panic("build matching: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// --- figures computed independently from the CSV --------------------------

// fx parses a plain decimal into 1e-8 units without the service's code.
func fx(t testing.TB, s string) int64 {
	t.Helper()
	whole, frac, _ := strings.Cut(s, ".")
	if len(frac) > 8 {
		frac = strings.TrimRight(frac, "0")
	}
	frac += strings.Repeat("0", 8-len(frac))
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		t.Fatalf("decimal %q: %v", s, err)
	}
	f, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		t.Fatalf("decimal %q: %v", s, err)
	}
	return w*1e8 + f
}

type bar struct {
	open          time.Time
	o, h, l, c, v int64
	trades        int64
}

// csvMinutes reads every row of the bundled week.
func csvMinutes(t testing.TB) []bar {
	dir, err := marketdata.Dir(marketdata.BinanceBTCUSDT1m)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.csv"))
	sort.Strings(files)
	var out []bar
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			r := strings.Split(strings.TrimSpace(sc.Text()), ",")
			if len(r) != 12 {
				continue
			}
			us, _ := strconv.ParseInt(r[0], 10, 64)
			n, _ := strconv.ParseInt(r[8], 10, 64)
			out = append(out, bar{open: time.UnixMicro(us).UTC(), o: fx(t, r[1]), h: fx(t, r[2]), l: fx(t, r[3]), c: fx(t, r[4]), v: fx(t, r[5]), trades: n})
		}
		fh.Close()
	}
	return out
}

// rollup groups minutes into buckets of width w.
func rollup(ms []bar, w time.Duration) []bar {
	var out []bar
	for _, m := range ms {
		start := m.open.Truncate(w)
		if n := len(out); n > 0 && out[n-1].open.Equal(start) {
			b := &out[n-1]
			b.h, b.l = max(b.h, m.h), min(b.l, m.l)
			b.c = m.c
			b.v += m.v
			b.trades += m.trades
			continue
		}
		m.open = start
		out = append(out, m)
	}
	return out
}

func checkCandle(t testing.TB, what string, got *historicalv1.Candle, want bar) {
	t.Helper()
	if !got.GetOpenTime().AsTime().Equal(want.open) {
		t.Fatalf("%s: open time %v, want %v", what, got.GetOpenTime().AsTime(), want.open)
	}
	g := bar{o: fx(t, got.GetOpen()), h: fx(t, got.GetHigh()), l: fx(t, got.GetLow()), c: fx(t, got.GetClose()), v: fx(t, got.GetVolume()), trades: got.GetTrades()}
	g.open = want.open
	if g != want {
		t.Fatalf("%s at %v:\n got  %+v\n want %+v", what, want.open, g, want)
	}
}

// --- helpers ----------------------------------------------------------------

func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

var day = time.Date(2025, 11, 27, 0, 0, 0, 0, time.UTC)

const historicalComp = "historical"

func client(p *proctest.Proc) historicalv1.HistoricalDataServiceClient {
	return historicalv1.NewHistoricalDataServiceClient(p.Conn)
}

func state(t testing.TB, p *proctest.Proc) coordinatorv1.ComponentState {
	t.Helper()
	resp, err := lifecyclev1.NewLifecycleServiceClient(p.Conn).GetState(context.Background(), &lifecyclev1.GetStateRequest{Component: historicalComp})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetComponents()[0].GetState()
}

func leases(t testing.TB, c coordinatorv1.CoordinatorServiceClient) []*coordinatorv1.MemoryLease {
	t.Helper()
	resp, err := c.ListLeases(context.Background(), &coordinatorv1.ListLeasesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetLeases()
}

func allPages(t testing.TB, c historicalv1.HistoricalDataServiceClient, req *historicalv1.GetHistoricalDataRequest) ([]*historicalv1.Candle, int) {
	t.Helper()
	var out []*historicalv1.Candle
	pages := 0
	for {
		resp, err := c.GetHistoricalData(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		out = append(out, resp.GetCandles()...)
		if resp.GetNextPageToken() == "" {
			return out, pages
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

func wantInvalid(t testing.TB, err error, field string) {
	t.Helper()
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), field) {
		t.Fatalf("want INVALID_ARGUMENT naming %q, got %v", field, err)
	}
}

// --- tests ----------------------------------------------------------------

func TestBadInputIsInvalidArgumentAndActivatesNothing(t *testing.T) {
	r, coord := coordtest.Start(t, coordtest.Config{})
	p := proctest.Start(t, historicalBin, r.Addr(), "--data-dir", t.TempDir())
	c := client(p)
	ctx := context.Background()
	ok := func() *historicalv1.GetHistoricalDataRequest {
		return &historicalv1.GetHistoricalDataRequest{Symbol: "BTCUSDT", Interval: historicalv1.Interval_INTERVAL_1M,
			Start: ts(day), End: ts(day.Add(24 * time.Hour))}
	}
	cases := []struct {
		field string
		mod   func(r *historicalv1.GetHistoricalDataRequest)
	}{
		{"interval", func(r *historicalv1.GetHistoricalDataRequest) { r.Interval = 99 }},
		{"interval", func(r *historicalv1.GetHistoricalDataRequest) { r.Interval = 0 }},
		{"start", func(r *historicalv1.GetHistoricalDataRequest) { r.Start, r.End = r.End, r.Start }},
		{"start", func(r *historicalv1.GetHistoricalDataRequest) { r.Start = nil }},
		{"end", func(r *historicalv1.GetHistoricalDataRequest) {
			r.Start = ts(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)) // 26 years of 1m candles
		}},
		{"symbol", func(r *historicalv1.GetHistoricalDataRequest) { r.Symbol = "BTC USDT" }},
		{"symbol", func(r *historicalv1.GetHistoricalDataRequest) { r.Symbol = "" }},
		{"page_size", func(r *historicalv1.GetHistoricalDataRequest) { r.PageSize = 10001 }},
		{"page_size", func(r *historicalv1.GetHistoricalDataRequest) { r.PageSize = -1 }},
	}
	for _, tc := range cases {
		req := ok()
		tc.mod(req)
		_, err := c.GetHistoricalData(ctx, req)
		wantInvalid(t, err, tc.field)
	}
	_, err := c.GetLatest(ctx, &historicalv1.GetLatestRequest{Symbol: "BTCUSDT", Interval: 42})
	wantInvalid(t, err, "interval")
	_, err = c.Backfill(ctx, &historicalv1.BackfillRequest{})
	wantInvalid(t, err, "source")
	stream, err := c.IngestTrades(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(&historicalv1.IngestTradesRequest{Trades: []*historicalv1.Trade{{Symbol: "BTCUSDT", Time: ts(day), Price: "1e5", Quantity: "1"}}})
	_, err = stream.CloseAndRecv()
	wantInvalid(t, err, "trades[0].price")

	// None of that, nor GetCacheStats, activated the service.
	st, err := c.GetCacheStats(ctx, &historicalv1.GetCacheStatsRequest{})
	if err != nil || st.GetLoaded() || st.GetMaxBytes() != 100<<20 {
		t.Fatalf("cache stats %v %v", st, err)
	}
	if s := state(t, p); s != coordinatorv1.ComponentState_COMPONENT_STATE_DORMANT {
		t.Fatalf("state %v", s)
	}
	if l := leases(t, coord); len(l) != 0 {
		t.Fatalf("leases %v", l)
	}

	// A bad page token is INVALID_ARGUMENT naming page_token (found by the
	// store, after activation).
	req := ok()
	req.PageToken = "not-a-token"
	_, err = c.GetHistoricalData(ctx, req)
	wantInvalid(t, err, "page_token")
}

func TestBackfillQueryPaginationCache(t *testing.T) {
	r, coord := coordtest.Start(t, coordtest.Config{})
	p := proctest.Start(t, historicalBin, r.Addr(), "--data-dir", t.TempDir(), "--max-cache-bytes", "64MiB")
	c := client(p)
	ctx := context.Background()

	// Dormant until the first data call.
	if st, _ := c.GetCacheStats(ctx, &historicalv1.GetCacheStatsRequest{}); st.GetLoaded() {
		t.Fatal("loaded before any data call")
	}
	bf, err := c.Backfill(ctx, &historicalv1.BackfillRequest{Source: &historicalv1.BackfillRequest_Bundled{Bundled: true}})
	if err != nil {
		t.Fatal(err)
	}
	mins := csvMinutes(t)
	if bf.GetCandles_1M() != int64(len(mins)) || bf.GetFiles() != 7 || bf.GetSymbol() != "BTCUSDT" || len(mins) != 7*1440 {
		t.Fatalf("backfill %v (csv has %d rows)", bf, len(mins))
	}
	// The component is active and holds one lease: --max-cache-bytes when
	// granted, then following the cache (at most --max-cache-bytes).
	if s := state(t, p); s != coordinatorv1.ComponentState_COMPONENT_STATE_ACTIVE {
		t.Fatalf("state %v", s)
	}
	ls := leases(t, coord)
	if len(ls) != 1 || ls[0].GetComponent() != historicalComp || ls[0].GetBytes() > 64<<20 {
		t.Fatalf("leases %v", ls)
	}

	// Every interval of one day against the CSV.
	ivs := []struct {
		iv historicalv1.Interval
		w  time.Duration
		n  int
	}{
		{historicalv1.Interval_INTERVAL_1M, time.Minute, 1440},
		{historicalv1.Interval_INTERVAL_5M, 5 * time.Minute, 288},
		{historicalv1.Interval_INTERVAL_15M, 15 * time.Minute, 96},
		{historicalv1.Interval_INTERVAL_1H, time.Hour, 24},
		{historicalv1.Interval_INTERVAL_1D, 24 * time.Hour, 1},
	}
	var dayMins []bar
	for _, m := range mins {
		if !m.open.Before(day) && m.open.Before(day.Add(24*time.Hour)) {
			dayMins = append(dayMins, m)
		}
	}
	for _, tc := range ivs {
		want := rollup(dayMins, tc.w)
		resp, err := c.GetHistoricalData(ctx, &historicalv1.GetHistoricalDataRequest{Symbol: "BTCUSDT", Interval: tc.iv,
			Start: ts(day), End: ts(day.Add(24 * time.Hour)), PageSize: 10000})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetCandles()) != tc.n || len(want) != tc.n || resp.GetNextPageToken() != "" {
			t.Fatalf("%v: %d candles (want %d, csv gives %d)", tc.iv, len(resp.GetCandles()), tc.n, len(want))
		}
		for i, got := range resp.GetCandles() {
			checkCandle(t, tc.iv.String(), got, want[i])
		}
	}
	// The 1d candles of the whole week.
	weekDays := rollup(mins, 24*time.Hour)
	resp, err := c.GetHistoricalData(ctx, &historicalv1.GetHistoricalDataRequest{Symbol: "BTCUSDT", Interval: historicalv1.Interval_INTERVAL_1D,
		Start: ts(mins[0].open), End: ts(mins[len(mins)-1].open.Add(time.Minute))})
	if err != nil || len(resp.GetCandles()) != 7 {
		t.Fatalf("week of 1d: %d candles, %v", len(resp.GetCandles()), err)
	}
	for i, got := range resp.GetCandles() {
		checkCandle(t, "1d", got, weekDays[i])
	}
	latest, err := c.GetLatest(ctx, &historicalv1.GetLatestRequest{Symbol: "BTCUSDT", Interval: historicalv1.Interval_INTERVAL_1M})
	if err != nil {
		t.Fatal(err)
	}
	checkCandle(t, "latest 1m", latest.GetCandle(), mins[len(mins)-1])

	// Pagination over the week at 1m: every candle exactly once, in order.
	got, pages := allPages(t, c, &historicalv1.GetHistoricalDataRequest{Symbol: "BTCUSDT", Interval: historicalv1.Interval_INTERVAL_1M,
		Start: ts(mins[0].open), End: ts(mins[len(mins)-1].open.Add(time.Minute)), PageSize: 997})
	if len(got) != len(mins) || pages != (len(mins)+996)/997 {
		t.Fatalf("%d candles in %d pages, want %d", len(got), pages, len(mins))
	}
	seen := map[int64]bool{}
	for i, cd := range got {
		ms := cd.GetOpenTime().AsTime().UnixMilli()
		if seen[ms] {
			t.Fatalf("candle %v twice", cd.GetOpenTime().AsTime())
		}
		seen[ms] = true
		checkCandle(t, "paged 1m", cd, mins[i])
	}

	// Cache: the same query twice is a miss then a hit.
	before, _ := c.GetCacheStats(ctx, &historicalv1.GetCacheStatsRequest{})
	q := &historicalv1.GetHistoricalDataRequest{Symbol: "BTCUSDT", Interval: historicalv1.Interval_INTERVAL_1M,
		Start: ts(day.Add(time.Hour)), End: ts(day.Add(2 * time.Hour))}
	for range 3 {
		if _, err := c.GetHistoricalData(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	after, _ := c.GetCacheStats(ctx, &historicalv1.GetCacheStatsRequest{})
	if !after.GetLoaded() || after.GetMisses()-before.GetMisses() != 1 || after.GetHits()-before.GetHits() != 2 ||
		after.GetEntries() == 0 || after.GetBytes() <= 0 || after.GetHitRatio() <= 0 {
		t.Fatalf("cache stats before %v after %v", before, after)
	}
	// Unloading gives the lease back; the stats say not loaded.
	if _, err := lifecyclev1.NewLifecycleServiceClient(p.Conn).Deactivate(ctx, &lifecyclev1.DeactivateRequest{Component: historicalComp}); err != nil {
		t.Fatal(err)
	}
	if l := leases(t, coord); len(l) != 0 {
		t.Fatalf("leases after deactivate %v", l)
	}
	if st, _ := c.GetCacheStats(ctx, &historicalv1.GetCacheStatsRequest{}); st.GetLoaded() || st.GetLoads() != 1 {
		t.Fatalf("stats after unload %v", st)
	}
	if s := state(t, p); s != coordinatorv1.ComponentState_COMPONENT_STATE_DORMANT {
		t.Fatalf("state %v", s)
	}
}

func TestPersistsAcrossRestart(t *testing.T) {
	r, _ := coordtest.Start(t, coordtest.Config{})
	dir := t.TempDir()
	dataDir, err := marketdata.Dir(marketdata.BinanceBTCUSDT1m)
	if err != nil {
		t.Fatal(err)
	}
	p := proctest.Start(t, historicalBin, r.Addr(), "--data-dir", dir)
	ctx := context.Background()
	if _, err := client(p).Backfill(ctx, &historicalv1.BackfillRequest{
		Source: &historicalv1.BackfillRequest_Path{Path: filepath.Join(dataDir, "BTCUSDT-1m-2025-11-27.csv")}}); err != nil {
		t.Fatal(err)
	}
	// Trades sent with IngestTrades: minute 00:00 and 00:01 of 2026-01-01,
	// then a trade 10s into 00:02 that closes both (lateness 5s).
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	stream, err := client(p).IngestTrades(ctx)
	if err != nil {
		t.Fatal(err)
	}
	trades := []*historicalv1.Trade{
		{Symbol: "ETHUSDT", Time: ts(base.Add(time.Second)), Price: "3000.5", Quantity: "2", TradeId: 1},
		{Symbol: "ETHUSDT", Time: ts(base.Add(30 * time.Second)), Price: "3010", Quantity: "1", TradeId: 2},
		{Symbol: "ETHUSDT", Time: ts(base.Add(30 * time.Second)), Price: "3010", Quantity: "1", TradeId: 2}, // duplicate
		{Symbol: "ETHUSDT", Time: ts(base.Add(70 * time.Second)), Price: "2990", Quantity: "0.5", TradeId: 3},
		{Symbol: "ETHUSDT", Time: ts(base.Add(130 * time.Second)), Price: "2995", Quantity: "1", TradeId: 4},
	}
	if err := stream.Send(&historicalv1.IngestTradesRequest{Trades: trades}); err != nil {
		t.Fatal(err)
	}
	res, err := stream.CloseAndRecv()
	if err != nil || res.GetAccepted() != 4 || res.GetDuplicates() != 1 {
		t.Fatalf("ingest %v %v", res, err)
	}
	proctest.Eventually(t, 5*time.Second, "1m candles written", func() bool {
		st, _ := client(p).GetIngestStatus(ctx, &historicalv1.GetIngestStatusRequest{})
		return st.GetCandlesWritten() >= 1440+288+96+24+1+2
	})
	p.Stop(t)

	p2 := proctest.Start(t, historicalBin, r.Addr(), "--data-dir", dir)
	resp, err := client(p2).GetHistoricalData(ctx, &historicalv1.GetHistoricalDataRequest{Symbol: "BTCUSDT",
		Interval: historicalv1.Interval_INTERVAL_1M, Start: ts(day), End: ts(day.Add(24 * time.Hour)), PageSize: 2000})
	if err != nil || len(resp.GetCandles()) != 1440 {
		t.Fatalf("after restart: %d candles, %v", len(resp.GetCandles()), err)
	}
	eth, err := client(p2).GetHistoricalData(ctx, &historicalv1.GetHistoricalDataRequest{Symbol: "ETHUSDT",
		Interval: historicalv1.Interval_INTERVAL_1M, Start: ts(base), End: ts(base.Add(time.Hour))})
	if err != nil || len(eth.GetCandles()) != 2 {
		t.Fatalf("ETH after restart: %v, %v", eth, err)
	}
	m0 := eth.GetCandles()[0]
	if fx(t, m0.GetOpen()) != fx(t, "3000.5") || fx(t, m0.GetHigh()) != fx(t, "3010") || fx(t, m0.GetClose()) != fx(t, "3010") ||
		fx(t, m0.GetVolume()) != fx(t, "3") || m0.GetTrades() != 2 {
		t.Fatalf("ETH 00:00 candle %v", m0)
	}
}
