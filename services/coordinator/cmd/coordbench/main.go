// Command coordbench measures the coordinator against raw etcd on the same
// embedded etcd in the same run, and prints a table with the ratios:
//
//   - memory: AcquireMemory+ReleaseMemory pairs/s vs etcd txn put+delete pairs/s
//   - resize: ResizeMemory grow+shrink pairs/s vs AcquireMemory+ReleaseMemory pairs/s
//   - locks:  AcquireLock+ReleaseLock/s on distinct names vs concurrency.Mutex
//   - handoffs: lock grants/s on one lock vs concurrency.Mutex (contended
//     at n > 1 clients; every measurement runs at every client count)
//
// Absolute numbers depend on the machine (shared, 2 cores); the ratios are
// what carries.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/tradsys/mesh/pkg/grpcserver"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coord"
	"github.com/tradsys/mesh/services/coordinator/server"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
)

func main() {
	dur := flag.Duration("duration", 3*time.Second, "how long each measurement runs")
	conc := flag.String("clients", "1,64", "concurrent clients, comma-separated")
	only := flag.String("only", "", "run only measurements whose name contains this")
	noFsync := flag.Bool("no-fsync", false, "run etcd without fsync (shows the cost above the disk; both sides alike)")
	rounds := flag.Int("rounds", 3, "alternating baseline/coordinator rounds per measurement (medians are reported)")
	compactRetain := flag.Int64("compact-retain", 0, "the coordinator's --compact-retain (0: its default, 1000; -1: never). Its compactions also speed up the etcd baseline, which shares the etcd")
	overTCP := flag.Bool("etcd-over-tcp", false, "the coordinator reaches its embedded etcd over TCP, as the baseline's clients do, instead of in process (its default)")
	depth := flag.Int("pipeline-depth", 0, "the leader's etcd transactions in flight at most (0: the coordinator's default)")
	pmin := flag.Int("pipeline-min", 0, "decisions waiting before another transaction is sent while one is in flight (0: the coordinator's default)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run here")
	memprofile := flag.String("memprofile", "", "write an allocations profile of the whole run here")
	flag.Parse()
	if *memprofile != "" {
		defer func() {
			f, err := os.Create(*memprofile)
			check(err)
			check(pprof.Lookup("allocs").WriteTo(f, 0))
			check(f.Close())
		}()
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		check(err)
		check(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}
	dir, err := os.MkdirTemp("", "coordbench")
	check(err)
	defer os.RemoveAll(dir)

	r, err := server.Start(context.Background(), server.Options{
		Flags:   &grpcserver.Flags{Listen: "127.0.0.1:0", ShutdownTimeout: time.Second},
		DataDir: dir, EtcdClient: "127.0.0.1:0", EtcdPeer: "127.0.0.1:0", EtcdNoFsync: *noFsync, EtcdOverTCP: *overTCP,
		Coord: coord.Config{Budget: 1 << 40, CompactRetain: *compactRetain, PipelineDepth: *depth, PipelineMin: *pmin},
	})
	check(err)
	defer r.Stop()
	for !r.Coord.IsLeader() {
		time.Sleep(10 * time.Millisecond)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: r.EtcdEndpoints()})
	check(err)
	defer cli.Close()
	conn, err := grpc.NewClient(r.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	check(err)
	defer conn.Close()
	c := coordinatorv1.NewCoordinatorServiceClient(conn)

	reach := "in process"
	if *overTCP {
		reach = "over TCP"
	}
	fmt.Printf("coordbench: embedded etcd (fsync %v; coordinator reaches it %s, baseline clients over TCP), %d alternating rounds of %s per side, medians\n",
		!*noFsync, reach, *rounds, *dur)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "measurement\tclients\tcoordinator ops/s\tetcd baseline ops/s\tratio\tper round\tallocs/op coordinator | baseline\t")
	for _, n := range parseList(*conc) {
		measure := func(name string, ours, base worker) {
			if !strings.Contains(name, *only) {
				return
			}
			// Alternate baseline and coordinator rounds and take each side's
			// median, so drift on a shared machine (etcd's database growing,
			// another process waking up) hits both alike.
			var bs, os, ba, oa []float64
			for r := 0; r < *rounds; r++ {
				progress("%s, %d clients, round %d/%d", name, n, r+1, *rounds)
				rate, allocs := run(*dur, n, base)
				bs, ba = append(bs, rate), append(ba, allocs)
				rate, allocs = run(*dur, n, ours)
				os, oa = append(os, rate), append(oa, allocs)
			}
			row(tw, name, n, median(os), median(bs), os, bs, median(oa), median(ba))
		}
		measure("AcquireMemory+ReleaseMemory vs txn put+delete", coordMemory(c), etcdPutDelete(cli))
		// The same pairs as messages on one Session stream per client.
		measure("Session stream acquire+release vs txn put+delete", coordMemoryStream(c), etcdPutDelete(cli))
		// A resize against an acquire, both as the coordinator does them
		// (a decision, one fenced etcd write each way): the baseline column
		// is AcquireMemory+ReleaseMemory here, not raw etcd.
		measure("ResizeMemory grow+shrink vs AcquireMemory+ReleaseMemory", coordResize(c), coordMemory(c))
		measure("AcquireLock+ReleaseLock vs Mutex, distinct names", coordLockDistinct(c), mutexDistinct(cli))
		measure("Session stream lock+unlock vs Mutex, distinct names", coordLockStream(c), mutexDistinct(cli))
		// At 1 client there is no one to hand off to: the row is the same
		// lock taken and released again, which is the baseline the 64-client
		// handoff row is read against.
		measure("handoffs on one lock vs Mutex", coordLockContended(c), mutexContended(cli))
	}
	tw.Flush()
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func progress(format string, args ...any) { fmt.Fprintf(os.Stderr, "... "+format+"\n", args...) }

// row prints the medians' ratio and, for each round, the ratio of the
// coordinator's run to the baseline's run just before it (neighbours in
// time see the same machine).
//
// The allocations per operation are the whole process's (clients,
// coordinator, etcd), for each side: unlike the rates, they hardly move
// with the machine's load, so they show work saved on a noisy machine.
func row(tw *tabwriter.Writer, name string, n int, ours, base float64, os, bs []float64, oallocs, ballocs float64) {
	rounds := make([]string, len(os))
	for i := range os {
		rounds[i] = fmt.Sprintf("%.2f", os[i]/bs[i])
	}
	fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.2fx\t%s\t%.0f | %.0f\t\n", name, n, ours, base, ours/base, strings.Join(rounds, " "), oallocs, ballocs)
}

func parseList(s string) []int {
	var out []int
	for _, p := range strings.Split(s, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(p), &n); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "coordbench:", err)
		os.Exit(1)
	}
}

