package server

import (
	"context"

	"github.com/tradsys/mesh/pkg/fixed"
	"github.com/tradsys/mesh/pkg/lazy"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	strategyv1 "github.com/tradsys/mesh/proto/tradsys/strategy/v1"
	"github.com/tradsys/mesh/services/strategy/strategies"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// StartStrategy saves the config, then activates the strategy's component
// (its memory lease, then its runner).
func (s *Server) StartStrategy(ctx context.Context, r *strategyv1.StartStrategyRequest) (*strategyv1.StartStrategyResponse, error) {
	cfg := configFromPB(r.GetConfig())
	if err := s.m.Put(cfg); err != nil {
		return nil, togRPCError(err)
	}
	cfg, _, _ = s.m.Get(cfg.Name) // with defaults applied
	c, err := s.component(cfg)
	if err != nil {
		return nil, togRPCError(err)
	}
	if err := c.Activate(ctx); err != nil {
		_ = s.m.SetStopped(cfg.Name) // not running: a restart should not retry it
		return nil, togRPCError(err)
	}
	return &strategyv1.StartStrategyResponse{Strategy: s.strategyPB(cfg.Name)}, nil
}

// StopStrategy records the stop, then unloads the component (its runner
// cancels the strategy's open orders) and releases the lease.
func (s *Server) StopStrategy(ctx context.Context, r *strategyv1.StopStrategyRequest) (*strategyv1.StopStrategyResponse, error) {
	cfg, _, err := s.m.Get(r.GetName())
	if err != nil {
		return nil, togRPCError(err)
	}
	if err := s.m.SetStopped(cfg.Name); err != nil {
		return nil, togRPCError(err)
	}
	if c := s.componentOf(cfg); c != nil {
		if err := c.Deactivate(ctx, "operator"); err != nil {
			return nil, togRPCError(err)
		}
	}
	return &strategyv1.StopStrategyResponse{Strategy: s.strategyPB(cfg.Name)}, nil
}

func (s *Server) ListStrategies(context.Context, *strategyv1.ListStrategiesRequest) (*strategyv1.ListStrategiesResponse, error) {
	out := &strategyv1.ListStrategiesResponse{}
	for _, st := range s.m.List() {
		out.Strategies = append(out.Strategies, s.statusPB(st))
	}
	return out, nil
}

func (s *Server) GetStrategyMetrics(_ context.Context, r *strategyv1.GetStrategyMetricsRequest) (*strategyv1.GetStrategyMetricsResponse, error) {
	m, err := s.m.Metrics(r.GetName())
	if err != nil {
		return nil, togRPCError(err)
	}
	pb := &strategyv1.StrategyMetrics{Name: r.GetName(), OrdersSent: m.OrdersSent, OrdersRejected: m.OrdersRejected,
		CancelsSent: m.CancelsSent, Fills: m.Fills, BoughtQuantity: m.Bought.Text(), SoldQuantity: m.Sold.Text(),
		Position: m.Position.Text(), Cash: m.Cash.Text(), LastPrice: m.LastPrice.Text(), Pnl: m.PnL.Text(),
		MarketEvents: m.MarketEvents, OrderErrors: m.OrderErrors}
	if !m.UpdatedAt.IsZero() {
		pb.UpdatedAt = timestamppb.New(m.UpdatedAt)
	}
	return &strategyv1.GetStrategyMetricsResponse{Metrics: pb}, nil
}

func (s *Server) strategyPB(name string) *strategyv1.Strategy {
	for _, st := range s.m.List() {
		if st.Config.Name == name {
			return s.statusPB(st)
		}
	}
	return nil
}

func (s *Server) statusPB(st strategies.Status) *strategyv1.Strategy {
	pb := &strategyv1.Strategy{Config: configPB(st.Config), Component: strategies.Component(st.Config.Type, st.Config.Name),
		Running: st.Running, LastError: st.LastError, MemoryBytes: s.o.TypeMemory[st.Config.Type],
		State: coordinatorv1.ComponentState_COMPONENT_STATE_DORMANT}
	if c := s.componentOf(st.Config); c != nil {
		cs := c.Status()
		pb.State = coordinatorv1.ComponentState(cs.State)
		if cs.Cause != "" && pb.LastError == "" && cs.State == lazy.Failed {
			pb.LastError = cs.Cause
		}
	}
	if !st.StartedAt.IsZero() {
		pb.StartedAt = timestamppb.New(st.StartedAt)
	}
	return pb
}

var typeOf = map[strategyv1.StrategyType]strategies.Type{
	strategyv1.StrategyType_STRATEGY_TYPE_MARKET_MAKING:   strategies.MarketMaking,
	strategyv1.StrategyType_STRATEGY_TYPE_TREND_FOLLOWING: strategies.TrendFollowing,
	strategyv1.StrategyType_STRATEGY_TYPE_TWAP:            strategies.TWAP,
}

func dec(s string) fixed.Decimal {
	d, _ := fixed.Parse(s) // the request validator checked every decimal
	return d
}

func configFromPB(c *strategyv1.StrategyConfig) strategies.Config {
	cfg := strategies.Config{Name: c.GetName(), Type: typeOf[c.GetType()], Account: c.GetAccount(), Symbol: c.GetSymbol(),
		Connector: c.GetConnector(), MarketSymbol: c.GetMarketSymbol()}
	if p := c.GetMarketMaking(); p != nil {
		cfg.MarketMaking = &strategies.MarketMakingParams{Spread: dec(p.GetSpread()), Quantity: dec(p.GetQuantity()),
			MaxInventory: dec(p.GetMaxInventory()), RequoteThreshold: dec(p.GetRequoteThreshold()),
			RequoteInterval: p.GetRequoteInterval().AsDuration()}
	}
	if p := c.GetTrendFollowing(); p != nil {
		cfg.TrendFollowing = &strategies.TrendFollowingParams{FastPeriod: int(p.GetFastPeriod()), SlowPeriod: int(p.GetSlowPeriod()),
			Quantity: dec(p.GetQuantity()), AllowShort: p.GetAllowShort(), SampleInterval: p.GetSampleInterval().AsDuration()}
	}
	if p := c.GetTwap(); p != nil {
		cfg.TWAP = &strategies.TWAPParams{Buy: p.GetSide() == strategyv1.Side_SIDE_BUY, TotalQuantity: dec(p.GetTotalQuantity()),
			Duration: p.GetDuration().AsDuration(), Slices: int(p.GetSlices()), MaxSlippage: dec(p.GetMaxSlippage())}
	}
	return cfg
}

func configPB(c strategies.Config) *strategyv1.StrategyConfig {
	pb := &strategyv1.StrategyConfig{Name: c.Name, Account: c.Account, Symbol: c.Symbol, Connector: c.Connector, MarketSymbol: c.MarketSymbol}
	for k, v := range typeOf {
		if v == c.Type {
			pb.Type = k
		}
	}
	if p := c.MarketMaking; p != nil {
		pb.Params = &strategyv1.StrategyConfig_MarketMaking{MarketMaking: &strategyv1.MarketMaking{Spread: p.Spread.Text(),
			Quantity: p.Quantity.Text(), MaxInventory: p.MaxInventory.Text(), RequoteThreshold: p.RequoteThreshold.Text(),
			RequoteInterval: durationpb.New(p.RequoteInterval)}}
	}
	if p := c.TrendFollowing; p != nil {
		pb.Params = &strategyv1.StrategyConfig_TrendFollowing{TrendFollowing: &strategyv1.TrendFollowing{FastPeriod: int32(p.FastPeriod),
			SlowPeriod: int32(p.SlowPeriod), Quantity: p.Quantity.Text(), AllowShort: p.AllowShort, SampleInterval: durationpb.New(p.SampleInterval)}}
	}
	if p := c.TWAP; p != nil {
		side := strategyv1.Side_SIDE_SELL
		if p.Buy {
			side = strategyv1.Side_SIDE_BUY
		}
		pb.Params = &strategyv1.StrategyConfig_Twap{Twap: &strategyv1.Twap{Side: side, TotalQuantity: p.TotalQuantity.Text(),
			Duration: durationpb.New(p.Duration), Slices: int32(p.Slices), MaxSlippage: p.MaxSlippage.Text()}}
	}
	return pb
}
