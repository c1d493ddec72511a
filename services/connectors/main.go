// Command tradsys-connectors is the connectors service: market-data
// connectors (simulator, replay, Binance) as leased plugin components
// "connectors/exchange/<name>", served over tradsys.connectors.v1.
package main

import (
	"context"
	"flag"
	"time"

	"github.com/tradsys/mesh/pkg/config"
	"github.com/tradsys/mesh/pkg/lazy"
	"github.com/tradsys/mesh/pkg/marketdata"
	"github.com/tradsys/mesh/pkg/service"
	"github.com/tradsys/mesh/services/connectors/manager"
	"github.com/tradsys/mesh/services/connectors/server"
)

func main() {
	var (
		ringSize    int
		idle        time.Duration
		memory      = config.ByteSize(75 << 20)
		initTimeout time.Duration
		unreachable time.Duration
		dataDir     string
	)
	service.Main(service.Config{Name: "connectors", Listen: "127.0.0.1:7105", AdminListen: "127.0.0.1:9105"},
		func(fs *flag.FlagSet) {
			fs.StringVar(&dataDir, "data-dir", ".tradsys/connectors", "directory of the connectors' definitions (connectors.json), restored idle at start")
			fs.IntVar(&ringSize, "ring-size", 16384, "events kept per symbol per connector for resuming readers")
			fs.DurationVar(&idle, "connector-idle-timeout", 5*time.Minute, "unload a connector no stream has read for this long (negative: never)")
			fs.Var(&memory, "connector-memory", "memory lease of one exchange connector")
			fs.DurationVar(&initTimeout, "connector-init-timeout", 45*time.Second, "how long loading a connector may take")
			fs.DurationVar(&unreachable, "connector-unreachable-after", 10*time.Second, "end a market-data stream with UNAVAILABLE and the cause once its connector has not reached its venue for this long (0: never)")
			marketdata.RegisterFlag(fs) // the bundled data sets (replay, backfill)
		},
		func(ctx context.Context, s *service.Service) error {
			// The service's own component is light: the API and the registry
			// of connectors. Each connector is its own leased component.
			if _, err := s.Runtime.Add(lazy.Spec{Name: "connectors", MemoryBytes: 4 << 20, Priority: 25,
				InitTimeout: initTimeout, IdleTimeout: -1}); err != nil {
				return err
			}
			m := manager.New(manager.Options{
				Runtime: s.Runtime, Logger: s.Log.Named("manager"), MemoryBytes: int64(memory), Priority: 25,
				InitTimeout: initTimeout, IdleTimeout: idle, RingSize: ringSize, Dependencies: []string{"connectors"},
				Register: func(ctx context.Context, spec lazy.Spec) error {
					return lazy.CoordinatorAdapter{C: s.Coord}.Register(ctx, spec, s.Addr())
				},
			})
			svc := server.Register(s.Server.GRPC(), m)
			svc.UnreachableAfter = unreachable
			if err := svc.KeepDefinitions(ctx, dataDir, s.Log.Named("definitions")); err != nil {
				return err
			}
			return nil
		})
}
