package server_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/grpcserver"
	"github.com/tradsys/mesh/pkg/service"
	historicalv1 "github.com/tradsys/mesh/proto/tradsys/historical/v1"
	"github.com/tradsys/mesh/services/historical/history"
	"github.com/tradsys/mesh/services/historical/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// startService runs the historical service in this process, wired by
// server.Setup as main wires it, against the coordinator at coord.
func startService(tb testing.TB, coord string, o history.Options) (historicalv1.HistoricalDataServiceClient, *history.History, *grpc.ClientConn) {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s, err := service.New(service.Config{Name: "historical"}, service.Options{Listener: lis, Coordinator: coord,
		Flags: grpcserver.Flags{Listen: lis.Addr().String(), ShutdownTimeout: 2 * time.Second}})
	if err != nil {
		tb.Fatal(err)
	}
	if o.DataDir == "" {
		o.DataDir = tb.TempDir()
	}
	ctx, cancel := context.WithCancel(context.Background())
	so := server.Defaults()
	so.DataDir, so.MaxCacheBytes, so.CacheTTL, so.NoSync = o.DataDir, o.MaxCacheBytes, o.CacheTTL, o.NoSync
	if o.Lateness != 0 {
		so.Lateness = o.Lateness
	}
	svc, err := server.Setup(ctx, s, so)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	h := svc.History
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
