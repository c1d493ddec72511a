package server

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/tradsys/mesh/pkg/clientpool"
	"github.com/tradsys/mesh/pkg/grpcserver"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coord"
	"github.com/tradsys/mesh/services/coordinator/embedetcd"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// Options assemble a coordinator replica.
type Options struct {
	Flags  *grpcserver.Flags
	Logger *zap.Logger
	// Listener overrides Flags.Listen.
	Listener net.Listener
	// Advertise is where followers forward to; defaults to the bound address.
	Advertise string

	// EtcdEndpoints selects an external etcd; empty starts an embedded one.
	EtcdEndpoints []string
	DataDir       string
	EtcdClient    string // embedded etcd's client address
	EtcdPeer      string // embedded etcd's peer address
	EtcdNoFsync   bool   // tests only
	// EtcdOverTCP makes the coordinator reach its embedded etcd over its
	// TCP client address, as another process would, instead of through
	// in-process function calls (the default). For comparisons only.
	EtcdOverTCP bool

	Coord coord.Config
	// OperatorIdentities may call operator RPCs (DeactivateComponent) when
	// mTLS is on; default "operator".
	OperatorIdentities []string
	// ReplicaIdentities are the certificate identities of the coordinator
	// replicas (this one's is always among them): only they may forward a
	// caller's identity. None may be an operator identity.
	ReplicaIdentities []string
	// WatchBuffer is how many events a watcher may fall behind before it
	// is cut off; MaxWatchers and MaxWatchersPerOwner bound watchers on this
	// replica. Zero takes the defaults.
	WatchBuffer, MaxWatchers, MaxWatchersPerOwner int
}

// Running is a serving replica.
type Running struct {
	Coord     *coord.Coordinator
	Server    *grpcserver.Server
	Etcd      *embedetcd.Server // nil with external etcd
	Client    *clientv3.Client
	endpoints []string
	cancel    context.CancelFunc
	done      chan struct{}
	fwd       *Forwarder
	svc       *Service
	stopOnce  sync.Once
}

// Addr is the replica's gRPC address.
func (r *Running) Addr() string { return r.Server.Addr() }

// EtcdEndpoints are the etcd client endpoints in use.
func (r *Running) EtcdEndpoints() []string { return r.endpoints }

