// Command tradsys-gateway is the clients' entry point: a WebSocket and
// HTTP server (default 127.0.0.1:8080: the page and /ws, protocol in
// docs/websocket.md) and tradsys.gateway.v1.GatewayService (gRPC, default
// 127.0.0.1:7104, admin 127.0.0.1:9104). It starts dormant; the first
// authenticated connection or call leases the WebSocket server. Its flags:
// server.Options.
package main

import (
	"context"

	"github.com/tradsys/mesh/pkg/service"
	"github.com/tradsys/mesh/services/gateway/server"
)

func main() {
	o := server.Defaults()
	service.Main(service.Config{Name: "gateway", Listen: "127.0.0.1:7104", AdminListen: "127.0.0.1:9104",
		MainComponent: server.MainComponent}, o.RegisterFlags,
		func(ctx context.Context, s *service.Service) error {
			_, err := server.Setup(ctx, s, o)
			return err
		})
}
