// Command tradsys-orders is the orders service
// (tradsys.orders.v1.OrderService, default 127.0.0.1:7102, admin
// 127.0.0.1:9102): the way in for orders. It starts dormant; the first call
// loads the order store from --data-dir.
package main

import (
	"context"
	"flag"

	"github.com/tradsys/mesh/pkg/config"
	"github.com/tradsys/mesh/pkg/service"
	"github.com/tradsys/mesh/services/orders/server"
)

func main() {
	o := server.Defaults()
	mem := config.ByteSize(o.MemoryBytes)
	var priority int
	service.Main(service.Config{Name: "orders", Listen: "127.0.0.1:7102", AdminListen: "127.0.0.1:9102",
		MainComponent: server.MainComponent}, func(fs *flag.FlagSet) {
		fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "directory of the order store (bbolt)")
		fs.BoolVar(&o.NoFsync, "no-fsync", false, "do not fsync the order store (benchmarks only: acknowledged orders may be lost)")
		fs.IntVar(&o.KeepUpdates, "keep-updates", o.KeepUpdates, "order updates kept for StreamOrderUpdates resumption")
		fs.StringVar(&o.Risk, "risk", o.Risk, "risk service (host:port or tradsys:///risk)")
		fs.StringVar(&o.Matching, "matching", o.Matching, "matching service (host:port or tradsys:///matching)")
		fs.BoolVar(&o.StreamSubmits, "stream-submits", o.StreamSubmits, "send submits to matching on one shared SubmitOrders stream (false: a unary SubmitOrder each)")
		fs.DurationVar(&o.CallTimeout, "call-timeout", o.CallTimeout, "longest wait for one call to risk or matching")
		fs.Var(&mem, "memory", "memory estimate of the order store")
		fs.IntVar(&priority, "priority", int(o.Priority), "priority of the memory lease (lower is more important)")
		fs.DurationVar(&o.InitTimeout, "init-timeout", o.InitTimeout, "how long loading the order store may take")
		fs.DurationVar(&o.IdleTimeout, "idle-timeout", o.IdleTimeout, "unload after this long without calls (negative: never)")
	}, func(ctx context.Context, s *service.Service) error {
		o.MemoryBytes, o.Priority = int64(mem), int32(priority)
		_, err := server.Setup(ctx, s, o)
		return err
	})
}
