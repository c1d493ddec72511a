package cli

import (
	"context"
	"strconv"
	"strings"
	"time"

	strategyv1 "github.com/tradsys/mesh/proto/tradsys/strategy/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
)

// callStrategy runs one StrategyService RPC (see callService).
func callStrategy[Req, Resp any](ctx context.Context, e *env, rpc func(strategyv1.StrategyServiceClient, context.Context, Req, ...grpc.CallOption) (Resp, error), req Req) (Resp, error) {
	return callService(ctx, e, e.g.strategy, strategyv1.NewStrategyServiceClient, rpc, req)
}

func runStrategy(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return usagef("strategy: want start, stop, list or metrics (tradsys help strategy)")
	}
	switch args[0] {
	case "start":
		return runStrategyStart(ctx, e, args[1:])
	case "stop":
		return runStrategyStop(ctx, e, args[1:])
	case "list":
		return runStrategyList(ctx, e, args[1:])
	case "metrics":
		return runStrategyMetrics(ctx, e, args[1:])
	}
	return usagef("strategy %q: want start, stop, list or metrics", args[0])
}

var strategyTypes = map[string]strategyv1.StrategyType{
	"market-making":   strategyv1.StrategyType_STRATEGY_TYPE_MARKET_MAKING,
	"trend-following": strategyv1.StrategyType_STRATEGY_TYPE_TREND_FOLLOWING,
	"twap":            strategyv1.StrategyType_STRATEGY_TYPE_TWAP,
}

func runStrategyStart(ctx context.Context, e *env, args []string) error {
	fs := e.flags("strategy start", "market-making|trend-following|twap NAME --account A --symbol S --connector C [parameters]")
	account := fs.String("account", "", "orders account it trades for (required)")
	symbol := fs.String("symbol", "", "symbol it trades (an orders instrument; required)")
	connector := fs.String("connector", "", "connector whose market data it reads (required)")
	marketSymbol := fs.String("market-symbol", "", "the connector's symbol (default: --symbol)")
	quantity := fs.String("quantity", "1", "market making: each quote; trend following: the position size")
	spread := fs.String("spread", "0.002", "market making: bid-ask spread as a fraction of the price")
	maxInventory := fs.String("max-inventory", "5", "market making: largest absolute position")
	requote := fs.Duration("requote-interval", 5*time.Second, "market making: requote at least this often")
	fast := fs.Int("fast", 5, "trend following: fast SMA period (samples)")
	slow := fs.Int("slow", 20, "trend following: slow SMA period (samples)")
	sample := fs.Duration("sample-interval", time.Second, "trend following: price sampling interval")
	short := fs.Bool("allow-short", false, "trend following: go short on a down-cross")
	side := fs.String("side", "buy", "twap: buy or sell")
	total := fs.String("total", "10", "twap: total quantity")
	duration := fs.Duration("duration", time.Minute, "twap: how long to work the order")
	slices := fs.Int("slices", 10, "twap: number of child orders")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("strategy start: want TYPE NAME, got %d arguments", len(pos))
	}
	typ, ok := strategyTypes[pos[0]]
	if !ok {
		return usagef("strategy start: type %q: want market-making, trend-following or twap", pos[0])
	}
	if *account == "" || *symbol == "" || *connector == "" {
		return usagef("strategy start: --account, --symbol and --connector are required")
	}
	cfg := &strategyv1.StrategyConfig{Name: pos[1], Type: typ, Account: *account, Symbol: *symbol, Connector: *connector,
		MarketSymbol: *marketSymbol}
	switch typ {
	case strategyv1.StrategyType_STRATEGY_TYPE_MARKET_MAKING:
		cfg.Params = &strategyv1.StrategyConfig_MarketMaking{MarketMaking: &strategyv1.MarketMaking{Spread: *spread, Quantity: *quantity,
			MaxInventory: *maxInventory, RequoteInterval: durationpb.New(*requote)}}
	case strategyv1.StrategyType_STRATEGY_TYPE_TREND_FOLLOWING:
		cfg.Params = &strategyv1.StrategyConfig_TrendFollowing{TrendFollowing: &strategyv1.TrendFollowing{FastPeriod: int32(*fast),
			SlowPeriod: int32(*slow), Quantity: *quantity, AllowShort: *short, SampleInterval: durationpb.New(*sample)}}
	default:
		s, ok := strategyv1.Side_value["SIDE_"+strings.ToUpper(*side)]
		if !ok {
			return usagef("strategy start: --side %q: want buy or sell", *side)
		}
		cfg.Params = &strategyv1.StrategyConfig_Twap{Twap: &strategyv1.Twap{Side: strategyv1.Side(s), TotalQuantity: *total,
			Duration: durationpb.New(*duration), Slices: int32(*slices)}}
	}
	resp, err := callStrategy(ctx, e, strategyv1.StrategyServiceClient.StartStrategy, &strategyv1.StartStrategyRequest{Config: cfg})
	if err != nil {
		return err
	}
	if e.json() {
		return printJSON(e.stdout, resp)
	}
	return printStrategies(e, resp.GetStrategy())
}

