// Command tradsys-risk is the risk service (tradsys.risk.v1.RiskService,
// default 127.0.0.1:7106, admin 127.0.0.1:9106). It starts dormant; each
// validator is a leased plugin loaded on the first order that needs it.
// Its flags: server.Options.
package main

import (
	"context"

	"github.com/tradsys/mesh/pkg/service"
	"github.com/tradsys/mesh/services/risk/server"
)

func main() {
	o := server.Defaults()
	service.Main(service.Config{Name: "risk", Listen: "127.0.0.1:7106", AdminListen: "127.0.0.1:9106",
		MainComponent: server.MainComponent}, o.RegisterFlags,
		func(ctx context.Context, s *service.Service) error {
			_, err := server.Setup(ctx, s, o)
			return err
		})
}
