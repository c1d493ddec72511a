package server_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/grpcfuzz"
	"github.com/tradsys/mesh/pkg/grpcserver"
	"github.com/tradsys/mesh/pkg/service"
	connectorsv1 "github.com/tradsys/mesh/proto/tradsys/connectors/v1"
	"github.com/tradsys/mesh/services/connectors/server"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// startService runs the connectors service in this process, wired by
// server.Setup as main wires it, against the coordinator at coord.
func startService(tb testing.TB, coord string) (connectorsv1.ConnectorServiceClient, *grpc.ClientConn) {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s, err := service.New(service.Config{Name: "connectors"}, service.Options{Listener: lis, Coordinator: coord,
		Flags: grpcserver.Flags{Listen: lis.Addr().String(), ShutdownTimeout: 2 * time.Second}})
	if err != nil {
		tb.Fatal(err)
	}
	o := server.Defaults()
	o.RingSize, o.DataDir = 1024, tb.TempDir()
	if _, err := server.Setup(context.Background(), s, o); err != nil {
		tb.Fatal(err)
	}
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
	return connectorsv1.NewConnectorServiceClient(conn), conn
}

// FuzzRequests decodes random bytes as each request of ConnectorService and
// sends it through the full server chain (validation, recovery, gate,
// handler, error table) over real gRPC: the answer may be an error, but
// never INTERNAL or UNKNOWN, and the process never crashes.
func FuzzRequests(f *testing.F) {
	r, _ := coordtest.Start(f, coordtest.Config{Budget: 64 << 30})
	c, conn := startService(f, r.Addr())
	// A long-lived connector for the streams to read.
	if _, err := c.Connect(context.Background(), &connectorsv1.ConnectRequest{Name: "s", Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_SIMULATOR,
		Config: &connectorsv1.ConnectRequest_Simulator{Simulator: &connectorsv1.SimulatorConfig{Symbols: []string{"BTCUSDT", "ETHUSDT"}, Rate: 200}}}); err != nil {
		f.Fatal(err)
	}
	methods := grpcfuzz.Methods(f, connectorsv1.File_tradsys_connectors_v1_connectors_proto.Services().ByName("ConnectorService"))
	seed := func(name string, m proto.Message) { grpcfuzz.Seed(f, methods, name, m) }
	seed("Connect", &connectorsv1.ConnectRequest{Name: "s", Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_SIMULATOR,
		Config: &connectorsv1.ConnectRequest_Simulator{Simulator: &connectorsv1.SimulatorConfig{Symbols: []string{"BTCUSDT"}, Rate: 100}}})
	seed("Connect", &connectorsv1.ConnectRequest{Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_REPLAY,
		Config: &connectorsv1.ConnectRequest_Replay{Replay: &connectorsv1.ReplayConfig{Bundled: true}}})
	seed("Connect", &connectorsv1.ConnectRequest{Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_BINANCE,
		Config: &connectorsv1.ConnectRequest_Binance{Binance: &connectorsv1.BinanceConfig{Symbols: []string{"btcusdt"}}}})
	seed("Connect", &connectorsv1.ConnectRequest{Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_SIMULATOR,
		Config: &connectorsv1.ConnectRequest_Simulator{Simulator: &connectorsv1.SimulatorConfig{Symbols: []string{"a", "A"}, StartPrice: "0.000000001"}}})
	seed("Disconnect", &connectorsv1.DisconnectRequest{Name: "simulator"})
	seed("ListConnectors", &connectorsv1.ListConnectorsRequest{})
	seed("StreamMarketData", &connectorsv1.StreamMarketDataRequest{Connector: "s", FromSequences: map[string]uint64{"BTCUSDT": 3}})
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		m, req, ok := grpcfuzz.Decode(methods, which, data)
		if !ok {
			return
		}
		// Keep valid Binance connectors off the network: a closed loopback
		// port instead of the requested (or default) URL.
		if r, isConnect := req.(*connectorsv1.ConnectRequest); isConnect && r.GetBinance() != nil && r.Validate() == nil {
			r.GetBinance().Url = "ws://127.0.0.1:1/stream"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if m.ServerStream {
			ctx, cancel = context.WithTimeout(ctx, 100*time.Millisecond) // a healthy stream runs until cut
			defer cancel()
		}
		start := time.Now()
		err := grpcfuzz.Call(ctx, conn, m, req)
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("%s(%v) took %v: a hang or a blocked drain", m.Name, req, d)
		}
		if m.ServerStream && status.Code(err) == codes.DeadlineExceeded {
			err = nil
		}
		grpcfuzz.Check(t, m, req, err)
		if m.Name == "Connect" && err == nil {
			// Undo it, so connectors do not pile up across inputs.
			list, lerr := c.ListConnectors(context.Background(), &connectorsv1.ListConnectorsRequest{})
			if lerr != nil {
				t.Fatal(lerr)
			}
			for _, cn := range list.GetConnectors() {
				if cn.GetName() != "s" {
					if _, err := c.Disconnect(context.Background(), &connectorsv1.DisconnectRequest{Name: cn.GetName()}); err != nil {
						t.Fatalf("disconnect after connect: %v", err)
					}
				}
			}
		}
	})
}
