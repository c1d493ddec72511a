// Command tradsys-gateway is the clients' entry point: a WebSocket and
// HTTP server (default 127.0.0.1:8080: the page and /ws, protocol in
// docs/websocket.md) and tradsys.gateway.v1.GatewayService (gRPC, default
// 127.0.0.1:7104, admin 127.0.0.1:9104). It starts dormant; the first
// authenticated connection or call leases the WebSocket server.
package main

import (
	"context"
	"flag"

	"github.com/tradsys/mesh/pkg/config"
	"github.com/tradsys/mesh/pkg/service"
	"github.com/tradsys/mesh/services/gateway/server"
)

func main() {
	o := server.Defaults()
	mem := config.ByteSize(o.MemoryBytes)
	var priority int
	service.Main(service.Config{Name: "gateway", Listen: "127.0.0.1:7104", AdminListen: "127.0.0.1:9104",
		MainComponent: server.MainComponent}, func(fs *flag.FlagSet) {
		fs.StringVar(&o.HTTPListen, "http-listen", o.HTTPListen, "address of the page and the WebSocket endpoint /ws")
		fs.StringVar(&o.APIKeys, "api-keys", o.APIKeys, "API key file: one '<secret> <account> [name=] [rate=] [burst=]' a line")
		fs.BoolVar(&o.CreateAPIKey, "create-api-key", o.CreateAPIKey, "when --api-keys does not exist, write it with a fresh key for account 1")
		fs.StringVar(&o.Matching, "matching", o.Matching, "matching service (host:port or tradsys:///matching)")
		fs.StringVar(&o.Historical, "historical", o.Historical, "historical service (host:port or tradsys:///historical)")
		fs.StringVar(&o.Orders, "orders", o.Orders, "orders service (host:port or tradsys:///orders)")
		fs.Var(&mem, "memory", "memory estimate of the WebSocket server")
		fs.IntVar(&priority, "priority", int(o.Priority), "priority of its memory lease (lower is more important)")
		fs.DurationVar(&o.InitTimeout, "init-timeout", o.InitTimeout, "how long starting the WebSocket server may take")
		fs.DurationVar(&o.IdleTimeout, "idle-timeout", o.IdleTimeout, "unload after this long with no connection or call (negative: never)")
		fs.IntVar(&o.Hub.SendBuffer, "send-buffer", o.Hub.SendBuffer, "frames queued per connection; one more closes it as a slow consumer (4001)")
		fs.DurationVar(&o.Hub.WriteTimeout, "write-timeout", o.Hub.WriteTimeout, "a client that takes longer to accept one frame is closed as slow")
		fs.IntVar(&o.SocketSendBuffer, "socket-send-buffer", o.SocketSendBuffer, "kernel send buffer of each client socket in bytes (0: the system's)")
		fs.IntVar(&o.Hub.Workers, "workers", o.Hub.Workers, "workers running calls to other services")
		fs.IntVar(&o.Hub.Queue, "queue", o.Hub.Queue, "calls waiting for a worker; beyond it clients get 'busy'")
		fs.DurationVar(&o.Hub.BookInterval, "book-interval", o.Hub.BookInterval, "how often a subscribed book is read")
		fs.DurationVar(&o.Hub.CandleInterval, "candle-interval", o.Hub.CandleInterval, "how often subscribed candles are read")
	}, func(ctx context.Context, s *service.Service) error {
		o.MemoryBytes, o.Priority = int64(mem), int32(priority)
		_, err := server.Setup(ctx, s, o)
		return err
	})
}
