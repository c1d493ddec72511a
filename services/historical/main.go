// Command tradsys-historical is the historical data service
// (tradsys.historical.v1.HistoricalDataService, default 127.0.0.1:7101,
// admin 127.0.0.1:9101): OHLCV candles built from followed trades and
// backfilled kline files, stored in bbolt, read through a byte-bounded
// cache that is the service's lazily loaded, leased component
// "historical". Its flags: server.Options.
package main

import (
	"context"

	"github.com/tradsys/mesh/pkg/service"
	"github.com/tradsys/mesh/services/historical/server"
)

func main() {
	o := server.Defaults()
	service.Main(service.Config{Name: "historical", Listen: "127.0.0.1:7101", AdminListen: "127.0.0.1:9101",
		MainComponent: server.MainComponent}, o.RegisterFlags,
		func(ctx context.Context, s *service.Service) error {
			_, err := server.Setup(ctx, s, o)
			return err
		})
}
