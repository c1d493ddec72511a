// Command tradsys-risk is the risk service (tradsys.risk.v1.RiskService,
// default 127.0.0.1:7106, admin 127.0.0.1:9106). It starts dormant; each
// validator is a leased plugin loaded on the first order that needs it.
package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/tradsys/mesh/pkg/config"
	"github.com/tradsys/mesh/pkg/service"
	"github.com/tradsys/mesh/services/risk/server"
)

func main() {
	o := server.Defaults()
	mem, vmem := config.ByteSize(o.MemoryBytes), config.ByteSize(o.ValidatorMemoryBytes)
	var priority, vpriority int
	l := &o.Defaults
	service.Main(service.Config{Name: "risk", Listen: "127.0.0.1:7106", AdminListen: "127.0.0.1:9106",
		MainComponent: server.MainComponent}, func(fs *flag.FlagSet) {
		fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "directory of the limit store (bbolt)")
		fs.StringVar(&o.Matching, "matching", o.Matching, "matching service whose trades feed the price band (host:port or tradsys:///matching; empty: none)")
		fs.TextVar(&l.MaxOrderQuantity, "max-order-quantity", l.MaxOrderQuantity, "default largest quantity of one order (0: none)")
		fs.TextVar(&l.MaxNotional, "max-notional", l.MaxNotional, "default largest price x quantity of one order (0: none)")
		fs.TextVar(&l.MaxPosition, "max-position", l.MaxPosition, "default largest absolute position per account and symbol (0: none)")
		fs.TextVar(&l.PriceBand, "price-band", l.PriceBand, "default price band around the last trade, a fraction (0.1 is 10%; 0: none)")
		fs.Float64Var(&l.OrdersPerSecond, "orders-per-second", l.OrdersPerSecond, "default order rate per account (0: none)")
		var burst = int(l.OrderBurst)
		fs.Func("order-burst", "default order-rate burst per account (default 2000)", func(s string) error {
			_, err := fmt.Sscan(s, &burst)
			l.OrderBurst = int32(burst)
			return err
		})
		fs.Var(&mem, "memory", "memory estimate of the limit store")
		fs.IntVar(&priority, "priority", int(o.Priority), "priority of the limit store's lease")
		fs.DurationVar(&o.InitTimeout, "init-timeout", o.InitTimeout, "how long loading a component may take")
		fs.DurationVar(&o.IdleTimeout, "idle-timeout", o.IdleTimeout, "unload the limit store after this long unused (negative: never)")
		fs.Var(&vmem, "validator-memory", "memory estimate of each validator plugin")
		fs.IntVar(&vpriority, "validator-priority", int(o.ValidatorPriority), "priority of the validator plugins' leases")
		fs.DurationVar(&o.ValidatorIdleTimeout, "validator-idle-timeout", o.ValidatorIdleTimeout, "unload a validator after this long unused")
	}, func(ctx context.Context, s *service.Service) error {
		o.MemoryBytes, o.ValidatorMemoryBytes = int64(mem), int64(vmem)
		o.Priority, o.ValidatorPriority = int32(priority), int32(vpriority)
		_, err := server.Setup(ctx, s, o)
		return err
	})
}
