// Command tradsys-matching is the matching service
// (tradsys.matching.v1.MatchingService, default 127.0.0.1:7103, admin
// 127.0.0.1:9103). It starts dormant; the first order call loads the engine
// from its snapshot and journal in --data-dir. Its flags: server.Options.
package main

import (
	"context"

	"github.com/tradsys/mesh/pkg/service"
	"github.com/tradsys/mesh/services/matching/server"
)

func main() {
	o := server.Defaults()
	service.Main(service.Config{Name: "matching", Listen: "127.0.0.1:7103", AdminListen: "127.0.0.1:9103",
		MainComponent: server.MainComponent}, o.RegisterFlags,
		func(ctx context.Context, s *service.Service) error {
			_, err := server.Setup(ctx, s, o)
			return err
		})
}
