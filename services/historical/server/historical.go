// Package server is the historical service's gRPC layer:
// tradsys.historical.v1.HistoricalDataService over the history package,
// with one error table (errors.go).
package server

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/tradsys/mesh/pkg/candlewire"
	"github.com/tradsys/mesh/pkg/lazy"
	"github.com/tradsys/mesh/pkg/lazy/lazygrpc"
	"github.com/tradsys/mesh/pkg/marketdata"
	historicalv1 "github.com/tradsys/mesh/proto/tradsys/historical/v1"
	"github.com/tradsys/mesh/services/historical/candles"
	"github.com/tradsys/mesh/services/historical/history"
	"github.com/tradsys/mesh/services/historical/sources"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// HistoricalService implements tradsys.historical.v1.HistoricalDataService.
type HistoricalService struct {
	historicalv1.UnimplementedHistoricalDataServiceServer
	h         *history.History
	followers *sources.Followers
}

// Gated are the methods that need the cache (the "historical" component).
var Gated = []string{
	historicalv1.HistoricalDataService_GetHistoricalData_FullMethodName,
	historicalv1.HistoricalDataService_StreamHistoricalData_FullMethodName,
	historicalv1.HistoricalDataService_GetLatest_FullMethodName,
	historicalv1.HistoricalDataService_Backfill_FullMethodName,
}

// Register serves h on s and makes the gated methods require comp.
func Register(s *grpc.Server, gate *lazygrpc.Gate, comp *lazy.Component, h *history.History, f *sources.Followers) *HistoricalService {
	svc := &HistoricalService{h: h, followers: f}
	historicalv1.RegisterHistoricalDataServiceServer(s, svc)
	for _, m := range Gated {
		gate.Require(m, comp)
	}
	return svc
}

var ivFromPB = map[historicalv1.Interval]candles.Interval{
	historicalv1.Interval_INTERVAL_1M:  candles.Interval1m,
	historicalv1.Interval_INTERVAL_5M:  candles.Interval5m,
	historicalv1.Interval_INTERVAL_15M: candles.Interval15m,
	historicalv1.Interval_INTERVAL_1H:  candles.Interval1h,
	historicalv1.Interval_INTERVAL_1D:  candles.Interval1d,
}

var ivToPB = func() map[candles.Interval]historicalv1.Interval {
	m := map[candles.Interval]historicalv1.Interval{}
	for k, v := range ivFromPB {
		m[v] = k
	}
	return m
}()

// IntervalPB is iv's API enum.
func IntervalPB(iv candles.Interval) historicalv1.Interval { return ivToPB[iv] }

// CandlePB converts a candle.
func CandlePB(c *candles.Candle) *historicalv1.Candle {
	return &historicalv1.Candle{Symbol: c.Symbol, Interval: ivToPB[c.Interval], OpenTime: timestamppb.New(c.OpenTime),
		Open: c.Open.String(), High: c.High.String(), Low: c.Low.String(), Close: c.Close.String(),
		Volume: c.Volume.String(), QuoteVolume: c.QuoteVolume.String(), Trades: c.Trades}
}

// CompactPB encodes candles of one symbol and interval, oldest first, in
// the compact form (pkg/candlewire).
func CompactPB(symbol string, iv historicalv1.Interval, cs []candles.Candle) (*historicalv1.CompactCandles, error) {
	return candlewire.Encode(symbol, iv, len(cs), func(i int) candlewire.Bar {
		c := &cs[i]
		return candlewire.Bar{OpenTimeMs: c.OpenTime.UnixMilli(), Open: c.Open, High: c.High, Low: c.Low, Close: c.Close,
			Volume: c.Volume, QuoteVolume: c.QuoteVolume, Trades: c.Trades}
	})
}

// candlesPB is cs in the readable form.
func candlesPB(cs []candles.Candle) []*historicalv1.Candle {
	out := make([]*historicalv1.Candle, len(cs))
	for i := range cs {
		out[i] = CandlePB(&cs[i])
	}
	return out
}

func (s *HistoricalService) GetHistoricalData(_ context.Context, r *historicalv1.GetHistoricalDataRequest) (*historicalv1.GetHistoricalDataResponse, error) {
	limit := int(r.GetPageSize())
	if limit == 0 {
		limit = historicalv1.DefaultPageSize
	}
	page, err := s.h.Range(r.GetSymbol(), ivFromPB[r.GetInterval()], r.GetStart().AsTime(), r.GetEnd().AsTime(), limit, r.GetPageToken())
	if err != nil {
		return nil, togRPCError(err)
	}
	out := &historicalv1.GetHistoricalDataResponse{NextPageToken: page.NextPageToken}
	if !r.GetEncoding().Compact() {
		out.Candles = candlesPB(page.Candles)
	} else if out.Compact, err = CompactPB(r.GetSymbol(), r.GetInterval(), page.Candles); err != nil {
		return nil, togRPCError(err)
	}
	return out, nil
}

// StreamHistoricalData sends the range one chunk (one page) at a time, so
// memory stays at one chunk whatever the range. The first chunk is read
// through the cache (a day asked again and again is a hit); the rest come
// from the store without filling the cache, so streaming a year does not
// evict everyone else's hot pages for pages nobody asks twice.
func (s *HistoricalService) StreamHistoricalData(r *historicalv1.StreamHistoricalDataRequest,
	ss grpc.ServerStreamingServer[historicalv1.StreamHistoricalDataResponse]) error {
	limit := int(r.GetChunkSize())
	if limit == 0 {
		limit = historicalv1.DefaultPageSize
	}
	iv, start, end := ivFromPB[r.GetInterval()], r.GetStart().AsTime(), r.GetEnd().AsTime()
	token := ""
	for {
		if err := ss.Context().Err(); err != nil {
			return togRPCError(err)
		}
		read := s.h.Range
		if token != "" {
			read = s.h.Store().Range
		}
		page, err := read(r.GetSymbol(), iv, start, end, limit, token)
		if err != nil {
			return togRPCError(err)
		}
		msg := &historicalv1.StreamHistoricalDataResponse{}
		if !r.GetEncoding().Compact() {
			msg.Candles = candlesPB(page.Candles)
		} else if msg.Compact, err = CompactPB(r.GetSymbol(), r.GetInterval(), page.Candles); err != nil {
			return togRPCError(err)
		}
		if len(page.Candles) > 0 {
			if err := ss.Send(msg); err != nil {
				return err
			}
		}
		if token = page.NextPageToken; token == "" {
			return nil
		}
	}
}

