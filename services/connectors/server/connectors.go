// Package server is the connectors service's gRPC layer:
// tradsys.connectors.v1.ConnectorService over the manager package, with one
// error table (errors.go).
package server

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tradsys/mesh/pkg/lazy"
	connectorsv1 "github.com/tradsys/mesh/proto/tradsys/connectors/v1"
	"github.com/tradsys/mesh/services/connectors/feeds"
	"github.com/tradsys/mesh/services/connectors/manager"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// ConnectorService implements tradsys.connectors.v1.ConnectorService.
type ConnectorService struct {
	connectorsv1.UnimplementedConnectorServiceServer
	m *manager.Manager
	// SymbolPoll is how often a stream of "every symbol" looks for new ones.
	SymbolPoll time.Duration
	mu         sync.Mutex
	defs       *definitions // nil: definitions are not kept (no data directory)
	// UnreachableAfter ends a stream with UNAVAILABLE (and the cause) once
	// its connector has not been connected to its venue for this long, so
	// a caller is told rather than left waiting.
	UnreachableAfter time.Duration
}

// Register serves m on s.
func Register(s *grpc.Server, m *manager.Manager) *ConnectorService {
	svc := &ConnectorService{m: m, SymbolPoll: 100 * time.Millisecond, UnreachableAfter: 10 * time.Second}
	connectorsv1.RegisterConnectorServiceServer(s, svc)
	return svc
}

func (s *ConnectorService) definitions() *definitions {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.defs
}

func configFromPB(r *connectorsv1.ConnectRequest) (manager.Config, error) {
	cfg := manager.Config{Name: r.GetName()}
	switch r.GetKind() {
	case connectorsv1.ConnectorKind_CONNECTOR_KIND_SIMULATOR:
		sc := r.GetSimulator()
		cfg.Kind = manager.KindSimulator
		var start feeds.Decimal
		if sc.GetStartPrice() != "" {
			d, err := feeds.ParseDecimal(sc.GetStartPrice())
			if err != nil {
				return cfg, &manager.ConfigError{Field: "simulator.start_price", Err: err}
			}
			start = d
		}
		for _, s := range sc.GetSymbols() {
			cfg.Simulator.Symbols = append(cfg.Simulator.Symbols, feeds.SimSymbol{Symbol: s, StartPrice: start})
		}
		cfg.Simulator.Seed, cfg.Simulator.Rate = sc.GetSeed(), sc.GetRate()
		if cfg.Simulator.Rate == 0 && !sc.GetUnpaced() {
			cfg.Simulator.Rate = connectorsv1.DefaultSimulatorRate // paced unless asked otherwise
		}
		cfg.Simulator.MaxEvents, cfg.Simulator.TradeRatio = int(sc.GetMaxEvents()), sc.GetTradeRatio()
		if r.GetName() != "" {
			cfg.Simulator.Name = r.GetName()
		}
	case connectorsv1.ConnectorKind_CONNECTOR_KIND_REPLAY:
		rc := r.GetReplay()
		cfg.Kind = manager.KindReplay
		cfg.Replay = feeds.ReplayConfig{Paths: rc.GetPaths(), Speed: rc.GetSpeed(), Symbol: rc.GetSymbol(), Loop: rc.GetLoop(), Name: r.GetName()}
		cfg.Bundled = rc.GetBundled()
	case connectorsv1.ConnectorKind_CONNECTOR_KIND_BINANCE:
		bc := r.GetBinance()
		cfg.Kind = manager.KindBinance
		cfg.Binance = feeds.BinanceConfig{URL: bc.GetUrl(), Symbols: bc.GetSymbols(), Depth: bc.GetDepth(), Name: r.GetName()}
	}
	return cfg, nil
}

var kindPB = map[manager.Kind]connectorsv1.ConnectorKind{
	manager.KindSimulator: connectorsv1.ConnectorKind_CONNECTOR_KIND_SIMULATOR,
	manager.KindReplay:    connectorsv1.ConnectorKind_CONNECTOR_KIND_REPLAY,
	manager.KindBinance:   connectorsv1.ConnectorKind_CONNECTOR_KIND_BINANCE,
}

