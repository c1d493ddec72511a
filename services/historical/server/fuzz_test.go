package server_test

import (
	"context"
	"testing"
	"time"

	historicalv1 "github.com/tradsys/mesh/proto/tradsys/historical/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"github.com/tradsys/mesh/services/historical/history"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func checkCode(t *testing.T, what string, err error) {
	t.Helper()
	switch status.Code(err) {
	case codes.Internal, codes.Unknown, codes.DataLoss, codes.Unimplemented:
		t.Fatalf("%s: %v", what, err)
	}
}

// FuzzRequests decodes random bytes as each request of
// HistoricalDataService and sends it through the full server chain
// (validation, recovery, lazy gate, handler, error table) over real gRPC:
// the answer may be an error, but never INTERNAL or UNKNOWN, and the
// process never crashes.
func FuzzRequests(f *testing.F) {
	r, _ := coordtest.Start(f, coordtest.Config{})
	c, _ := startService(f, r.Addr(), history.Options{NoSync: true})
	if _, err := c.Backfill(context.Background(), &historicalv1.BackfillRequest{Source: &historicalv1.BackfillRequest_Bundled{Bundled: true}}); err != nil {
		f.Fatal(err)
	}
	day := time.Date(2025, 11, 27, 0, 0, 0, 0, time.UTC)
	f.Add(uint8(0), mustMarshal(&historicalv1.GetHistoricalDataRequest{Symbol: "BTCUSDT", Interval: historicalv1.Interval_INTERVAL_1M,
		Start: timestamppb.New(day), End: timestamppb.New(day.Add(time.Hour)), PageSize: 7}))
	f.Add(uint8(0), mustMarshal(&historicalv1.GetHistoricalDataRequest{Symbol: "BTCUSDT", Interval: historicalv1.Interval_INTERVAL_1D,
		Start: timestamppb.New(day), End: timestamppb.New(day.Add(time.Hour)), PageToken: "AQAAAZq_OFMA1nN5iA"}))
	f.Add(uint8(1), mustMarshal(&historicalv1.GetLatestRequest{Symbol: "BTCUSDT", Interval: historicalv1.Interval_INTERVAL_5M, IncludePartial: true}))
	f.Add(uint8(2), []byte{})
	f.Add(uint8(3), mustMarshal(&historicalv1.BackfillRequest{Source: &historicalv1.BackfillRequest_Path{Path: "/nonexistent/*.csv"}}))
	f.Add(uint8(4), mustMarshal(&historicalv1.IngestTradesRequest{Trades: []*historicalv1.Trade{{Symbol: "X", Time: timestamppb.New(day),
		Price: "1.5", Quantity: "0.00000001", TradeId: 1}}}))
	f.Add(uint8(5), mustMarshal(&historicalv1.FollowConnectorRequest{Address: "127.0.0.1:1", Symbols: []string{"BTCUSDT"}}))
	f.Add(uint8(6), []byte{})
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		defer func() {
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("request %d took %v: %x", which%7, d, data)
			}
		}()
		switch which % 7 {
		case 0:
			req := &historicalv1.GetHistoricalDataRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			_, err := c.GetHistoricalData(ctx, req)
			checkCode(t, "GetHistoricalData", err)
		case 1:
			req := &historicalv1.GetLatestRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			_, err := c.GetLatest(ctx, req)
			checkCode(t, "GetLatest", err)
		case 2:
			req := &historicalv1.GetCacheStatsRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			_, err := c.GetCacheStats(ctx, req)
			checkCode(t, "GetCacheStats", err)
		case 3:
			req := &historicalv1.BackfillRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			_, err := c.Backfill(ctx, req)
			checkCode(t, "Backfill", err)
		case 4:
			req := &historicalv1.IngestTradesRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			s, err := c.IngestTrades(ctx)
			if err == nil {
				_ = s.Send(req)
				_, err = s.CloseAndRecv()
			}
			checkCode(t, "IngestTrades", err)
		case 5:
			req := &historicalv1.FollowConnectorRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			// Keep followers off the network: one closed loopback port.
			if req.Validate() == nil {
				req.Address, req.Connector = "127.0.0.1:1", ""
			}
			_, err := c.FollowConnector(ctx, req)
			checkCode(t, "FollowConnector", err)
		case 6:
			req := &historicalv1.GetIngestStatusRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			_, err := c.GetIngestStatus(ctx, req)
			checkCode(t, "GetIngestStatus", err)
		}
	})
}
