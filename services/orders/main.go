// Command tradsys-orders is the orders service
// (tradsys.orders.v1.OrderService, default 127.0.0.1:7102, admin
// 127.0.0.1:9102): the way in for orders. It starts dormant; the first call
// loads the order store from --data-dir. Its flags: server.Options.
package main

import (
	"context"

	"github.com/tradsys/mesh/pkg/service"
	"github.com/tradsys/mesh/services/orders/server"
)

func main() {
	o := server.Defaults()
	service.Main(service.Config{Name: "orders", Listen: "127.0.0.1:7102", AdminListen: "127.0.0.1:9102",
		MainComponent: server.MainComponent}, o.RegisterFlags,
		func(ctx context.Context, s *service.Service) error {
			_, err := server.Setup(ctx, s, o)
			return err
		})
}