var statePB = map[manager.State]connectorsv1.ConnectorState{
	manager.StateStarting:   connectorsv1.ConnectorState_CONNECTOR_STATE_STARTING,
	manager.StateRunning:    connectorsv1.ConnectorState_CONNECTOR_STATE_RUNNING,
	manager.StateFinished:   connectorsv1.ConnectorState_CONNECTOR_STATE_FINISHED,
	manager.StateIdle:       connectorsv1.ConnectorState_CONNECTOR_STATE_IDLE,
	manager.StateStopping:   connectorsv1.ConnectorState_CONNECTOR_STATE_STOPPING,
	manager.StateFailed:     connectorsv1.ConnectorState_CONNECTOR_STATE_FAILED,
	manager.StateConnecting: connectorsv1.ConnectorState_CONNECTOR_STATE_CONNECTING,
}

func infoPB(i manager.Info) *connectorsv1.Connector {
	st := &connectorsv1.ConnectorStats{
		Messages: i.Stats.Messages, Events: i.Stats.Events, Malformed: i.Stats.Malformed, Reconnects: i.Stats.Reconnects,
		DialErrors: i.Stats.DialErrors, SequenceGaps: i.Stats.SeqGaps, Connected: i.Stats.Connected, Activations: i.Activations,
		RefusedSymbolEvents: i.RefusedSymbolEvents,
	}
	if i.Stats.LastError != nil {
		st.LastError = i.Stats.LastError.Error()
		st.LastErrorTime = timestamppb.New(i.Stats.LastErrorAt)
	}
	if i.State == manager.StateFailed && st.LastError == "" {
		st.LastError = i.Cause
	}
	return &connectorsv1.Connector{Name: i.Name, Kind: kindPB[i.Kind], State: statePB[i.State], Component: i.Component,
		Symbols: i.Symbols, Stats: st}
}

func (s *ConnectorService) Connect(ctx context.Context, r *connectorsv1.ConnectRequest) (*connectorsv1.ConnectResponse, error) {
	cfg, err := configFromPB(r)
	if err != nil {
		return nil, togRPCError(err)
	}
	info, err := s.m.Connect(ctx, cfg)
	if err != nil {
		return nil, togRPCError(err)
	}
	if err := s.definitions().put(info.Name, r); err != nil {
		return nil, togRPCError(&definitionError{connector: info.Name, what: "connected, but its definition was not saved (it will not survive a restart)", err: err})
	}
	return &connectorsv1.ConnectResponse{Connector: infoPB(info)}, nil
}

func (s *ConnectorService) Disconnect(ctx context.Context, r *connectorsv1.DisconnectRequest) (*connectorsv1.DisconnectResponse, error) {
	info, err := s.m.Disconnect(ctx, r.GetName())
	if err != nil {
		return nil, togRPCError(err)
	}
	if err := s.definitions().remove(r.GetName()); err != nil {
		return nil, togRPCError(&definitionError{connector: r.GetName(), what: "disconnected, but its saved definition was not removed (it comes back after a restart)", err: err})
	}
	return &connectorsv1.DisconnectResponse{Connector: infoPB(info)}, nil
}

func (s *ConnectorService) ListConnectors(context.Context, *connectorsv1.ListConnectorsRequest) (*connectorsv1.ListConnectorsResponse, error) {
	out := &connectorsv1.ListConnectorsResponse{}
	for _, i := range s.m.List() {
		out.Connectors = append(out.Connectors, infoPB(i))
	}
	return out, nil
}

func eventPB(connector string, ev feeds.Sequenced) *connectorsv1.StreamMarketDataResponse {
	out := &connectorsv1.StreamMarketDataResponse{Connector: connector, Symbol: ev.Event.EventSymbol(), Sequence: ev.Seq}
	switch e := ev.Event.(type) {
	case feeds.Trade:
		side := connectorsv1.Side_SIDE_UNSPECIFIED
		switch e.TakerSide {
		case feeds.SideBuy:
			side = connectorsv1.Side_SIDE_BUY
		case feeds.SideSell:
			side = connectorsv1.Side_SIDE_SELL
		}
		out.Event = &connectorsv1.StreamMarketDataResponse_Trade{Trade: &connectorsv1.Trade{
			Venue: e.Venue, Symbol: e.Symbol, TradeId: e.TradeID, Time: timestamppb.New(e.Time),
			Price: e.Price.String(), Quantity: e.Qty.String(), TakerSide: side}}
	case feeds.BookUpdate:
		levels := func(ls []feeds.Level) []*connectorsv1.PriceLevel {
			out := make([]*connectorsv1.PriceLevel, len(ls))
			for i, l := range ls {
				out[i] = &connectorsv1.PriceLevel{Price: l.Price.String(), Quantity: l.Qty.String()}
			}
			return out
		}
		out.Event = &connectorsv1.StreamMarketDataResponse_BookUpdate{BookUpdate: &connectorsv1.BookUpdate{
			Venue: e.Venue, Symbol: e.Symbol, VenueSequence: e.Seq, FirstVenueSequence: e.FirstSeq, Time: timestamppb.New(e.Time),
			Bids: levels(e.Bids), Asks: levels(e.Asks), Snapshot: e.Snapshot}}
	}
	return out
}

