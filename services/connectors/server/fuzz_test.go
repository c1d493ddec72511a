package server_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/grpcserver"
	"github.com/tradsys/mesh/pkg/lazy"
	"github.com/tradsys/mesh/pkg/service"
	connectorsv1 "github.com/tradsys/mesh/proto/tradsys/connectors/v1"
	"github.com/tradsys/mesh/services/connectors/manager"
	"github.com/tradsys/mesh/services/connectors/server"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// startService runs the connectors service in this process, wired exactly
// as main wires it, against the coordinator at coord.
func startService(tb testing.TB, coord string) connectorsv1.ConnectorServiceClient {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s, err := service.New(service.Config{Name: "connectors"}, service.Options{Listener: lis,
		Flags: grpcserver.Flags{Listen: lis.Addr().String(), Coordinator: coord, ShutdownTimeout: 2 * time.Second}})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := s.Runtime.Add(lazy.Spec{Name: "connectors", MemoryBytes: 4 << 20, Priority: 25, IdleTimeout: -1}); err != nil {
		tb.Fatal(err)
	}
	m := manager.New(manager.Options{Runtime: s.Runtime, Dependencies: []string{"connectors"}, RingSize: 1024,
		Register: func(ctx context.Context, spec lazy.Spec) error {
			return lazy.CoordinatorAdapter{C: s.Coord}.Register(ctx, spec, s.Addr())
		}})
	server.Register(s.Server.GRPC(), m)
	ctx, cancel := context.WithCancel(context.Background())
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
	})
	return connectorsv1.NewConnectorServiceClient(conn)
}

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func checkCode(t *testing.T, what string, err error) {
	t.Helper()
	switch status.Code(err) {
	case codes.Internal, codes.Unknown, codes.DataLoss, codes.Unimplemented:
		t.Fatalf("%s: %v", what, err)
	}
}

// FuzzRequests decodes random bytes as each request of ConnectorService and
// sends it through the full server chain (validation, recovery, gate,
// handler, error table) over real gRPC: the answer may be an error, but
// never INTERNAL or UNKNOWN, and the process never crashes.
func FuzzRequests(f *testing.F) {
	r, _ := coordtest.Start(f, coordtest.Config{Budget: 64 << 30})
	c := startService(f, r.Addr())
	// A long-lived connector for the streams to read.
	if _, err := c.Connect(context.Background(), &connectorsv1.ConnectRequest{Name: "s", Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_SIMULATOR,
		Config: &connectorsv1.ConnectRequest_Simulator{Simulator: &connectorsv1.SimulatorConfig{Symbols: []string{"BTCUSDT", "ETHUSDT"}, Rate: 200}}}); err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(0), mustMarshal(&connectorsv1.ConnectRequest{Name: "s", Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_SIMULATOR,
		Config: &connectorsv1.ConnectRequest_Simulator{Simulator: &connectorsv1.SimulatorConfig{Symbols: []string{"BTCUSDT"}, Rate: 100}}}))
	f.Add(uint8(0), mustMarshal(&connectorsv1.ConnectRequest{Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_REPLAY,
		Config: &connectorsv1.ConnectRequest_Replay{Replay: &connectorsv1.ReplayConfig{Bundled: true}}}))
	f.Add(uint8(0), mustMarshal(&connectorsv1.ConnectRequest{Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_BINANCE,
		Config: &connectorsv1.ConnectRequest_Binance{Binance: &connectorsv1.BinanceConfig{Symbols: []string{"btcusdt"}}}}))
	f.Add(uint8(0), mustMarshal(&connectorsv1.ConnectRequest{Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_SIMULATOR,
		Config: &connectorsv1.ConnectRequest_Simulator{Simulator: &connectorsv1.SimulatorConfig{Symbols: []string{"a", "A"}, StartPrice: "0.000000001"}}}))
	f.Add(uint8(1), mustMarshal(&connectorsv1.DisconnectRequest{Name: "simulator"}))
	f.Add(uint8(2), []byte{})
	f.Add(uint8(3), mustMarshal(&connectorsv1.StreamMarketDataRequest{Connector: "s", FromSequences: map[string]uint64{"BTCUSDT": 3}}))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		defer func() {
			// Every call is quick; a slow one is a bug (a hang, a blocked drain).
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("request %d took %v: %x", which%4, d, data)
			}
		}()
		switch which % 4 {
		case 0:
			req := &connectorsv1.ConnectRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			// Keep valid Binance connectors off the network: a closed
			// loopback port instead of the requested (or default) URL.
			if b := req.GetBinance(); b != nil && req.Validate() == nil {
				b.Url = "ws://127.0.0.1:1/stream"
			}
			resp, err := c.Connect(ctx, req)
			checkCode(t, "Connect", err)
			if err == nil {
				_, err := c.Disconnect(ctx, &connectorsv1.DisconnectRequest{Name: resp.GetConnector().GetName()})
				if err != nil {
					t.Fatalf("disconnect after connect: %v", err)
				}
			}
		case 1:
			req := &connectorsv1.DisconnectRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			_, err := c.Disconnect(ctx, req)
			checkCode(t, "Disconnect", err)
		case 2:
			req := &connectorsv1.ListConnectorsRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			_, err := c.ListConnectors(ctx, req)
			checkCode(t, "ListConnectors", err)
		case 3:
			req := &connectorsv1.StreamMarketDataRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			sctx, scancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer scancel()
			s, err := c.StreamMarketData(sctx, req)
			if err == nil {
				for range 3 {
					if _, err = s.Recv(); err != nil {
						break
					}
				}
			}
			if status.Code(err) != codes.DeadlineExceeded {
				checkCode(t, "StreamMarketData", err)
			}
		}
	})
}
