// Command coordinator runs a TradSys coordinator replica: sessions, memory
// leases, lock leases and the component registry, stored in etcd.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tradsys/mesh/pkg/config"
	"github.com/tradsys/mesh/pkg/grpcserver"
	"github.com/tradsys/mesh/pkg/logging"
	"github.com/tradsys/mesh/services/coordinator/coord"
	"github.com/tradsys/mesh/services/coordinator/server"
	"go.uber.org/zap"
)

func main() {
	fs := flag.NewFlagSet("coordinator", flag.ExitOnError)
	var common grpcserver.Flags
	common.Register(fs, "127.0.0.1:7000", "127.0.0.1:9000")
	budget := config.ByteSize(4 << 30) // the seed's 4 GiB
	fs.Var(&budget, "memory-budget", "global memory budget, e.g. 4GiB, 512MiB")
	dataDir := fs.String("data-dir", ".tradsys/etcd", "embedded etcd data directory")
	var endpoints, ranks config.StringList
	fs.Var(&endpoints, "etcd-endpoints", "external etcd endpoints (comma-separated); when set no embedded etcd runs")
	etcdClient, etcdPeer := "127.0.0.1:2379", "127.0.0.1:2380"
	fs.Var(config.ListenAddr{Addr: &etcdClient}, "etcd-listen-client", "embedded etcd client address")
	fs.Var(config.ListenAddr{Addr: &etcdPeer}, "etcd-listen-peer", "embedded etcd peer address")
	grace := fs.Duration("preempt-grace", 5*time.Second, "how long a preempted lease holder has to release")
	fs.Var(&ranks, "lock-rank", "lock rank as name=rank (repeatable)")
	advertise := fs.String("advertise", "", "address followers forward to (default: --listen)")
	prefix := fs.String("prefix", "/tradsys/", "etcd key prefix for all coordinator state")
	maxTxnOps := fs.Int("etcd-max-txn-ops", coord.DefaultMaxTxnOps, "etcd's --max-txn-ops (operations per transaction): the coordinator's batches stay within it, and the embedded etcd uses it")
	maxRequest := config.ByteSize(coord.DefaultMaxRequestBytes)
	fs.Var(&maxRequest, "etcd-max-request-bytes", "etcd's --max-request-bytes: batches stay within it, larger records are refused, and the embedded etcd uses it")
	var limits coord.Limits
	fs.IntVar(&limits.Sessions, "max-sessions", 10000, "sessions in total")
	fs.IntVar(&limits.SessionsPerOwner, "max-sessions-per-owner", 1000, "sessions per owner (with mTLS, per certificate identity)")
	fs.IntVar(&limits.WaitersPerOwner, "max-waiters-per-owner", 1000, "memory and lock requests waiting per owner")
	maxWatchers := fs.Int("max-watchers", server.DefaultMaxWatchers, "Watch streams on this replica")
	maxWatchersPerOwner := fs.Int("max-watchers-per-owner", server.DefaultMaxWatchersPerOwner, "Watch streams on this replica per owner (certificate identity; without TLS, client IP)")
	watchBuffer := fs.Int("watch-buffer", server.DefaultWatchBuffer, "events a watcher may fall behind before it is cut off (what an unread watcher can cost)")
	compactRetain := fs.Int64("compact-retain", 10000, "etcd revisions of history the leader keeps, compacting the rest as it goes (steady churn keeps etcd's memory and restart time flat); negative: never")
	var operators config.StringList
	fs.Var(&operators, "operator-identity", "certificate identity (CN) allowed operator RPCs such as DeactivateComponent when mTLS is on (repeatable; default operator)")
	electionTTL := fs.Int("election-ttl", 5, "leader election lease TTL in seconds (failover time after a crash)")
	if err := config.Parse(fs, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	log, err := logging.New("coordinator", common.LogLevel, common.LogFormat)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	rankMap, err := parseRanks(ranks)
	if err != nil {
		log.Fatal("bad --lock-rank", zap.Error(err))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	adv := *advertise
	if adv == "" {
		adv = common.Listen
	}
	r, err := server.Start(ctx, server.Options{
		Flags: &common, Logger: log, Advertise: adv, OperatorIdentities: operators,
		WatchBuffer: *watchBuffer, MaxWatchers: *maxWatchers, MaxWatchersPerOwner: *maxWatchersPerOwner,
		EtcdEndpoints: endpoints, DataDir: *dataDir, EtcdClient: etcdClient, EtcdPeer: etcdPeer,
		Coord: coord.Config{Prefix: *prefix, Budget: int64(budget), PreemptGrace: *grace, LockRanks: rankMap, ElectionTTL: *electionTTL,
			MaxTxnOps: *maxTxnOps, MaxRequestBytes: int(maxRequest), Limits: limits, CompactRetain: *compactRetain},
	})
	if err != nil {
		log.Fatal("start", zap.Error(err))
	}
	log.Info("coordinator up", zap.String("grpc", r.Addr()), zap.Strings("etcd", r.EtcdEndpoints()),
		zap.String("budget", config.FormatBytes(int64(budget))))
	<-ctx.Done()
	log.Info("shutting down")
	r.Stop()
}

func parseRanks(list []string) (map[string]int32, error) {
	out := map[string]int32{}
	for _, kv := range list {
		name, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseInt(v, 10, 32)
		if !ok || name == "" || err != nil || n < 0 {
			return nil, fmt.Errorf("%q: want name=rank with rank >= 0", kv)
		}
		out[name] = int32(n)
	}
	return out, nil
}