// worker returns one client's operation; setup runs before timing starts.
type worker func(id int) (op func() error, cleanup func())

// run runs n workers for d and returns completed operations per second.
func run(d time.Duration, n int, mk worker) (rate, allocsPerOp float64) {
	ops := make([]func() error, n)
	cleanups := make([]func(), n)
	for i := range n {
		ops[i], cleanups[i] = mk(i)
	}
	var count atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if err := ops[i](); err != nil {
					check(err)
				}
				count.Add(1)
			}
		}()
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&m1)
	for _, c := range cleanups {
		if c != nil {
			c()
		}
	}
	return float64(count.Load()) / elapsed.Seconds(), float64(m1.Mallocs-m0.Mallocs) / float64(count.Load())
}

func etcdPutDelete(cli *clientv3.Client) worker {
	return func(id int) (func() error, func()) {
		key := fmt.Sprintf("/bench/raw/%d", id)
		return func() error {
			ctx := context.Background()
			if _, err := cli.Txn(ctx).Then(clientv3.OpPut(key, "lease")).Commit(); err != nil {
				return err
			}
			_, err := cli.Txn(ctx).Then(clientv3.OpDelete(key)).Commit()
			return err
		}, nil
	}
}

func coordSession(c coordinatorv1.CoordinatorServiceClient, id int) (string, func()) {
	resp, err := c.CreateSession(context.Background(), &coordinatorv1.CreateSessionRequest{Owner: fmt.Sprintf("bench-%d", id), Ttl: durationpb.New(time.Minute)})
	check(err)
	sid := resp.GetSessionId()
	return sid, func() {
		_, _ = c.CloseSession(context.Background(), &coordinatorv1.CloseSessionRequest{SessionId: sid})
	}
}

func coordMemory(c coordinatorv1.CoordinatorServiceClient) worker {
	return func(id int) (func() error, func()) {
		sid, cleanup := coordSession(c, id)
		return func() error {
			ctx := context.Background()
			g, err := c.AcquireMemory(ctx, &coordinatorv1.AcquireMemoryRequest{SessionId: sid, Component: "bench", Bytes: 1 << 20})
			if err != nil {
				return err
			}
			_, err = c.ReleaseMemory(ctx, &coordinatorv1.ReleaseMemoryRequest{SessionId: sid, LeaseId: g.GetLeaseId()})
			return err
		}, cleanup
	}
}

func coordResize(c coordinatorv1.CoordinatorServiceClient) worker {
	return func(id int) (func() error, func()) {
		sid, cleanup := coordSession(c, id)
		g, err := c.AcquireMemory(context.Background(), &coordinatorv1.AcquireMemoryRequest{SessionId: sid, Component: "bench", Bytes: 1 << 20})
		check(err)
		return func() error {
			ctx := context.Background()
			if _, err := c.ResizeMemory(ctx, &coordinatorv1.ResizeMemoryRequest{SessionId: sid, LeaseId: g.GetLeaseId(), Bytes: 2 << 20}); err != nil {
				return err
			}
			_, err := c.ResizeMemory(ctx, &coordinatorv1.ResizeMemoryRequest{SessionId: sid, LeaseId: g.GetLeaseId(), Bytes: 1 << 20})
			return err
		}, cleanup
	}
}

