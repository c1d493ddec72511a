// Command churnbench measures what steady grant/release churn costs the
// coordinator process over time (issue 9, item 9), with the leader's etcd
// compaction on (--compact-retain, default 1000) and off (-1): the
// process's RSS (the coordinator with its embedded etcd, as deployed by
// default), etcd's database size, and the restart time (a graceful stop,
// then from exec until a grant succeeds), at checkpoints of AcquireMemory +
// ReleaseMemory pairs. Nothing is held between pairs, so a flat line is what
// a healthy process shows. It prints one table.
//
//	cd services/coordinator && go run ./cmd/churnbench --compact-retain 1000,10000,-1
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/tradsys/mesh/pkg/procstat"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
)

func main() {
	pairsFlag := flag.String("pairs", "50000,100000,150000,200000", "checkpoints: total acquire+release pairs at which to measure, comma-separated")
	clients := flag.Int("clients", 32, "concurrent clients doing pairs")
	modes := flag.String("compact-retain", "1000,-1", "the coordinator's --compact-retain values to compare (-1: never)")
	bin := flag.String("bin", "", "coordinator binary (default: built from this module)")
	flag.Parse()
	var checkpoints []int64
	for _, p := range strings.Split(*pairsFlag, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 64)
		check(err)
		checkpoints = append(checkpoints, n)
	}
	dir, err := os.MkdirTemp("", "churnbench")
	check(err)
	defer os.RemoveAll(dir)
	if *bin == "" {
		*bin = filepath.Join(dir, "tradsys-coordinator")
		out, err := exec.Command("go", "build", "-o", *bin, "github.com/tradsys/mesh/services/coordinator").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
			os.Exit(1)
		}
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "compact-retain\tpairs\tpairs/s\tRSS MiB\tetcd db MiB (in use)\trestart s\tRSS after restart MiB\t")
	for _, m := range strings.Split(*modes, ",") {
		m = strings.TrimSpace(m)
		c := &coordProc{bin: *bin, dataDir: filepath.Join(dir, "etcd"+m), compactRetain: m,
			addr: freeAddr(), etcdClient: freeAddr(), etcdPeer: freeAddr()}
		restart := c.start()
		row := func(pairs int64, rate float64) {
			time.Sleep(2 * time.Second) // let the leader's last compaction land
			rss := c.rssMiB()
			db, inUse := c.dbMiB()
			c.stop()
			restart = c.start()
			line := fmt.Sprintf("%s\t%d\t%.0f\t%.1f\t%.1f (%.1f)\t%.2f\t%.1f\t", m, pairs, rate, rss, db, inUse, restart.Seconds(), c.rssMiB())
			fmt.Fprintln(tw, line)
			fmt.Fprintln(os.Stderr, strings.ReplaceAll(line, "\t", " ")) // progress; the table comes at the end
		}
		fmt.Fprintf(tw, "%s\t0\t-\t%.1f\t-\t%.2f\t-\t\n", m, c.rssMiB(), restart.Seconds())
		var done int64
		for _, cp := range checkpoints {
			start := time.Now()
			n := cp - done
			churn(c.addr, *clients, n)
			done = cp
			row(cp, float64(n)/time.Since(start).Seconds())
		}
		c.stop()
	}
	tw.Flush()
}

// churn makes n acquire+release pairs of 1 byte over the given clients,
// each in its own session.
func churn(addr string, clients int, n int64) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	check(err)
	defer conn.Close()
	api := coordinatorv1.NewCoordinatorServiceClient(conn)
	ctx := context.Background()
	var left atomic.Int64
	left.Store(n)
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, err := api.CreateSession(ctx, &coordinatorv1.CreateSessionRequest{Owner: fmt.Sprintf("churn-%d", i), Ttl: durationpb.New(time.Hour)})
			check(err)
			sid := s.GetSessionId()
			defer api.CloseSession(ctx, &coordinatorv1.CloseSessionRequest{SessionId: sid})
			for left.Add(-1) >= 0 {
				l, err := api.AcquireMemory(ctx, &coordinatorv1.AcquireMemoryRequest{SessionId: sid, Component: "churn", Bytes: 1})
				check(err)
				_, err = api.ReleaseMemory(ctx, &coordinatorv1.ReleaseMemoryRequest{SessionId: sid, LeaseId: l.GetLeaseId()})
				check(err)
			}
		}(i)
	}
	wg.Wait()
}

type coordProc struct {
	bin, dataDir, compactRetain string
	addr, etcdClient, etcdPeer  string
	cmd                         *exec.Cmd
}

// start runs the coordinator and returns how long it took until a grant
// succeeded.
func (c *coordProc) start() time.Duration {
	t0 := time.Now()
	c.cmd = exec.Command(c.bin, "--listen", c.addr, "--admin-listen", "", "--data-dir", c.dataDir,
		"--etcd-listen-client", c.etcdClient, "--etcd-listen-peer", c.etcdPeer, "--compact-retain", c.compactRetain,
		"--memory-budget", "1GiB", "--log-level", "warn")
	logf, err := os.OpenFile(c.dataDir+".log", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	check(err)
	defer logf.Close()
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	check(c.cmd.Start())
	conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	check(err)
	defer conn.Close()
	api := coordinatorv1.NewCoordinatorServiceClient(conn)
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s, err := api.CreateSession(ctx, &coordinatorv1.CreateSessionRequest{Owner: "probe", Ttl: durationpb.New(10 * time.Second)})
		if err == nil {
			_, err = api.AcquireMemory(ctx, &coordinatorv1.AcquireMemoryRequest{SessionId: s.GetSessionId(), Component: "probe", Bytes: 1})
			_, _ = api.CloseSession(ctx, &coordinatorv1.CloseSessionRequest{SessionId: s.GetSessionId()})
		}
		cancel()
		if err == nil {
			return time.Since(t0)
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Fprintln(os.Stderr, "coordinator did not grant within 2 minutes")
	os.Exit(1)
	return 0
}

// stop ends the coordinator gracefully (it resigns, etcd closes cleanly).
func (c *coordProc) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	_ = c.cmd.Wait()
}

// rssMiB is the process's resident set.
func (c *coordProc) rssMiB() float64 {
	n, err := procstat.RSS(c.cmd.Process.Pid)
	check(err)
	return float64(n) / (1 << 20)
}

// dbMiB is etcd's database size and the part of it in use.
func (c *coordProc) dbMiB() (float64, float64) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{c.etcdClient}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	check(err)
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := cli.Status(ctx, c.etcdClient)
	check(err)
	return float64(st.DbSize) / (1 << 20), float64(st.DbSizeInUse) / (1 << 20)
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer l.Close()
	return l.Addr().String()
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
