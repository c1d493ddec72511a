// Command tradsys-matching is the matching service
// (tradsys.matching.v1.MatchingService, default 127.0.0.1:7103, admin
// 127.0.0.1:9103). It starts dormant; the first order call loads the engine
// from its snapshot and journal in --data-dir.
package main

import (
	"context"
	"flag"
	"time"

	"github.com/tradsys/mesh/pkg/config"
	"github.com/tradsys/mesh/pkg/service"
	"github.com/tradsys/mesh/services/matching/server"
)

func main() {
	o := server.Defaults()
	mem, algoMem := config.ByteSize(o.MemoryBytes), config.ByteSize(o.AlgorithmMemoryBytes)
	var priority, algoPriority int
	service.Main(service.Config{Name: "matching", Listen: "127.0.0.1:7103", AdminListen: "127.0.0.1:9103",
		MainComponent: server.MainComponent}, func(fs *flag.FlagSet) {
		fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "directory of the journal, snapshots and trade rings")
		fs.DurationVar(&o.CommitDelay, "fsync-interval", 0, "how long a committer waits before forcing an fsync, so more orders share it (0: at once; group commit always applies)")
		fs.BoolVar(&o.NoFsync, "no-fsync", false, "do not fsync the journal (benchmarks only: acknowledged orders may be lost)")
		fs.IntVar(&o.TradeRing, "trade-ring", o.TradeRing, "trades kept per symbol for StreamTrades resumption")
		fs.IntVar(&o.DoneOrders, "done-orders", 100000, "finished (filled or cancelled) orders GetOrder still answers for (negative: none)")
		fs.DurationVar(&o.DoneOrderTTL, "done-order-ttl", time.Hour, "how long GetOrder answers for a finished order (negative: no time bound)")
		fs.Var(&mem, "memory", "memory estimate of the engine (raised to 1.5x the books at the last unload)")
		fs.IntVar(&priority, "priority", int(o.Priority), "priority of the engine's memory lease (lower is more important)")
		fs.DurationVar(&o.InitTimeout, "init-timeout", o.InitTimeout, "how long loading the engine may take")
		fs.DurationVar(&o.IdleTimeout, "idle-timeout", o.IdleTimeout, "unload the engine after this long without calls (negative: never)")
		fs.Var(&algoMem, "algorithm-memory", "memory estimate of each algorithm plugin")
		fs.IntVar(&algoPriority, "algorithm-priority", int(o.AlgorithmPriority), "priority of the algorithm plugins' leases")
		fs.DurationVar(&o.AlgorithmIdleTimeout, "algorithm-idle-timeout", o.AlgorithmIdleTimeout, "unload an algorithm plugin after this long unused")
		fs.StringVar(&o.DefaultAlgorithm, "default-algorithm", o.DefaultAlgorithm, "algorithm of new books: fifo or pro-rata")
		fs.DurationVar(&o.LockWait, "lock-wait", o.LockWait, "how long algorithm changes wait for the lock matching/algorithms")
	}, func(ctx context.Context, s *service.Service) error {
		o.MemoryBytes, o.AlgorithmMemoryBytes = int64(mem), int64(algoMem)
		o.Priority, o.AlgorithmPriority = int32(priority), int32(algoPriority)
		_, err := server.Setup(ctx, s, o)
		return err
	})
}
