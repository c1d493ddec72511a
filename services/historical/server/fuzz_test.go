package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/grpcfuzz"
	historicalv1 "github.com/tradsys/mesh/proto/tradsys/historical/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"github.com/tradsys/mesh/services/historical/history"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// FuzzRequests decodes random bytes as each request of
// HistoricalDataService and sends it through the full server chain
// (validation, recovery, lazy gate, handler, error table) over real gRPC:
// the answer may be an error, but never INTERNAL or UNKNOWN, and the
// process never crashes.
func FuzzRequests(f *testing.F) {
	r, _ := coordtest.Start(f, coordtest.Config{})
	c, _, conn := startService(f, r.Addr(), history.Options{NoSync: true})
	if _, err := c.Backfill(context.Background(), &historicalv1.BackfillRequest{Source: &historicalv1.BackfillRequest_Bundled{Bundled: true}}); err != nil {
		f.Fatal(err)
	}
	methods := grpcfuzz.Methods(f, historicalv1.File_tradsys_historical_v1_historical_proto.Services().ByName("HistoricalDataService"))
	seed := func(name string, m proto.Message) { grpcfuzz.Seed(f, methods, name, m) }
	day := time.Date(2025, 11, 27, 0, 0, 0, 0, time.UTC)
	seed("GetHistoricalData", &historicalv1.GetHistoricalDataRequest{Symbol: "BTCUSDT", Interval: historicalv1.Interval_INTERVAL_1M,
		Start: timestamppb.New(day), End: timestamppb.New(day.Add(time.Hour)), PageSize: 7})
	seed("GetHistoricalData", &historicalv1.GetHistoricalDataRequest{Symbol: "BTCUSDT", Interval: historicalv1.Interval_INTERVAL_1D,
		Start: timestamppb.New(day), End: timestamppb.New(day.Add(time.Hour)), PageToken: "AQAAAZq_OFMA1nN5iA"})
	seed("GetHistoricalData", &historicalv1.GetHistoricalDataRequest{Symbol: "BTCUSDT", Interval: historicalv1.Interval_INTERVAL_5M,
		Start: timestamppb.New(day), End: timestamppb.New(day.Add(24 * time.Hour)), Encoding: historicalv1.CandleEncoding_CANDLE_ENCODING_COMPACT})
	seed("StreamHistoricalData", &historicalv1.StreamHistoricalDataRequest{Symbol: "BTCUSDT", Interval: historicalv1.Interval_INTERVAL_1M,
		Start: timestamppb.New(day), End: timestamppb.New(day.Add(3 * time.Hour)), ChunkSize: 50, Encoding: historicalv1.CandleEncoding_CANDLE_ENCODING_COMPACT})
	seed("StreamHistoricalData", &historicalv1.StreamHistoricalDataRequest{Symbol: "BTCUSDT", Interval: historicalv1.Interval_INTERVAL_1H,
		Start: timestamppb.New(day), End: timestamppb.New(day.Add(48 * time.Hour))})
	seed("GetLatest", &historicalv1.GetLatestRequest{Symbol: "BTCUSDT", Interval: historicalv1.Interval_INTERVAL_5M, IncludePartial: true})
	seed("GetCacheStats", &historicalv1.GetCacheStatsRequest{})
	seed("Backfill", &historicalv1.BackfillRequest{Source: &historicalv1.BackfillRequest_Path{Path: "/nonexistent/*.csv"}})
	seed("IngestTrades", &historicalv1.IngestTradesRequest{Trades: []*historicalv1.Trade{{Symbol: "X", Time: timestamppb.New(day),
		Price: "1.5", Quantity: "0.00000001", TradeId: 1}}})
	seed("FollowConnector", &historicalv1.FollowConnectorRequest{Address: "127.0.0.1:1", Symbols: []string{"BTCUSDT"}})
	seed("GetIngestStatus", &historicalv1.GetIngestStatusRequest{})
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		m, req, ok := grpcfuzz.Decode(methods, which, data)
		if !ok {
			return
		}
		// Keep followers off the network: one closed loopback port.
		if r, isFollow := req.(*historicalv1.FollowConnectorRequest); isFollow && r.Validate() == nil {
			r.Address, r.Connector = "127.0.0.1:1", ""
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		err := grpcfuzz.Call(ctx, conn, m, req)
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("%s(%v) took %v", m.Name, req, d)
		}
		grpcfuzz.Check(t, m, req, err)
	})
}
