// Command tradsys-historical is the historical data service: OHLCV candles
// built from followed trades and backfilled kline files, stored in bbolt,
// read through a byte-bounded cache that is the service's lazily loaded,
// leased component "historical".
package main

import (
	"context"
	"errors"
	"flag"
	"strings"
	"time"

	"github.com/tradsys/mesh/pkg/config"
	"github.com/tradsys/mesh/pkg/lazy"
	"github.com/tradsys/mesh/pkg/marketdata"
	"github.com/tradsys/mesh/pkg/service"
	"github.com/tradsys/mesh/services/historical/candles"
	"github.com/tradsys/mesh/services/historical/history"
	"github.com/tradsys/mesh/services/historical/server"
	"github.com/tradsys/mesh/services/historical/sources"
)

// fixedFlag is a flag.Value holding an exact positive decimal.
type fixedFlag candles.Fixed

func (f *fixedFlag) String() string { return candles.Fixed(*f).String() }

func (f *fixedFlag) Set(s string) error {
	v, err := candles.ParseFixed(s)
	if err != nil {
		return err
	}
	if v <= 0 {
		return errors.New("must be > 0")
	}
	*f = fixedFlag(v)
	return nil
}

func main() {
	var (
		dataDir        string
		maxCache       = config.ByteSize(100 << 20)
		cacheTTL, idle time.Duration
		initTimeout    time.Duration
		tradesFrom     string
		tradesSymbols  string
		tickSize       = fixedFlag(sources.DefaultTickSize)
		lotSize        = fixedFlag(sources.DefaultLotSize)
		connectorsFrom string
		lateness       time.Duration
	)
	service.Main(service.Config{Name: "historical", Listen: "127.0.0.1:7101", AdminListen: "127.0.0.1:9101"},
		func(fs *flag.FlagSet) {
			fs.StringVar(&dataDir, "data-dir", ".tradsys/historical", "directory of the bbolt candle store")
			marketdata.RegisterFlag(fs) // the bundled data sets (replay, backfill)
			fs.Var(&maxCache, "max-cache-bytes", "read cache size, and the component's memory lease")
			fs.DurationVar(&cacheTTL, "cache-ttl", 0, "expire cached pages after this long (0: only writes invalidate)")
			fs.DurationVar(&idle, "idle-timeout", 5*time.Minute, "unload the cache after this long without data calls (negative: never)")
			fs.DurationVar(&initTimeout, "init-timeout", 30*time.Second, "how long loading the cache may take")
			fs.StringVar(&tradesFrom, "trades-from", "", "matching service address (host:port or tradsys:///matching) to follow StreamTrades from, for --trades-symbols")
			fs.StringVar(&tradesSymbols, "trades-symbols", "", "comma-separated symbols to follow on --trades-from")
			fs.Var(&tickSize, "tick-size", "decimal value of one matching price tick: price = ticks x tick size")
			fs.Var(&lotSize, "lot-size", "decimal value of one matching lot: quantity = lots x lot size")
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
			if err := followers.KeepFollows(dataDir); err != nil {
				return err
			}
			server.Register(s.Server.GRPC(), s.Gate, comp, h, followers)
			if connectorsFrom != "" {
				addr, connector, _ := strings.Cut(connectorsFrom, "/")
				if _, err := followers.Follow(addr, connector, nil); err != nil {
					return err
				}
			}
			if tradesFrom != "" {
				var syms []string
				for _, sym := range strings.Split(tradesSymbols, ",") {
					if sym = strings.TrimSpace(sym); sym != "" {
						syms = append(syms, sym)
					}
				}
				if _, err := sources.FollowMatching(ctx, h, s.Pool, sources.MatchingConfig{Address: tradesFrom, Symbols: syms,
					TickSize: candles.Fixed(tickSize), LotSize: candles.Fixed(lotSize), Logger: s.Log.Named("sources")}); err != nil {
					return err
				}
			} else if tradesSymbols != "" {
				return errors.New("--trades-symbols needs --trades-from")
			}
			return nil
		})
}