// Start brings a replica up: etcd (embedded unless endpoints are given),
// the etcd client, the coordinator and its gRPC server. It returns once the
// server listens; health turns SERVING when a leader is known.
func Start(ctx context.Context, o Options) (*Running, error) {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Flags == nil {
		o.Flags = &grpcserver.Flags{Listen: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second}
	}
	r := &Running{done: make(chan struct{})}
	if o.Listener == nil {
		// Bind first: a taken port fails here, before an embedded etcd
		// starts and logs its own shutdown as errors.
		lis, err := net.Listen("tcp", o.Flags.Listen)
		if err != nil {
			return nil, fmt.Errorf("--listen %s: %w", o.Flags.Listen, err)
		}
		o.Listener = lis
		defer func() {
			if r.Server == nil { // failed before the server took it over
				lis.Close()
			}
		}()
	}
	endpoints := o.EtcdEndpoints
	if len(endpoints) == 0 {
		e, err := embedetcd.Start(embedetcd.Config{Dir: o.DataDir, ClientAddr: o.EtcdClient, PeerAddr: o.EtcdPeer, NoFsync: o.EtcdNoFsync,
			MaxTxnOps: o.Coord.MaxTxnOps, MaxRequestBytes: o.Coord.MaxRequestBytes})
		if err != nil {
			return nil, err
		}
		r.Etcd = e
		endpoints = []string{e.Endpoint()}
	}
	r.endpoints = endpoints
	var cli *clientv3.Client
	if r.Etcd != nil && !o.EtcdOverTCP {
		// The embedded member is in this process: call it, do not dial it
		// (each etcd request then costs no loopback round trip).
		cli = r.Etcd.InProcessClient()
	} else {
		var err error
		cli, err = clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: o.Logger.Named("etcd-client").WithOptions(zap.IncreaseLevel(zap.WarnLevel))})
		if err != nil {
			r.closeEtcd()
			return nil, fmt.Errorf("etcd client for %v: %w", endpoints, err)
		}
	}
	r.Client = cli

	creds, err := o.Flags.TLS.ClientCredentials()
	if err != nil {
		r.closeEtcd()
		return nil, err
	}
	self, err := certIdentity(o.Flags.TLS.CertFile)
	if err != nil {
		r.closeEtcd()
		return nil, err
	}
	if len(o.OperatorIdentities) == 0 {
		o.OperatorIdentities = []string{"operator"}
	}
	ids, err := newIdentities(self, o.ReplicaIdentities, o.OperatorIdentities)
	if err != nil {
		r.closeEtcd()
		return nil, err
	}
	watchers := &watchLimits{ids: ids, total: o.MaxWatchers, perOwner: o.MaxWatchersPerOwner, owner: map[string]int{}}
	if watchers.total <= 0 {
		watchers.total = DefaultMaxWatchers
	}
	if watchers.perOwner <= 0 {
		watchers.perOwner = DefaultMaxWatchersPerOwner
	}
	var fwd *Forwarder
	srv, err := grpcserver.New(grpcserver.Options{
		Name: coordinatorv1.CoordinatorService_ServiceDesc.ServiceName, Flags: o.Flags, Logger: o.Logger, Listener: o.Listener,
		// Forwarding is innermost: a follower forwards only valid requests,
		// with the caller's identity (mTLS) found before.
		Unary: []grpc.UnaryServerInterceptor{ids.unary, func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			return fwd.Unary(ctx, req, info, h)
		}},
		Stream: []grpc.StreamServerInterceptor{ids.stream, watchers.stream, func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			return fwd.Stream(srv, ss, info, h)
		}},
	})
	if err != nil {
		r.closeEtcd()
		return nil, err
	}
	r.Server = srv
	cfg := o.Coord
	cfg.Advertise = o.Advertise
	if cfg.Advertise == "" {
		cfg.Advertise = srv.Addr()
	}
	r.Coord = coord.New(cli, cfg, o.Logger.Named("coord"), srv.Registry())
	fwd = NewForwarder(r.Coord, creds)
	r.fwd = fwd
	r.svc = NewService(r.Coord, clientpool.New(clientpool.Options{Creds: creds, Metrics: srv.Registry()}), ids)
	if o.WatchBuffer > 0 {
		r.svc.watchBuffer = o.WatchBuffer
	}
	coordinatorv1.RegisterCoordinatorServiceServer(srv.GRPC(), r.svc)

	rctx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	go func() {
		defer close(r.done)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _ = r.Coord.Run(rctx) }()
		go func() { defer wg.Done(); r.trackReadiness(rctx) }()
		_ = srv.Serve(rctx)
		wg.Wait()
	}()
	return r, nil
}

// trackReadiness reports SERVING while some replica leads (a follower can
// forward), NOT_SERVING otherwise.
func (r *Running) trackReadiness(ctx context.Context) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	last := false
	for {
		ready := r.Coord.Ready()
		if ready != last {
			r.Server.SetServing(ready)
			last = ready
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Stop shuts down gracefully: the leader resigns, so another replica takes
// over at once instead of after the election TTL.
func (r *Running) Stop() {
	r.stopOnce.Do(func() {
		r.Coord.CloseWatchers()
		r.cancel()
		<-r.done
		r.fwd.Close()
		r.svc.components.Close()
		r.Client.Close()
		r.closeEtcd()
	})
}

// Kill stops abruptly, as a crash would: no resignation, the etcd client
// just goes away, so leadership passes only when the election lease expires.
func (r *Running) Kill() {
	r.stopOnce.Do(func() {
		r.Client.Close() // first: nothing more reaches etcd from this replica
		r.Server.GRPC().Stop()
		r.cancel()
		<-r.done
		r.fwd.Close()
		r.svc.components.Close()
		r.closeEtcd()
	})
}

func (r *Running) closeEtcd() {
	if r.Etcd != nil {
		r.Etcd.Close()
	}
}
