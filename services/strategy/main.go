// Command tradsys-strategy is the strategy service
// (tradsys.strategy.v1.StrategyService, default 127.0.0.1:7107, admin
// 127.0.0.1:9107). Strategies are leased plugin components
// "strategy/<type>/<name>"; they read market data from connectors and
// trade only through orders. Configs are saved in --data-dir; strategies
// that were running start again after a restart.
package main

import (
	"context"
	"flag"

	"github.com/tradsys/mesh/pkg/config"
	"github.com/tradsys/mesh/pkg/service"
	"github.com/tradsys/mesh/services/strategy/server"
	"github.com/tradsys/mesh/services/strategy/strategies"
)

func main() {
	o := server.Defaults()
	mem := config.ByteSize(o.MemoryBytes)
	typeMem := map[strategies.Type]*config.ByteSize{}
	for t, b := range o.TypeMemory {
		typeMem[t] = new(config.ByteSize(b))
	}
	var priority, strategyPriority int
	service.Main(service.Config{Name: "strategy", Listen: "127.0.0.1:7107", AdminListen: "127.0.0.1:9107",
		MainComponent: server.MainComponent}, func(fs *flag.FlagSet) {
		fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "directory of the saved strategy configs")
		fs.StringVar(&o.Connectors, "connectors", o.Connectors, "connectors service (host:port or tradsys:///connectors)")
		fs.StringVar(&o.Orders, "orders", o.Orders, "orders service (host:port or tradsys:///orders)")
		fs.Var(&mem, "memory", "memory estimate of the strategy host")
		fs.IntVar(&priority, "priority", int(o.Priority), "priority of the host's lease (lower is more important)")
		fs.DurationVar(&o.InitTimeout, "init-timeout", o.InitTimeout, "how long starting the host may take")
		for t, b := range typeMem {
			fs.Var(b, string(t)+"-memory", "memory estimate of a "+string(t)+" strategy")
		}
		fs.IntVar(&strategyPriority, "strategy-priority", int(o.StrategyPriority), "priority of the strategies' leases")
		fs.DurationVar(&o.StrategyInitTimeout, "strategy-init-timeout", o.StrategyInitTimeout, "how long starting one strategy may take")
	}, func(ctx context.Context, s *service.Service) error {
		o.MemoryBytes, o.Priority, o.StrategyPriority = int64(mem), int32(priority), int32(strategyPriority)
		for t, b := range typeMem {
			o.TypeMemory[t] = int64(*b)
		}
		_, err := server.Setup(ctx, s, o)
		return err
	})
}
