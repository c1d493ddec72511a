package server

import (
	"context"
	"flag"
	"time"

	"github.com/tradsys/mesh/pkg/lazy"
	"github.com/tradsys/mesh/pkg/marketdata"
	"github.com/tradsys/mesh/pkg/service"
	"github.com/tradsys/mesh/services/connectors/manager"
)

// MainComponent is the service's own light component: the API and the
// registry of connectors. Each connector is its own leased component,
// "connectors/exchange/<name>", depending on it.
const MainComponent = "connectors"

// Options are the service's own settings; RegisterFlags makes each a flag.
type Options struct {
	// DataDir keeps the connectors' definitions (connectors.json), restored
	// IDLE at start; empty: not kept.
	DataDir string
	// UnreachableAfter ends a market-data stream with UNAVAILABLE and the
	// cause once its connector has not reached its venue for this long
	// (0: never).
	UnreachableAfter time.Duration
	// RingSize is how many events per symbol each connector keeps for
	// resuming readers.
	RingSize int
	// Service is the component "connectors" (never unloaded by default).
	Service lazy.Settings
	// Connector is each exchange connector.
	Connector lazy.Settings
}

// Defaults are the defaults of every flag (see README for where they
// differ from the seed's table).
func Defaults() Options {
	return Options{
		DataDir: ".tradsys/connectors", UnreachableAfter: 10 * time.Second, RingSize: 16384,
		Service:   lazy.Settings{MemoryBytes: 4 << 20, Priority: 25, InitTimeout: 45 * time.Second, IdleTimeout: -1},
		Connector: lazy.Settings{MemoryBytes: 75 << 20, Priority: 25, InitTimeout: 45 * time.Second, IdleTimeout: 5 * time.Minute},
	}
}

// RegisterFlags makes every option a flag (and TRADSYS_* variable) with
// the current value as its default.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "directory of the connectors' definitions (connectors.json), restored idle at start")
	fs.DurationVar(&o.UnreachableAfter, "connector-unreachable-after", o.UnreachableAfter, "end a market-data stream with UNAVAILABLE and the cause once its connector has not reached its venue for this long (0: never)")
	fs.IntVar(&o.RingSize, "ring-size", o.RingSize, "events kept per symbol per connector for resuming readers")
	marketdata.RegisterFlag(fs) // the bundled data sets (replay, backfill)
	service.ComponentFlags(fs, "", "the service's own component (the API and the registry of connectors)", &o.Service)
	service.ComponentFlags(fs, "connector-", "each exchange connector", &o.Connector)
}

// Setup builds the connectors service on s: the components, the manager,
// the gRPC service and the kept definitions.
func Setup(ctx context.Context, s *service.Service, o Options) (*ConnectorService, error) {
	if _, err := s.Runtime.Add(o.Service.Spec(MainComponent)); err != nil {
		return nil, err
	}
	m := manager.New(manager.Options{
		Runtime: s.Runtime, Logger: s.Log.Named("manager"),
		MemoryBytes: o.Connector.MemoryBytes, Priority: o.Connector.Priority,
		InitTimeout: o.Connector.InitTimeout, IdleTimeout: o.Connector.IdleTimeout,
		RingSize: o.RingSize, Dependencies: []string{MainComponent}, Announce: s.Runtime.Announce,
	})
	svc := Register(s.Server.GRPC(), m)
	svc.UnreachableAfter = o.UnreachableAfter
	if o.DataDir != "" {
		if err := svc.KeepDefinitions(ctx, o.DataDir, s.Log.Named("definitions")); err != nil {
			return nil, err
		}
	}
	return svc, nil
}
