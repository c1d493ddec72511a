package clientpool_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/clientpool"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// backend is a real gRPC server with a health service.
type backend struct {
	addr   string
	health *health.Server
	srv    *grpc.Server
}

func startBackend(t *testing.T) *backend {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{addr: l.Addr().String(), health: health.NewServer(), srv: grpc.NewServer()}
	healthpb.RegisterHealthServer(b.srv, b.health)
	go b.srv.Serve(l)
	t.Cleanup(b.srv.Stop)
	return b
}

func register(t *testing.T, c coordinatorv1.CoordinatorServiceClient, name, endpoint string) {
	if _, err := c.RegisterComponent(context.Background(), &coordinatorv1.RegisterComponentRequest{Name: name, Endpoint: endpoint, MemoryBytes: 1}); err != nil {
		t.Fatal(err)
	}
}

func whoAnswers(t *testing.T, conn *grpc.ClientConn) string {
	var p peer.Peer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p), grpc.WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
	return p.Addr.String()
}

func TestRegistryDiscoverySharedConnAndFollowsReRegistration(t *testing.T) {
	_, coord := coordtest.Start(t, coordtest.Config{})
	first, second := startBackend(t), startBackend(t)
	register(t, coord, "matching", first.addr)

	pool := clientpool.New(clientpool.Options{Registry: &clientpool.RegistryResolver{API: coord, Refresh: time.Hour}})
	t.Cleanup(pool.Close)
	conn, err := pool.Conn("tradsys:///matching")
	if err != nil {
		t.Fatal(err)
	}
	again, _ := pool.Conn("tradsys:///matching")
	if again != conn || pool.Len() != 1 {
		t.Fatal("the pool dialled twice for one target")
	}
	if got := whoAnswers(t, conn); got != first.addr {
		t.Fatalf("answered by %s, want %s", got, first.addr)
	}
	// The service moves: the Watch on the registry re-resolves at once
	// (the periodic refresh is an hour here).
	register(t, coord, "matching", second.addr)
	deadline := time.Now().Add(10 * time.Second)
	for whoAnswers(t, conn) != second.addr {
		if time.Now().After(deadline) {
			t.Fatal("connection did not follow the re-registration")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestHealthAwareBalancingSkipsNotServing(t *testing.T) {
	a, b := startBackend(t), startBackend(t)
	a.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	static := manual.NewBuilderWithScheme("static")
	static.InitialState(resolver.State{Addresses: []resolver.Address{{Addr: a.addr}, {Addr: b.addr}}})
	pool := clientpool.New(clientpool.Options{Resolvers: []resolver.Builder{static}})
	t.Cleanup(pool.Close)
	conn, err := pool.Conn("static:///backends")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if got := whoAnswers(t, conn); got != b.addr {
			t.Fatalf("call %d went to the NOT_SERVING backend %s", i, got)
		}
	}
}