// StreamMarketData holds the connector's component for as long as the
// stream is open (so it is not unloaded as idle; a stream on an idle
// connector loads it again) and ends with UNAVAILABLE when the connector is
// unloaded under it (Disconnect, preemption, shutdown).
func (s *ConnectorService) StreamMarketData(r *connectorsv1.StreamMarketDataRequest, ss grpc.ServerStreamingServer[connectorsv1.StreamMarketDataResponse]) error {
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	c, err := s.m.Get(r.GetConnector())
	if err != nil {
		return togRPCError(err)
	}
	exit, err := c.Component().Enter(ctx)
	if err != nil {
		return togRPCError(err)
	}
	defer exit()
	stream, err := c.Stream()
	if err != nil {
		return togRPCError(err)
	}

	from := map[string]uint64{}
	for k, v := range r.GetFromSequences() {
		from[strings.ToUpper(k)] = v
	}
	type item struct {
		ev  feeds.Sequenced
		err error
	}
	events := make(chan item, 256)
	var (
		mu   sync.Mutex
		subs = map[string]*feeds.Subscription{}
		wg   sync.WaitGroup
	)
	defer func() {
		cancel()
		mu.Lock()
		for _, sub := range subs {
			sub.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()
	subscribe := func(symbol string, newSymbol bool) error {
		mu.Lock()
		defer mu.Unlock()
		if subs[symbol] != nil {
			return nil
		}
		seq, ok := from[symbol]
		if !ok && (r.GetFromOldest() || newSymbol) {
			seq, _ = stream.Bounds(symbol)
		}
		// A symbol the connector has no ring for needs room in its lease.
		if err := c.ReserveSymbol(ctx, stream, symbol); err != nil {
			return err
		}
		sub, err := stream.Subscribe(symbol, seq)
		if err != nil {
			return err
		}
		subs[symbol] = sub
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ev, err := sub.Next(ctx)
				if err == nil && r.GetTradesOnly() {
					if _, trade := ev.Event.(feeds.Trade); !trade {
						continue
					}
				}
				select {
				case events <- item{ev, err}:
				case <-ctx.Done():
					return
				}
				if err != nil {
					return
				}
			}
		}()
		return nil
	}
	symbols := make([]string, 0, len(r.GetSymbols()))
	for _, sym := range r.GetSymbols() {
		symbols = append(symbols, strings.ToUpper(sym))
	}
	all := len(symbols) == 0
	if all {
		symbols = stream.Symbols()
		for sym := range from {
			symbols = append(symbols, sym)
		}
		sort.Strings(symbols)
	}
	for _, sym := range symbols {
		if err := subscribe(sym, false); err != nil {
			return togRPCError(err)
		}
	}
	// End the stream when the component starts unloading.
	go func() {
		t := time.NewTicker(s.SymbolPoll)
		defer t.Stop()
		connectedAt := time.Now() // the last time the connector was not known to be cut off
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if st := c.Component().Status().State; st != lazy.Active {
				select {
				case events <- item{err: manager.ErrUnloading}:
				case <-ctx.Done():
				}
				return
			}
			if info := c.Info(); info.State != manager.StateConnecting {
				connectedAt = time.Now()
			} else if s.UnreachableAfter > 0 && time.Since(connectedAt) > s.UnreachableAfter {
				select {
				case events <- item{err: &manager.UnreachableError{Connector: info.Name, For: s.UnreachableAfter,
					Attempts: info.Stats.DialErrors, Cause: info.Stats.LastError}}:
				case <-ctx.Done():
				}
				return
			}
			if all {
				for _, sym := range stream.Symbols() {
					if err := subscribe(sym, true); err != nil {
						select {
						case events <- item{err: err}:
						case <-ctx.Done():
						}
						return
					}
				}
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return togRPCError(ctx.Err())
		case it := <-events:
			if it.err != nil {
				if errors.Is(it.err, context.Canceled) {
					return togRPCError(ctx.Err())
				}
				return togRPCError(it.err)
			}
			if err := ss.Send(eventPB(c.Name(), it.ev)); err != nil {
				return err
			}
		}
	}
}