func (s *HistoricalService) GetLatest(_ context.Context, r *historicalv1.GetLatestRequest) (*historicalv1.GetLatestResponse, error) {
	c, partial, err := s.h.Latest(r.GetSymbol(), ivFromPB[r.GetInterval()], r.GetIncludePartial())
	if err != nil {
		return nil, togRPCError(err)
	}
	return &historicalv1.GetLatestResponse{Candle: CandlePB(&c), Partial: partial}, nil
}

func (s *HistoricalService) GetCacheStats(context.Context, *historicalv1.GetCacheStatsRequest) (*historicalv1.GetCacheStatsResponse, error) {
	st, loaded, loads := s.h.CacheStats()
	out := &historicalv1.GetCacheStatsResponse{Loaded: loaded, Hits: st.Hits, Misses: st.Misses, Evictions: st.Evictions,
		Expirations: st.Expirations, Rejected: st.Rejected, Bytes: st.Bytes, Entries: int64(st.Entries), MaxBytes: st.MaxBytes, Loads: loads}
	if n := st.Hits + st.Misses; n > 0 {
		out.HitRatio = float64(st.Hits) / float64(n)
	}
	return out, nil
}

func (s *HistoricalService) Backfill(_ context.Context, r *historicalv1.BackfillRequest) (*historicalv1.BackfillResponse, error) {
	path := r.GetPath()
	if r.GetBundled() {
		dir, err := marketdata.Dir(marketdata.BinanceBTCUSDT1m)
		if err != nil {
			return nil, togRPCError(&history.SourceError{Field: "bundled", Err: errors.Join(history.ErrNoFiles, err)})
		}
		path = dir
	}
	res, err := s.h.Backfill(path, r.GetSymbol())
	if err != nil {
		return nil, togRPCError(err)
	}
	out := &historicalv1.BackfillResponse{Symbol: res.Symbol, Files: int32(res.Files), Candles_1M: int64(res.Candles1m),
		CandlesWritten: int64(res.Written)}
	if res.Candles1m > 0 {
		out.FirstOpenTime, out.LastOpenTime = timestamppb.New(res.First), timestamppb.New(res.Last)
	}
	return out, nil
}

func (s *HistoricalService) IngestTrades(ss grpc.ClientStreamingServer[historicalv1.IngestTradesRequest, historicalv1.IngestTradesResponse]) error {
	src, _ := s.h.Source("ingest")
	var total history.IngestResult
	batch := make([]candles.Trade, 0, 256)
	for {
		msg, err := ss.Recv()
		if err == io.EOF {
			return ss.SendAndClose(&historicalv1.IngestTradesResponse{Received: total.Received, Accepted: total.Accepted,
				Duplicates: total.Duplicates, Late: total.Late, Invalid: total.Invalid})
		}
		if err != nil {
			return err
		}
		batch = batch[:0]
		for _, t := range msg.GetTrades() {
			p, perr := candles.ParseFixed(t.GetPrice())
			q, qerr := candles.ParseFixed(t.GetQuantity())
			if perr != nil || qerr != nil { // validated already; belt and braces
				total.Received++
				total.Invalid++
				continue
			}
			batch = append(batch, candles.Trade{Symbol: t.GetSymbol(), Time: t.GetTime().AsTime(), Price: p, Qty: q, ID: t.GetTradeId()})
		}
		total.Add(s.h.Ingest(batch))
		src.AddTrades(len(batch))
	}
}

func (s *HistoricalService) FollowConnector(_ context.Context, r *historicalv1.FollowConnectorRequest) (*historicalv1.FollowConnectorResponse, error) {
	src, err := s.followers.Follow(r.GetAddress(), r.GetConnector(), r.GetSymbols())
	if err != nil {
		return nil, togRPCError(&history.SourceError{Field: "address", Err: err})
	}
	if err := s.followers.Remember(sources.Follow{Address: r.GetAddress(), Connector: r.GetConnector(), Symbols: r.GetSymbols()}); err != nil {
		return nil, togRPCError(fmt.Errorf("following %s, but the follow was not kept (it will not survive a restart): %w", src.Name, err))
	}
	return &historicalv1.FollowConnectorResponse{Source: &historicalv1.TradeSource{Name: src.Name, Connected: src.Connected()}}, nil
}

func (s *HistoricalService) GetIngestStatus(context.Context, *historicalv1.GetIngestStatusRequest) (*historicalv1.GetIngestStatusResponse, error) {
	st := s.h.AggregatorStats()
	out := &historicalv1.GetIngestStatusResponse{Accepted: st.Accepted, Duplicates: st.Duplicates, Late: st.Late,
		Invalid: st.Invalid, CandlesWritten: s.h.Written()}
	for _, src := range s.h.Sources() {
		out.Sources = append(out.Sources, &historicalv1.TradeSource{Name: src.Name, Connected: src.Connected, Trades: src.Trades,
			LastError: src.LastError})
	}
	return out, nil
}
