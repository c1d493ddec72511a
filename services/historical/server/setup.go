package server

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
	"github.com/tradsys/mesh/services/historical/sources"
)

// MainComponent is the leased candle cache.
const MainComponent = "historical"

// Options are the service's own settings; RegisterFlags makes each a flag.
type Options struct {
	DataDir       string
	MaxCacheBytes int64
	// MinCacheLease is the least the cache's lease shrinks to, following
	// the cache or under a lowered budget.
	MinCacheLease int64
	CacheTTL      time.Duration
	Lateness      time.Duration
	// Cache is the component "historical"; its memory lease is at least
	// MaxCacheBytes (0: exactly that).
	Cache lazy.Settings
	// ConnectorsFrom is "address[/connector]" to follow market data from.
	ConnectorsFrom string
	// TradesFrom is the matching service to follow TradesSymbols on.
	TradesFrom        string
	TradesSymbols     config.StringList
	TickSize, LotSize candles.Fixed
	// NoSync skips fsync (benchmarks only).
	NoSync bool
}

// Defaults are the defaults of every flag (see README for where they
// differ from the seed's table).
func Defaults() Options {
	return Options{
		DataDir: ".tradsys/historical", MaxCacheBytes: 100 << 20, MinCacheLease: 8 << 20, Lateness: candles.DefaultLateness,
		Cache:    lazy.Settings{Priority: 40, InitTimeout: 30 * time.Second, IdleTimeout: 5 * time.Minute},
		TickSize: sources.DefaultTickSize, LotSize: sources.DefaultLotSize,
	}
}

// RegisterFlags makes every option a flag (and TRADSYS_* variable) with
// the current value as its default.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "directory of the bbolt candle store")
	marketdata.RegisterFlag(fs) // the bundled data sets (replay, backfill)
	fs.Var((*config.ByteSize)(&o.MaxCacheBytes), "max-cache-bytes", "read cache size, and the least memory lease of the cache")
	fs.Var((*config.ByteSize)(&o.MinCacheLease), "min-cache-lease", "the least the cache's memory lease shrinks to (it follows the cache, and shrinks rather than unloads under a lowered budget)")
	fs.DurationVar(&o.CacheTTL, "cache-ttl", o.CacheTTL, "expire cached pages after this long (0: only writes invalidate)")
	fs.BoolVar(&o.NoSync, "no-fsync", o.NoSync, "do not fsync the store (benchmarks only: flushed candles may be lost)")
	fs.DurationVar(&o.Lateness, "lateness", o.Lateness, "how late a trade may arrive and still count")
	service.ComponentFlags(fs, "", "the candle cache (0: --max-cache-bytes)", &o.Cache)
	fs.StringVar(&o.ConnectorsFrom, "connectors-from", o.ConnectorsFrom, "connectors service address[/connector] to follow market data from")
	fs.StringVar(&o.TradesFrom, "trades-from", o.TradesFrom, "matching service address (host:port or tradsys:///matching) to follow StreamTrades from, for --trades-symbols")
	fs.Var(&o.TradesSymbols, "trades-symbols", "comma-separated symbols to follow on --trades-from")
	fs.Var((*positiveFixed)(&o.TickSize), "tick-size", "decimal value of one matching price tick: price = ticks x tick size")
	fs.Var((*positiveFixed)(&o.LotSize), "lot-size", "decimal value of one matching lot: quantity = lots x lot size")
}

// positiveFixed is a flag.Value holding an exact positive decimal.
type positiveFixed candles.Fixed

func (f *positiveFixed) String() string { return candles.Fixed(*f).String() }

func (f *positiveFixed) Set(s string) error {
	v, err := candles.ParseFixed(s)
	if err != nil {
		return err
	}
	if v <= 0 {
		return errors.New("must be > 0")
	}
	*f = positiveFixed(v)
	return nil
}

// Service is the running historical service's parts.
type Service struct {
	History   *history.History
	Followers *sources.Followers
	Cache     *lazy.Component
	API       *HistoricalService
}

// Setup builds the historical service on s: the store, the cache
// component, the gate rules, the gRPC service and the followed sources.
// ctx is the service's lifetime: on its end final candles are flushed.
// Zero options take their defaults.
func Setup(ctx context.Context, s *service.Service, o Options) (*Service, error) {
	d := Defaults()
	if o.DataDir == "" {
		o.DataDir = d.DataDir
	}
	if o.MaxCacheBytes <= 0 {
		o.MaxCacheBytes = d.MaxCacheBytes
	}
	if o.MinCacheLease <= 0 {
		o.MinCacheLease = d.MinCacheLease
	}
	if o.TradesFrom == "" && len(o.TradesSymbols) > 0 {
		return nil, errors.New("--trades-symbols needs --trades-from")
	}
	h, err := history.Open(history.Options{DataDir: o.DataDir, MaxCacheBytes: o.MaxCacheBytes, CacheTTL: o.CacheTTL,
		Lateness: o.Lateness, NoSync: o.NoSync, Logger: s.Log.Named("history")})
	if err != nil {
		return nil, err
	}
	go func() {
		// Every write is a committed bbolt transaction; on shutdown write
		// the candles that became final but are not flushed yet. (Candles
		// still open are not written: their minute is incomplete.) Process
		// exit releases the file lock.
		<-ctx.Done()
		h.Flush()
	}()
	spec := o.Cache.Spec(MainComponent)
	spec.MemoryBytes = max(spec.MemoryBytes, o.MaxCacheBytes)
	spec.Init = func(context.Context) error { return h.LoadCache() }
	spec.Shutdown = func(context.Context) error { h.UnloadCache(); return nil }
	// The lease follows the cache (grown ahead of it, shrunk when it falls,
	// never below MinCacheLease), and the cache lives within the lease: it
	// evicts down to every smaller lease, so a refused growth keeps it at
	// its lease and a lowered budget shrinks it instead of unloading it.
	spec.Usage, spec.Fit, spec.MinBytes = h.CacheBytes, h.FitCache, o.MinCacheLease
	comp, err := s.Runtime.Add(spec)
	if err != nil {
		return nil, err
	}
	out := &Service{History: h, Cache: comp, Followers: sources.New(ctx, h, s.Pool, s.Log.Named("sources"))}
	if err := out.Followers.KeepFollows(o.DataDir); err != nil {
		return nil, err
	}
	out.API = Register(s.Server.GRPC(), s.Gate, comp, h, out.Followers)
	if o.ConnectorsFrom != "" {
		addr, connector, _ := strings.Cut(o.ConnectorsFrom, "/")
		if _, err := out.Followers.Follow(addr, connector, nil); err != nil {
			return nil, err
		}
	}
	if o.TradesFrom != "" {
		if _, err := sources.FollowMatching(ctx, h, s.Pool, sources.MatchingConfig{Address: o.TradesFrom, Symbols: o.TradesSymbols,
			TickSize: o.TickSize, LotSize: o.LotSize, Logger: s.Log.Named("sources")}); err != nil {
			return nil, err
		}
	}
	return out, nil
}
