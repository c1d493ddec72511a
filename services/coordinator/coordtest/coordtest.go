// Package coordtest starts real coordinators for tests: an embedded etcd in
// the test process and coordinator replicas serving gRPC on loopback TCP.
// Other modules' tests (the lazy runtime, the services) use it to run
// against the real coordinator, never a fake one.
package coordtest

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/config"
	"github.com/tradsys/mesh/pkg/grpcserver"
	"github.com/tradsys/mesh/pkg/proctest"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coord"
	"github.com/tradsys/mesh/services/coordinator/embedetcd"
	"github.com/tradsys/mesh/services/coordinator/server"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Etcd starts an embedded etcd member for the test and returns its endpoint.
func Etcd(t testing.TB) string {
	t.Helper()
	e, err := embedetcd.Start(embedetcd.Config{Dir: t.TempDir(), ClientAddr: "127.0.0.1:0", PeerAddr: "127.0.0.1:0", NoFsync: true,
		LogLevel: "panic"}) // etcd logs errors on every orderly close
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e.Endpoint()
}

// Config tweaks a replica; zero values take test-friendly defaults.
type Config struct {
	Budget       int64
	PreemptGrace time.Duration
	LockRanks    map[string]int32
	ElectionTTL  int
	Verbose      bool   // log through t.Log
	Listen       string // gRPC address; default a free loopback port
	// Listener, when set, is the replica's gRPC listener instead of
	// Listen: a proctest.Port's, for an address the test gives out before
	// the replica runs.
	Listener net.Listener
	// MaxTxnOps and MaxRequestBytes: etcd's limits as the replica knows them.
	MaxTxnOps, MaxRequestBytes int
	// Limits, WatchBuffer, MaxWatchers, MaxWatchersPerOwner: see
	// coord.Limits and server.Options; zero takes the defaults.
	Limits                                        coord.Limits
	CompactRetain                                 int64
	WatchBuffer, MaxWatchers, MaxWatchersPerOwner int
	// TLSCert, TLSKey and TLSCA turn on mTLS (see proctest.PKI).
	TLSCert, TLSKey, TLSCA string
	// ReplicaIdentities: see server.Options.
	ReplicaIdentities []string
}

func (c Config) tls() config.TLS {
	return config.TLS{CertFile: c.TLSCert, KeyFile: c.TLSKey, CAFile: c.TLSCA}
}

// Replica starts a coordinator replica on etcdEndpoint (several members
// comma-separated, see EtcdCluster.Endpoints), stopped at cleanup.
func Replica(t testing.TB, etcdEndpoint string, c Config) *server.Running {
	t.Helper()
	if c.Budget == 0 {
		c.Budget = 1 << 30
	}
	if c.PreemptGrace == 0 {
		c.PreemptGrace = 500 * time.Millisecond
	}
	if c.ElectionTTL == 0 {
		c.ElectionTTL = 2
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:0"
	}
	log := zap.NewNop()
	if c.Verbose {
		log = zaptest.NewLogger(t)
	}
	var r *server.Running
	// A replica restarted on the address of one just killed waits while
	// the port is not let go yet.
	err := proctest.RetryAddrInUse(func() (err error) {
		r, err = server.Start(context.Background(), server.Options{
			Flags:         &grpcserver.Flags{Listen: c.Listen, ShutdownTimeout: 2 * time.Second, TLS: c.tls()},
			Listener:      c.Listener,
			Logger:        log,
			EtcdEndpoints: strings.Split(etcdEndpoint, ","),
			Coord: coord.Config{Budget: c.Budget, PreemptGrace: c.PreemptGrace, LockRanks: c.LockRanks, ElectionTTL: c.ElectionTTL,
				MaxTxnOps: c.MaxTxnOps, MaxRequestBytes: c.MaxRequestBytes, Limits: c.Limits, CompactRetain: c.CompactRetain},
			WatchBuffer: c.WatchBuffer, MaxWatchers: c.MaxWatchers, MaxWatchersPerOwner: c.MaxWatchersPerOwner,
			ReplicaIdentities: c.ReplicaIdentities,
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	waitServing(t, r.Addr(), grpc.WithTransportCredentials(clientCreds(t, c)))
	return r
}

func clientCreds(t testing.TB, c Config) credentials.TransportCredentials {
	creds, err := c.tls().ClientCredentials()
	if err != nil {
		t.Fatal(err)
	}
	return creds
}

// Start is an embedded etcd plus one replica: the common case.
func Start(t testing.TB, c Config) (*server.Running, coordinatorv1.CoordinatorServiceClient) {
	t.Helper()
	r := Replica(t, Etcd(t), c)
	return r, Client(t, r.Addr())
}

// Client dials addr for the test.
func Client(t testing.TB, addr string) coordinatorv1.CoordinatorServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return coordinatorv1.NewCoordinatorServiceClient(conn)
}

// WaitServing waits until addr's health reports SERVING.
func WaitServing(t testing.TB, addr string) {
	t.Helper()
	waitServing(t, addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
}

func waitServing(t testing.TB, addr string, creds grpc.DialOption) {
	t.Helper()
	conn, err := grpc.NewClient(addr, creds)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("coordinator %s not SERVING after 30s", addr)
}
