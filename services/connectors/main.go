// Command tradsys-connectors is the connectors service
// (tradsys.connectors.v1.ConnectorService, default 127.0.0.1:7105, admin
// 127.0.0.1:9105): market-data connectors (simulator, replay, Binance) as
// leased plugin components "connectors/exchange/<name>". Its flags:
// server.Options.
package main

import (
	"context"

	"github.com/tradsys/mesh/pkg/service"
	"github.com/tradsys/mesh/services/connectors/server"
)

func main() {
	o := server.Defaults()
	service.Main(service.Config{Name: "connectors", Listen: "127.0.0.1:7105", AdminListen: "127.0.0.1:9105",
		MainComponent: server.MainComponent}, o.RegisterFlags,
		func(ctx context.Context, s *service.Service) error {
			_, err := server.Setup(ctx, s, o)
			return err
		})
}
