package server_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/grpcserver"
	"github.com/tradsys/mesh/pkg/lazy"
	"github.com/tradsys/mesh/pkg/service"
	historicalv1 "github.com/tradsys/mesh/proto/tradsys/historical/v1"
	"github.com/tradsys/mesh/services/historical/history"
	"github.com/tradsys/mesh/services/historical/server"
	"github.com/tradsys/mesh/services/historical/sources"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// startService runs the historical service in this process, wired exactly
// as main wires it, against the coordinator at coord.
func startService(tb testing.TB, coord string, o history.Options) (historicalv1.HistoricalDataServiceClient, *history.History, *grpc.ClientConn) {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s, err := service.New(service.Config{Name: "historical"}, service.Options{Listener: lis,
		Flags: grpcserver.Flags{Listen: lis.Addr().String(), Coordinator: coord, ShutdownTimeout: 2 * time.Second}})
	if err != nil {
		tb.Fatal(err)
	}
	if o.DataDir == "" {
		o.DataDir = tb.TempDir()
	}
	h, err := history.Open(o)
	if err != nil {
		tb.Fatal(err)
	}
	comp, err := s.Runtime.Add(lazy.Spec{Name: "historical", MemoryBytes: 100 << 20, Priority: 40,
		Init:     func(context.Context) error { return h.LoadCache() },
		Shutdown: func(context.Context) error { h.UnloadCache(); return nil }})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := sources.New(ctx, h, insecure.NewCredentials(), nil)
	server.Register(s.Server.GRPC(), s.Gate, comp, h, f)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		conn.Close()
		cancel()
		<-done
		h.Close()
	})
	return historicalv1.NewHistoricalDataServiceClient(conn), h, conn
}