func mutexFor(cli *clientv3.Client, name string) (*concurrency.Mutex, func()) {
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(60))
	check(err)
	return concurrency.NewMutex(s, name), func() { s.Close() }
}

func mutexDistinct(cli *clientv3.Client) worker {
	return func(id int) (func() error, func()) {
		m, cleanup := mutexFor(cli, fmt.Sprintf("/bench/mutex/%d", id))
		return func() error {
			if err := m.Lock(context.Background()); err != nil {
				return err
			}
			return m.Unlock(context.Background())
		}, cleanup
	}
}

func mutexContended(cli *clientv3.Client) worker {
	return func(id int) (func() error, func()) {
		m, cleanup := mutexFor(cli, "/bench/mutex-contended")
		return func() error {
			if err := m.Lock(context.Background()); err != nil {
				return err
			}
			return m.Unlock(context.Background())
		}, cleanup
	}
}

func coordLock(c coordinatorv1.CoordinatorServiceClient, id int, name string) (func() error, func()) {
	sid, cleanup := coordSession(c, id)
	return func() error {
		ctx := context.Background()
		if _, err := c.AcquireLock(ctx, &coordinatorv1.AcquireLockRequest{SessionId: sid, Name: name, WaitTimeout: durationpb.New(time.Minute)}); err != nil {
			return err
		}
		_, err := c.ReleaseLock(ctx, &coordinatorv1.ReleaseLockRequest{SessionId: sid, Name: name})
		return err
	}, cleanup
}

func coordLockDistinct(c coordinatorv1.CoordinatorServiceClient) worker {
	return func(id int) (func() error, func()) { return coordLock(c, id, fmt.Sprintf("bench/%d", id)) }
}

func coordLockContended(c coordinatorv1.CoordinatorServiceClient) worker {
	return func(id int) (func() error, func()) { return coordLock(c, id, "bench/contended") }
}

// sessionStream opens client id's session and a Session stream, and
// returns a call that sends a request on it and waits for its answer.
func sessionStream(c coordinatorv1.CoordinatorServiceClient, id int) (string, func(*coordinatorv1.SessionRequest) (*coordinatorv1.SessionResponse, error), func()) {
	sid, closeSession := coordSession(c, id)
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := c.Session(ctx)
	check(err)
	var n uint64
	call := func(req *coordinatorv1.SessionRequest) (*coordinatorv1.SessionResponse, error) {
		n++
		req.Id = n
		if err := stream.Send(req); err != nil {
			return nil, err
		}
		resp, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		if resp.GetCode() != 0 {
			return nil, fmt.Errorf("request %d: code %d: %s", resp.GetId(), resp.GetCode(), resp.GetMessage())
		}
		return resp, nil
	}
	return sid, call, func() {
		_ = stream.CloseSend()
		cancel()
		closeSession()
	}
}

func coordLockStream(c coordinatorv1.CoordinatorServiceClient) worker {
	return func(id int) (func() error, func()) {
		sid, call, cleanup := sessionStream(c, id)
		name := fmt.Sprintf("bench/stream/%d", id)
		return func() error {
			if _, err := call(&coordinatorv1.SessionRequest{Request: &coordinatorv1.SessionRequest_AcquireLock{
				AcquireLock: &coordinatorv1.AcquireLockRequest{SessionId: sid, Name: name, WaitTimeout: durationpb.New(time.Minute)}}}); err != nil {
				return err
			}
			_, err := call(&coordinatorv1.SessionRequest{Request: &coordinatorv1.SessionRequest_ReleaseLock{
				ReleaseLock: &coordinatorv1.ReleaseLockRequest{SessionId: sid, Name: name}}})
			return err
		}, cleanup
	}
}

func coordMemoryStream(c coordinatorv1.CoordinatorServiceClient) worker {
	return func(id int) (func() error, func()) {
		sid, call, cleanup := sessionStream(c, id)
		return func() error {
			g, err := call(&coordinatorv1.SessionRequest{Request: &coordinatorv1.SessionRequest_AcquireMemory{
				AcquireMemory: &coordinatorv1.AcquireMemoryRequest{SessionId: sid, Component: "bench", Bytes: 1 << 20}}})
			if err != nil {
				return err
			}
			_, err = call(&coordinatorv1.SessionRequest{Request: &coordinatorv1.SessionRequest_ReleaseMemory{
				ReleaseMemory: &coordinatorv1.ReleaseMemoryRequest{SessionId: sid, LeaseId: g.GetAcquireMemory().GetLeaseId()}}})
			return err
		}, cleanup
	}
}
