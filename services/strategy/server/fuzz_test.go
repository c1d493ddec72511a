package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/grpcfuzz"
	strategyv1 "github.com/tradsys/mesh/proto/tradsys/strategy/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// FuzzStrategyService sends decoded random requests through the whole
// chain (validation, gate, manager, components, orders and connectors):
// any clear error, never INTERNAL or UNKNOWN, never a crash.
func FuzzStrategyService(f *testing.F) {
	methods := grpcfuzz.Methods(f, strategyv1.File_tradsys_strategy_v1_strategy_proto.Services().ByName("StrategyService"))
	seed := func(name string, m proto.Message) { grpcfuzz.Seed(f, methods, name, m) }
	seed("StartStrategy", &strategyv1.StartStrategyRequest{Config: marketMaker("f1", "fz")})
	seed("StartStrategy", &strategyv1.StartStrategyRequest{Config: &strategyv1.StrategyConfig{Name: "f2", Type: strategyv1.StrategyType_STRATEGY_TYPE_TREND_FOLLOWING,
		Account: "fz", Symbol: symbol, Connector: "sim", Params: &strategyv1.StrategyConfig_TrendFollowing{TrendFollowing: &strategyv1.TrendFollowing{
			FastPeriod: 2, SlowPeriod: 5, Quantity: "1", SampleInterval: durationpb.New(10 * time.Millisecond)}}}})
	seed("StartStrategy", &strategyv1.StartStrategyRequest{Config: &strategyv1.StrategyConfig{Name: "f3", Type: strategyv1.StrategyType_STRATEGY_TYPE_TWAP,
		Account: "fz", Symbol: symbol, Connector: "sim", Params: &strategyv1.StrategyConfig_Twap{Twap: &strategyv1.Twap{
			Side: strategyv1.Side_SIDE_SELL, TotalQuantity: "3", Duration: durationpb.New(time.Second), Slices: 3}}}})
	seed("StopStrategy", &strategyv1.StopStrategyRequest{Name: "f1"})
	seed("ListStrategies", &strategyv1.ListStrategiesRequest{})
	seed("GetStrategyMetrics", &strategyv1.GetStrategyMetricsRequest{Name: "f1"})
	m := startMesh(f)
	conn := dial(f, m.strategySvc.addr)
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		md, req, ok := grpcfuzz.Decode(methods, which, data)
		if !ok {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := grpcfuzz.Call(ctx, conn, md, req)
		grpcfuzz.Check(t, md, req, err)
	})
}
