// Command lazybench measures the lazy runtime and prints a table:
//
//   - cold activation overhead: first-call latency minus the component's own
//     Init time (session, memory lease through a real coordinator on a real
//     embedded etcd with fsync, state changes, the gate), p50/p99 over many
//     dormant -> active cycles;
//   - warm gate overhead: the same RPC through a gated and an ungated server
//     in the same run, and the p50 ratio;
//   - dormant footprint: resident memory of a real dormant service process,
//     then active with 64 MiB of heavy internals, then dormant again.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/tradsys/mesh/pkg/grpcserver"
	"github.com/tradsys/mesh/pkg/lazy"
	"github.com/tradsys/mesh/pkg/procstat"
	"github.com/tradsys/mesh/pkg/service"
	lifecyclev1 "github.com/tradsys/mesh/proto/tradsys/lifecycle/v1"
	"github.com/tradsys/mesh/tests/internal/benchkit"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

func main() {
	cycles := flag.Int("cycles", 200, "cold activation cycles")
	warm := flag.Int("warm-calls", 20000, "calls per side for the warm gate overhead")
	initTime := flag.Duration("init", 2*time.Millisecond, "the test component's own Init time")
	flag.Parse()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "lazybench")
	check(err)
	defer os.RemoveAll(dir)

	r, err := benchkit.StartCoordinator(ctx, dir)
	check(err)
	defer r.Stop()

	gated, gatedComp, initNanos := startService(ctx, r.Addr(), *initTime, true)
	plain, _, _ := startService(ctx, r.Addr(), *initTime, false)

	fmt.Fprintln(os.Stderr, "... cold activations")
	cold := make([]time.Duration, 0, *cycles)
	c := testpb.NewTestServiceClient(gated)
	for i := 0; i <= *cycles; i++ {
		start := time.Now()
		_, err := c.UnaryCall(ctx, &testpb.SimpleRequest{})
		check(err)
		lat := time.Since(start)
		if i > 0 { // the first also opens the session: not a steady cycle
			cold = append(cold, lat-time.Duration(initNanos.Load()))
		}
		check(gatedComp.Deactivate(ctx, "bench"))
	}

	fmt.Fprintln(os.Stderr, "... warm calls")
	_, err = c.UnaryCall(ctx, &testpb.SimpleRequest{}) // active again
	check(err)
	pc := testpb.NewTestServiceClient(plain)
	// Alternate call by call, so the machine's noise hits both sides alike.
	var gatedLat, plainLat []time.Duration
	for i := 0; i < *warm; i++ {
		if i%2 == 0 {
			gatedLat = append(gatedLat, timeCalls(ctx, c, 1)...)
			plainLat = append(plainLat, timeCalls(ctx, pc, 1)...)
		} else {
			plainLat = append(plainLat, timeCalls(ctx, pc, 1)...)
			gatedLat = append(gatedLat, timeCalls(ctx, c, 1)...)
		}
	}

	fmt.Fprintln(os.Stderr, "... footprint of a real process")
	dormantRSS, activeRSS, afterRSS := footprint(r.Addr(), dir)

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "measurement\tp50\tp99\tnote\t\n")
	fmt.Fprintf(tw, "cold activation overhead (first call - Init)\t%s\t%s\t%d cycles, Init %s, target p99 < 10ms\t\n",
		benchkit.PctString(cold, 50), benchkit.PctString(cold, 99), len(cold), *initTime)
	g50, p50 := benchkit.Pct(gatedLat, 50), benchkit.Pct(plainLat, 50)
	fmt.Fprintf(tw, "warm call, gated\t%s\t%s\t%d calls\t\n", g50, benchkit.PctString(gatedLat, 99), len(gatedLat))
	fmt.Fprintf(tw, "warm call, ungated\t%s\t%s\t%d calls\t\n", p50, benchkit.PctString(plainLat, 99), len(plainLat))
	fmt.Fprintf(tw, "gated/ungated p50 ratio\t%.3f\t\ttarget <= 1.05\t\n", float64(g50)/float64(p50))
	fmt.Fprintf(tw, "RSS dormant process\t%s\t\ttarget < 20 MB\t\n", mb(dormantRSS))
	fmt.Fprintf(tw, "RSS active (64 MiB heavy internals)\t%s\t\t\t\n", mb(activeRSS))
	fmt.Fprintf(tw, "RSS dormant again\t%s\t\t\t\n", mb(afterRSS))
	tw.Flush()
}

func check(err error) { benchkit.Check("lazybench", err) }

type nopServer struct {
	testpb.UnimplementedTestServiceServer
}

func (nopServer) UnaryCall(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{}, nil
}

// startService runs an in-process service serving TestService over loopback
// TCP; gated says whether UnaryCall needs its component.
func startService(ctx context.Context, coordAddr string, initTime time.Duration, gated bool) (*grpc.ClientConn, *lazy.Component, *atomic.Int64) {
	s, err := service.New(service.Config{Name: "bench"}, service.Options{
		Coordinator: coordAddr, Flags: grpcserver.Flags{Listen: "127.0.0.1:0", ShutdownTimeout: time.Second, LogLevel: "error"},
	})
	check(err)
	var initNanos atomic.Int64
	comp, err := s.Runtime.Add(lazy.Spec{Name: fmt.Sprintf("bench-%v", gated), MemoryBytes: 1 << 20, IdleTimeout: -1,
		Init: func(context.Context) error {
			start := time.Now()
			time.Sleep(initTime)
			initNanos.Store(int64(time.Since(start)))
			return nil
		}})
	check(err)
	testpb.RegisterTestServiceServer(s.Server.GRPC(), nopServer{})
	if gated {
		s.Gate.Require(testpb.TestService_UnaryCall_FullMethodName, comp)
	}
	go func() { _ = s.Run(ctx) }()
	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	check(err)
	return conn, comp, &initNanos
}

func timeCalls(ctx context.Context, c testpb.TestServiceClient, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		start := time.Now()
		_, err := c.UnaryCall(ctx, &testpb.SimpleRequest{})
		check(err)
		out[i] = time.Since(start)
	}
	return out
}

func mb(kb int64) string { return fmt.Sprintf("%.1f MB", float64(kb)/1024) }

// footprint builds lazytestsvc (no race detector) and reads its VmRSS.
func footprint(coordAddr, dir string) (dormant, active, after int64) {
	bin := filepath.Join(dir, "lazytestsvc")
	build := exec.Command("go", "build", "-o", bin, "github.com/tradsys/mesh/tests/lazy/lazytestsvc")
	build.Stderr = os.Stderr
	check(build.Run())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "--listen", addr, "--admin-listen", "", "--coordinator", coordAddr,
		"--component", "heavy", "--init-delay", "0s", "--init-alloc", "64MiB", "--memory", "64MiB", "--log-level", "error")
	check(cmd.Start())
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	check(err)
	defer conn.Close()
	for {
		resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // let start-up garbage settle
	dormant = rss(cmd.Process.Pid)
	_, err = testpb.NewTestServiceClient(conn).UnaryCall(context.Background(), &testpb.SimpleRequest{})
	check(err)
	active = rss(cmd.Process.Pid)
	_, err = lifecyclev1.NewLifecycleServiceClient(conn).Deactivate(context.Background(), &lifecyclev1.DeactivateRequest{Component: "heavy"})
	check(err)
	time.Sleep(500 * time.Millisecond)
	after = rss(cmd.Process.Pid)
	return dormant, active, after
}

// rss is process pid's resident set in KiB.
func rss(pid int) int64 {
	n, err := procstat.RSS(pid)
	check(err)
	return n >> 10
}
