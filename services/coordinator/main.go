// Command coordinator runs a TradSys coordinator replica: sessions, memory
// leases, lock leases and the component registry, stored in etcd. Its
// flags: server.Options.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/tradsys/mesh/pkg/config"
	"github.com/tradsys/mesh/pkg/logging"
	"github.com/tradsys/mesh/services/coordinator/server"
	"go.uber.org/zap"
)

func main() {
	o := server.Defaults()
	fs := flag.NewFlagSet("coordinator", flag.ExitOnError)
	o.RegisterFlags(fs)
	if err := config.ParseFlagsOnly(fs, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	log, err := logging.New("coordinator", o.Flags.LogLevel, o.Flags.LogFormat)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	o.Logger = log
	if o.Advertise == "" {
		o.Advertise = o.Flags.Listen
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	r, err := server.Start(ctx, o)
	if err != nil {
		log.Fatal("start", zap.Error(err))
	}
	log.Info("coordinator up", zap.String("grpc", r.Addr()), zap.Strings("etcd", r.EtcdEndpoints()),
		zap.String("budget", config.FormatBytes(o.Coord.Budget)))
	<-ctx.Done()
	log.Info("shutting down")
	r.Stop()
}
