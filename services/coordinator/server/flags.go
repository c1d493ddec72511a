package server

import (
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tradsys/mesh/pkg/config"
	"github.com/tradsys/mesh/pkg/grpcserver"
	"github.com/tradsys/mesh/services/coordinator/coord"
)

// Defaults are the defaults of every flag: the seed's 4 GiB budget, an
// embedded etcd in .tradsys/etcd.
func Defaults() Options {
	return Options{
		Flags:   &grpcserver.Flags{},
		DataDir: ".tradsys/etcd", EtcdClient: "127.0.0.1:2379", EtcdPeer: "127.0.0.1:2380",
		Coord: coord.Config{Prefix: "/tradsys/", Budget: 4 << 30, PreemptGrace: 5 * time.Second, ElectionTTL: 5,
			MaxTxnOps: coord.DefaultMaxTxnOps, MaxRequestBytes: coord.DefaultMaxRequestBytes, CompactRetain: 1000,
			Limits: coord.Limits{Sessions: 10000, SessionsPerOwner: 1000, WaitersPerOwner: 1000}},
		MaxWatchers: DefaultMaxWatchers, MaxWatchersPerOwner: DefaultMaxWatchersPerOwner, WatchBuffer: DefaultWatchBuffer,
	}
}

// RegisterFlags makes every option a flag (and TRADSYS_* variable) with
// the current value as its default. The coordinator takes no
// --coordinator: it is the coordinator.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	if o.Flags == nil {
		o.Flags = &grpcserver.Flags{}
	}
	o.Flags.Register(fs, "127.0.0.1:7000", "127.0.0.1:9000")
	fs.Var((*config.ByteSize)(&o.Coord.Budget), "memory-budget", "global memory budget, e.g. 4GiB, 512MiB")
	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "embedded etcd data directory")
	fs.Var((*config.StringList)(&o.EtcdEndpoints), "etcd-endpoints", "external etcd endpoints (comma-separated); when set no embedded etcd runs")
	fs.Var(config.ListenAddr{Addr: &o.EtcdClient}, "etcd-listen-client", "embedded etcd client address")
	fs.Var(config.ListenAddr{Addr: &o.EtcdPeer}, "etcd-listen-peer", "embedded etcd peer address")
	fs.DurationVar(&o.Coord.PreemptGrace, "preempt-grace", o.Coord.PreemptGrace, "how long a preempted lease holder has to release")
	fs.Var((*lockRanks)(&o.Coord.LockRanks), "lock-rank", "lock rank as name=rank (repeatable)")
	fs.StringVar(&o.Advertise, "advertise", o.Advertise, "address followers forward to (default: --listen)")
	fs.StringVar(&o.Coord.Prefix, "prefix", o.Coord.Prefix, "etcd key prefix for all coordinator state")
	fs.IntVar(&o.Coord.MaxTxnOps, "etcd-max-txn-ops", o.Coord.MaxTxnOps, "etcd's --max-txn-ops (operations per transaction): the coordinator's batches stay within it, and the embedded etcd uses it")
	fs.Var(intBytes{&o.Coord.MaxRequestBytes}, "etcd-max-request-bytes", "etcd's --max-request-bytes: batches stay within it, larger records are refused, and the embedded etcd uses it")
	fs.Var((*config.StringList)(&o.OperatorIdentities), "operator-identity", "certificate identity (CN) allowed operator RPCs such as DeactivateComponent when mTLS is on (repeatable; default operator)")
	fs.Var((*config.StringList)(&o.ReplicaIdentities), "replica-identity", "certificate identities (CN) of the other coordinator replicas, which may forward a caller's identity when mTLS is on (repeatable; this replica's own is always one); never an operator or client identity")
	fs.IntVar(&o.Coord.Limits.Sessions, "max-sessions", o.Coord.Limits.Sessions, "sessions in total")
	fs.IntVar(&o.Coord.Limits.SessionsPerOwner, "max-sessions-per-owner", o.Coord.Limits.SessionsPerOwner, "sessions per owner (with mTLS, per certificate identity)")
	fs.IntVar(&o.Coord.Limits.WaitersPerOwner, "max-waiters-per-owner", o.Coord.Limits.WaitersPerOwner, "memory and lock requests waiting per owner")
	fs.IntVar(&o.MaxWatchers, "max-watchers", o.MaxWatchers, "Watch streams on this replica")
	fs.IntVar(&o.MaxWatchersPerOwner, "max-watchers-per-owner", o.MaxWatchersPerOwner, "Watch streams on this replica per owner (certificate identity; without TLS, client IP)")
	fs.IntVar(&o.WatchBuffer, "watch-buffer", o.WatchBuffer, "events a watcher may fall behind before it is cut off (what an unread watcher can cost)")
	fs.Int64Var(&o.Coord.CompactRetain, "compact-retain", o.Coord.CompactRetain, "etcd revisions of history the leader keeps, compacting the rest as it goes (steady churn keeps etcd's memory and restart time flat); negative: never")
	fs.IntVar(&o.Coord.ElectionTTL, "election-ttl", o.Coord.ElectionTTL, "leader election lease TTL in seconds (failover time after a crash)")
}

// lockRanks is the repeatable --lock-rank name=rank.
type lockRanks map[string]int32

func (l *lockRanks) String() string {
	var out []string
	for name, rank := range *l {
		out = append(out, name+"="+strconv.Itoa(int(rank)))
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func (l *lockRanks) Set(kv string) error {
	name, v, ok := strings.Cut(kv, "=")
	n, err := strconv.ParseInt(v, 10, 32)
	if !ok || name == "" || err != nil || n < 0 {
		return fmt.Errorf("%q: want name=rank with rank >= 0", kv)
	}
	if *l == nil {
		*l = map[string]int32{}
	}
	(*l)[name] = int32(n)
	return nil
}

// intBytes is a byte-size flag.Value for an int field.
type intBytes struct{ p *int }

func (b intBytes) String() string {
	if b.p == nil {
		return ""
	}
	return config.FormatBytes(int64(*b.p))
}

func (b intBytes) Set(s string) error {
	var n config.ByteSize
	if err := n.Set(s); err != nil {
		return err
	}
	*b.p = int(n)
	return nil
}
