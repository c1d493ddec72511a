package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	historicalv1 "github.com/tradsys/mesh/proto/tradsys/historical/v1"
	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	"github.com/tradsys/mesh/services/gateway/hub"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// marketData is hub.MarketData over matching and historical.
type marketData struct {
	matching   matchingv1.MatchingServiceClient
	historical historicalv1.HistoricalDataServiceClient
	grids      *grids
}

func (m *marketData) Trades(ctx context.Context, symbol string, from uint64, fn func(hub.Trade)) error {
	st, err := m.matching.StreamTrades(ctx, &matchingv1.StreamTradesRequest{Symbol: symbol, FromSequence: from})
	if err != nil {
		return toHubError(err)
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("matching ended the trade stream")
			}
			return toHubError(err)
		}
		fn(tradeFromProto(resp.GetTrade(), m.grids.get(ctx, symbol)))
	}
}

func tradeFromProto(t *matchingv1.Trade, g grid) hub.Trade {
	out := hub.Trade{Symbol: t.GetSymbol(), Sequence: t.GetSequence(), Price: scale(t.GetPrice(), g.tick, g.ok),
		Quantity: scale(t.GetQuantity(), g.lot, g.ok), TakerSide: sideName(t.GetTakerSide())}
	if t.GetExecutedAt() != nil {
		out.Time = t.GetExecutedAt().AsTime().UnixMilli()
	}
	return out
}

func sideName(s matchingv1.Side) string {
	switch s {
	case matchingv1.Side_SIDE_BUY:
		return "buy"
	case matchingv1.Side_SIDE_SELL:
		return "sell"
	}
	return ""
}

func (m *marketData) Book(ctx context.Context, symbol string, depth int) (hub.Book, error) {
	resp, err := m.matching.GetOrderBook(ctx, &matchingv1.GetOrderBookRequest{Symbol: symbol, Depth: int32(depth)})
	if err != nil {
		return hub.Book{}, toHubError(err)
	}
	g := m.grids.get(ctx, symbol)
	b := hub.Book{Symbol: symbol, LastTradeSeq: resp.GetLastTradeSequence(), RestingOrders: resp.GetRestingOrders(),
		Bids: []hub.Level{}, Asks: []hub.Level{}}
	for _, l := range resp.GetBids() {
		b.Bids = append(b.Bids, hub.Level{Price: scale(l.GetPrice(), g.tick, g.ok), Quantity: scale(l.GetQuantity(), g.lot, g.ok), Orders: l.GetOrderCount()})
	}
	for _, l := range resp.GetAsks() {
		b.Asks = append(b.Asks, hub.Level{Price: scale(l.GetPrice(), g.tick, g.ok), Quantity: scale(l.GetQuantity(), g.lot, g.ok), Orders: l.GetOrderCount()})
	}
	return b, nil
}

var intervals = map[string]struct {
	iv historicalv1.Interval
	d  time.Duration
}{
	"1m":  {historicalv1.Interval_INTERVAL_1M, time.Minute},
	"5m":  {historicalv1.Interval_INTERVAL_5M, 5 * time.Minute},
	"15m": {historicalv1.Interval_INTERVAL_15M, 15 * time.Minute},
	"1h":  {historicalv1.Interval_INTERVAL_1H, time.Hour},
	"1d":  {historicalv1.Interval_INTERVAL_1D, 24 * time.Hour},
}

