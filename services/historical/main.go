// Command tradsys-historical is the historical data service: OHLCV candles
// built from followed trades and backfilled kline files, stored in bbolt,
// read through a byte-bounded cache that is the service's lazily loaded,
// leased component "historical".
package main

import (
	"context"
	"flag"
	"strings"
	"time"

	"github.com/tradsys/mesh/pkg/config"
	"github.com/tradsys/mesh/pkg/lazy"
	"github.com/tradsys/mesh/pkg/service"
	"github.com/tradsys/mesh/services/historical/candles"
	"github.com/tradsys/mesh/services/historical/history"
	"github.com/tradsys/mesh/services/historical/server"
	"github.com/tradsys/mesh/services/historical/sources"
	"go.uber.org/zap"
)

func main() {
	var (
		dataDir        string
		maxCache       = config.ByteSize(100 << 20)
		cacheTTL, idle time.Duration
		initTimeout    time.Duration
		tradesFrom     string
		connectorsFrom string
		lateness       time.Duration
	)
	service.Main(service.Config{Name: "historical", Listen: "127.0.0.1:7101", AdminListen: "127.0.0.1:9101"},
		func(fs *flag.FlagSet) {
			fs.StringVar(&dataDir, "data-dir", ".tradsys/historical", "directory of the bbolt candle store")
			fs.Var(&maxCache, "max-cache-bytes", "read cache size, and the component's memory lease")
			fs.DurationVar(&cacheTTL, "cache-ttl", 0, "expire cached pages after this long (0: only writes invalidate)")
			fs.DurationVar(&idle, "idle-timeout", 5*time.Minute, "unload the cache after this long without data calls (negative: never)")
			fs.DurationVar(&initTimeout, "init-timeout", 30*time.Second, "how long loading the cache may take")
			fs.StringVar(&tradesFrom, "trades-from", "", "matching service address to follow StreamTrades from (not supported yet)")
			fs.StringVar(&connectorsFrom, "connectors-from", "", "connectors service address[/connector] to follow market data from")
			fs.DurationVar(&lateness, "lateness", candles.DefaultLateness, "how late a trade may arrive and still count")
		},
		func(ctx context.Context, s *service.Service) error {
			h, err := history.Open(history.Options{DataDir: dataDir, MaxCacheBytes: int64(maxCache), CacheTTL: cacheTTL,
				Lateness: lateness, Logger: s.Log.Named("history")})
			if err != nil {
				return err
			}
			go func() {
				// Every write is a committed bbolt transaction; on shutdown
				// write the candles that became final but are not flushed yet.
				// (Candles still open are not written: their minute is
				// incomplete.) Process exit releases the file lock.
				<-ctx.Done()
				h.Flush()
			}()
			comp, err := s.Runtime.Add(lazy.Spec{
				Name: "historical", MemoryBytes: int64(maxCache), Priority: 40, InitTimeout: initTimeout, IdleTimeout: idle,
				Init:     func(context.Context) error { return h.LoadCache() },
				Shutdown: func(context.Context) error { h.UnloadCache(); return nil },
			})
			if err != nil {
				return err
			}
			creds, err := s.Flags.ClientCredentials()
			if err != nil {
				return err
			}
			followers := sources.New(ctx, h, creds, s.Log.Named("sources"))
			server.Register(s.Server.GRPC(), s.Gate, comp, h, followers)
			if connectorsFrom != "" {
				addr, connector, _ := strings.Cut(connectorsFrom, "/")
				if _, err := followers.Follow(addr, connector, nil); err != nil {
					return err
				}
			}
			if tradesFrom != "" {
				// TODO(issue 5): follow matching's StreamTrades (see package
				// sources: its Trade lacks a time and a tick size so far).
				s.Log.Warn("--trades-from is not supported yet: matching's Trade carries no execution time or tick size",
					zap.String("trades_from", tradesFrom))
			}
			return nil
		})
}