func runStrategyStop(ctx context.Context, e *env, args []string) error {
	fs := e.flags("strategy stop", "NAME")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("strategy stop: want NAME")
	}
	resp, err := callStrategy(ctx, e, strategyv1.StrategyServiceClient.StopStrategy, &strategyv1.StopStrategyRequest{Name: pos[0]})
	if err != nil {
		return err
	}
	if e.json() {
		return printJSON(e.stdout, resp)
	}
	return printStrategies(e, resp.GetStrategy())
}

func runStrategyList(ctx context.Context, e *env, args []string) error {
	fs := e.flags("strategy list", "")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, pos); err != nil {
		return err
	}
	resp, err := callStrategy(ctx, e, strategyv1.StrategyServiceClient.ListStrategies, &strategyv1.ListStrategiesRequest{})
	if err != nil {
		return err
	}
	if e.json() {
		return printJSON(e.stdout, resp)
	}
	return printStrategies(e, resp.GetStrategies()...)
}

func runStrategyMetrics(ctx context.Context, e *env, args []string) error {
	fs := e.flags("strategy metrics", "NAME")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("strategy metrics: want NAME")
	}
	resp, err := callStrategy(ctx, e, strategyv1.StrategyServiceClient.GetStrategyMetrics, &strategyv1.GetStrategyMetricsRequest{Name: pos[0]})
	if err != nil {
		return err
	}
	if e.json() {
		return printJSON(e.stdout, resp)
	}
	m := resp.GetMetrics()
	tw := newTable(e.stdout)
	row(tw, "NAME", "ORDERS", "REJECTED", "ERRORS", "CANCELS", "FILLS", "BOUGHT", "SOLD", "POSITION", "CASH", "LAST", "PNL")
	row(tw, m.GetName(), u(m.GetOrdersSent()), u(m.GetOrdersRejected()), u(m.GetOrderErrors()), u(m.GetCancelsSent()), u(m.GetFills()),
		m.GetBoughtQuantity(), m.GetSoldQuantity(), m.GetPosition(), m.GetCash(), m.GetLastPrice(), m.GetPnl())
	return tw.Flush()
}

func u(n uint64) string { return strconv.FormatUint(n, 10) }

func printStrategies(e *env, list ...*strategyv1.Strategy) error {
	tw := newTable(e.stdout)
	row(tw, "NAME", "TYPE", "ACCOUNT", "SYMBOL", "CONNECTOR", "RUNNING", "STATE", "MEMORY", "LAST_ERROR")
	for _, s := range list {
		c := s.GetConfig()
		row(tw, c.GetName(), enumName(c.GetType(), "STRATEGY_TYPE_"), c.GetAccount(), c.GetSymbol(), c.GetConnector(),
			strconv.FormatBool(s.GetRunning()), enumName(s.GetState(), "COMPONENT_STATE_"), strconv.FormatInt(s.GetMemoryBytes()>>20, 10)+" MiB",
			dash(s.GetLastError()))
	}
	return tw.Flush()
}