func (m *marketData) Candles(ctx context.Context, symbol, interval string, n int) ([]hub.Candle, error) {
	iv, ok := intervals[interval]
	if !ok {
		return nil, hub.Errorf(hub.CodeInvalidField, "interval %q", interval)
	}
	now := time.Now()
	resp, err := m.historical.GetHistoricalData(ctx, &historicalv1.GetHistoricalDataRequest{Symbol: symbol, Interval: iv.iv,
		Start: timestamppb.New(now.Add(-time.Duration(n) * iv.d)), End: timestamppb.New(now.Add(iv.d)), PageSize: int32(n)})
	if err != nil {
		return nil, toHubError(err)
	}
	var out []hub.Candle
	for _, c := range resp.GetCandles() {
		out = append(out, candleFromProto(c, false))
	}
	latest, err := m.historical.GetLatest(ctx, &historicalv1.GetLatestRequest{Symbol: symbol, Interval: iv.iv, IncludePartial: true})
	if err == nil && latest.GetCandle() != nil {
		c := candleFromProto(latest.GetCandle(), latest.GetPartial())
		if len(out) > 0 && out[len(out)-1].OpenTime == c.OpenTime {
			out[len(out)-1] = c
		} else if len(out) == 0 || out[len(out)-1].OpenTime < c.OpenTime {
			out = append(out, c)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out, nil
}

func candleFromProto(c *historicalv1.Candle, partial bool) hub.Candle {
	return hub.Candle{OpenTime: c.GetOpenTime().AsTime().UnixMilli(), Open: c.GetOpen(), High: c.GetHigh(), Low: c.GetLow(),
		Close: c.GetClose(), Volume: c.GetVolume(), Trades: c.GetTrades(), Partial: partial}
}

// mesh is hub.Mesh over the coordinator.
type mesh struct {
	coord coordinatorv1.CoordinatorServiceClient
}

func (m *mesh) Snapshot(ctx context.Context) (hub.MeshState, error) {
	st, err := m.coord.GetStatus(ctx, &coordinatorv1.GetStatusRequest{})
	if err != nil {
		return hub.MeshState{}, toHubError(err)
	}
	comps, err := m.coord.ListComponents(ctx, &coordinatorv1.ListComponentsRequest{})
	if err != nil {
		return hub.MeshState{}, toHubError(err)
	}
	leases, err := m.coord.ListLeases(ctx, &coordinatorv1.ListLeasesRequest{})
	if err != nil {
		return hub.MeshState{}, toHubError(err)
	}
	locks, err := m.coord.ListLocks(ctx, &coordinatorv1.ListLocksRequest{})
	if err != nil {
		return hub.MeshState{}, toHubError(err)
	}
	out := hub.MeshState{BudgetBytes: st.GetBudgetBytes(), UsedBytes: st.GetUsedBytes(), Leader: st.GetLeader(),
		Sessions: st.GetSessions(), Waiters: st.GetWaiters(), At: time.Now(),
		Components: []hub.Component{}, Leases: []hub.Lease{}, Locks: []hub.Lock{}}
	for _, c := range comps.GetComponents() {
		out.Components = append(out.Components, hub.Component{Name: c.GetName(), Endpoint: c.GetEndpoint(),
			State: strings.TrimPrefix(c.GetState().String(), "COMPONENT_STATE_"), MemoryBytes: c.GetMemoryBytes(),
			Priority: c.GetPriority(), Cause: c.GetCause()})
	}
	for _, l := range leases.GetLeases() {
		out.Leases = append(out.Leases, hub.Lease{Component: l.GetComponent(), Owner: l.GetOwner(), Bytes: l.GetBytes(),
			Priority: l.GetPriority(), Preemptible: l.GetPreemptible()})
	}
	// Most important first: the bar reads left to right by priority.
	sort.SliceStable(out.Leases, func(i, j int) bool { return out.Leases[i].Priority < out.Leases[j].Priority })
	for _, l := range locks.GetLocks() {
		out.Locks = append(out.Locks, hub.Lock{Name: l.GetName(), Owner: l.GetOwner(), FencingToken: l.GetFencingToken(),
			Waiters: l.GetWaiters()})
	}
	return out, nil
}

func (m *mesh) Watch(ctx context.Context, fn func(string)) error {
	st, err := m.coord.Watch(ctx, &coordinatorv1.WatchRequest{})
	if err != nil {
		return toHubError(err)
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			return toHubError(err)
		}
		ev := resp.GetEvent()
		desc := strings.TrimPrefix(ev.GetType().String(), "EVENT_TYPE_")
		for _, s := range []string{ev.GetComponent(), ev.GetLockName(), ev.GetMessage()} {
			if s != "" {
				desc += " " + s
			}
		}
		if ev.GetBytes() != 0 {
			desc += fmt.Sprintf(" %d MiB", ev.GetBytes()>>20)
		}
		fn(desc)
	}
}
