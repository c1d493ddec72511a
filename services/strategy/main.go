// Command tradsys-strategy is the strategy service
// (tradsys.strategy.v1.StrategyService, default 127.0.0.1:7107, admin
// 127.0.0.1:9107). Strategies are leased plugin components
// "strategy/<type>/<name>"; they read market data from connectors and
// trade only through orders. Configs are saved in --data-dir; strategies
// that were running start again after a restart. Its flags:
// server.Options.
package main

import (
	"context"

	"github.com/tradsys/mesh/pkg/service"
	"github.com/tradsys/mesh/services/strategy/server"
)

func main() {
	o := server.Defaults()
	service.Main(service.Config{Name: "strategy", Listen: "127.0.0.1:7107", AdminListen: "127.0.0.1:9107",
		MainComponent: server.MainComponent}, o.RegisterFlags,
		func(ctx context.Context, s *service.Service) error {
			_, err := server.Setup(ctx, s, o)
			return err
		})
}
