// Command lazymanybench measures the lazy runtime under many components and
// prints a table; each measure has its baseline in the same run:
//
//   - one process with --components (100) components, each gating its own
//     RPC method: the cold activation overhead (first-call latency minus the
//     component's own Init time) of each in turn and of all at once, against
//     a process with one component; the warm gate overhead of a call through
//     one of the 100 gates, against an ungated call on the same server and
//     the gate of the one-component process;
//   - the coordinator's registry with --registry (10,000) components:
//     RegisterComponent through the real coordinator against raw etcd puts
//     of the same records on the same etcd, and ListComponents as the
//     registry grows.
//
// The coordinator is real (embedded etcd with fsync); services run in this
// process over loopback TCP.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/tradsys/mesh/pkg/grpcserver"
	"github.com/tradsys/mesh/pkg/lazy"
	"github.com/tradsys/mesh/pkg/service"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coord"
	"github.com/tradsys/mesh/services/coordinator/server"
	"github.com/tradsys/mesh/tests/internal/benchkit"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
)

func main() {
	nComps := flag.Int("components", 100, "components in the one process")
	nReg := flag.Int("registry", 10000, "components registered with the coordinator")
	rounds := flag.Int("rounds", 2, "cold activation rounds over all components (and all-at-once rounds)")
	warm := flag.Int("warm-calls", 5000, "warm calls per kind")
	clients := flag.Int("clients", 64, "concurrent registering clients")
	initTime := flag.Duration("init", 2*time.Millisecond, "each component's own Init time")
	flag.Parse()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "lazymanybench")
	check(err)
	defer os.RemoveAll(dir)

	r, err := benchkit.StartCoordinator(ctx, dir)
	check(err)
	defer r.Stop()

	one := startService(ctx, r.Addr(), "one", 1, *initTime)
	many := startService(ctx, r.Addr(), "many", *nComps, *initTime)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "measurement\tp50\tp99\tnote\t\n")

	// Cold, one at a time: the one-component process cycles its component
	// as often as the many-component process activates one of its own.
	progress("cold activations, one component")
	var coldOne []time.Duration
	for i := 0; i < *rounds**nComps; i++ {
		coldOne = append(coldOne, one.cold(ctx, 0))
		check(one.comps[0].Deactivate(ctx, "bench"))
	}
	progress("cold activations, each of %d in turn", *nComps)
	var coldMany []time.Duration
	for round := 0; round < *rounds; round++ {
		for i := range many.comps {
			coldMany = append(coldMany, many.cold(ctx, i))
		}
		many.deactivateAll(ctx)
	}
	fmt.Fprintf(tw, "cold activation overhead, 1 component\t%s\t%s\t%d cycles, Init %s (baseline)\t\n",
		benchkit.PctString(coldOne, 50), benchkit.PctString(coldOne, 99), len(coldOne), *initTime)
	fmt.Fprintf(tw, "cold activation overhead, each of %d in turn\t%s\t%s\t%d activations; p50 %.2fx the baseline\t\n",
		*nComps, benchkit.PctString(coldMany, 50), benchkit.PctString(coldMany, 99), len(coldMany), ratio(coldMany, coldOne))

	progress("cold activations, all %d at once", *nComps)
	var burst []time.Duration
	var walls []time.Duration
	for round := 0; round < *rounds; round++ {
		lat := make([]time.Duration, len(many.comps))
		start := time.Now()
		var wg sync.WaitGroup
		for i := range many.comps {
			wg.Add(1)
			go func() { defer wg.Done(); lat[i] = many.cold(ctx, i) }()
		}
		wg.Wait()
		walls = append(walls, time.Since(start))
		burst = append(burst, lat...)
		many.deactivateAll(ctx)
	}
	fmt.Fprintf(tw, "cold activation overhead, all %d at once\t%s\t%s\tall active after %s (median of %d rounds)\t\n",
		*nComps, benchkit.PctString(burst, 50), benchkit.PctString(burst, 99), benchkit.Pct(walls, 50).Round(time.Microsecond), len(walls))

	progress("warm calls")
	for i := range many.comps {
		many.call(ctx, i) // all active again
	}
	one.call(ctx, 0)
	var gatedMany, gatedSame, plain, gatedOne []time.Duration
	kinds := []func(i int){
		func(i int) { gatedMany = append(gatedMany, many.call(ctx, i%len(many.comps))) },
		func(int) { gatedSame = append(gatedSame, many.call(ctx, 0)) },
		func(int) { plain = append(plain, many.callPlain(ctx)) },
		func(int) { gatedOne = append(gatedOne, one.call(ctx, 0)) },
	}
	// A fresh random order each round: a call that follows a call to the
	// other process is slower (another connection, other goroutines to
	// wake), and a fixed rotation would hand that cost to some kinds only.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < *warm; i++ {
		for _, k := range rng.Perm(len(kinds)) {
			kinds[k](i)
		}
	}
	fmt.Fprintf(tw, "warm call, ungated, same server\t%s\t%s\t%d calls (baseline)\t\n", benchkit.PctString(plain, 50), benchkit.PctString(plain, 99), len(plain))
	fmt.Fprintf(tw, "warm call, gated, 1 component\t%s\t%s\t%d calls; p50 %.3fx ungated\t\n",
		benchkit.PctString(gatedOne, 50), benchkit.PctString(gatedOne, 99), len(gatedOne), ratio(gatedOne, plain))
	fmt.Fprintf(tw, "warm call, gated, always the first of %d\t%s\t%s\t%d calls; p50 %.3fx ungated\t\n",
		*nComps, benchkit.PctString(gatedSame, 50), benchkit.PctString(gatedSame, 99), len(gatedSame), ratio(gatedSame, plain))
	fmt.Fprintf(tw, "warm call, gated, each of %d in turn\t%s\t%s\t%d calls; p50 %.3fx ungated, %.3fx 1 component\t\n",
		*nComps, benchkit.PctString(gatedMany, 50), benchkit.PctString(gatedMany, 99), len(gatedMany), ratio(gatedMany, plain), ratio(gatedMany, gatedOne))
	tw.Flush()

	registry(ctx, r, *nReg, *clients)
}

// registry measures the coordinator's registry as it grows to n entries.
func registry(ctx context.Context, r *server.Running, n, clients int) {
	conn, err := grpc.NewClient(r.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	check(err)
	defer conn.Close()
	c := coordinatorv1.NewCoordinatorServiceClient(conn)
	cli, err := clientv3.New(clientv3.Config{Endpoints: r.EtcdEndpoints()})
	check(err)
	defer cli.Close()

	// Chains of ten: each component depends on the one before it, so every
	// registration runs the cycle check over a real path.
	req := func(i int) *coordinatorv1.RegisterComponentRequest {
		rq := &coordinatorv1.RegisterComponentRequest{Name: fmt.Sprintf("registry/bench/c%05d", i), Endpoint: "127.0.0.1:7999",
			MemoryBytes: 50 << 20, InitTimeout: durationpb.New(30 * time.Second), IdleTimeout: durationpb.New(5 * time.Minute)}
		if i%10 != 0 {
			rq.Dependencies = []string{fmt.Sprintf("registry/bench/c%05d", i-1)}
		}
		return rq
	}
	// The baseline writes the record the registry writes for one entry.
	rq := req(1)
	record, _ := json.Marshal(coord.Component{Name: rq.Name, Endpoint: rq.Endpoint, MemoryBytes: rq.MemoryBytes,
		Priority: coord.DefaultPriority, Dependencies: rq.Dependencies, InitTimeout: 30 * time.Second, IdleTimeout: 5 * time.Minute,
		State: coord.StateDormant, DesiredState: coord.StateDormant, StateChangedAt: time.Now()})

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "registry\tentries\tops/s or p50\tetcd baseline\tratio\tnote\t\n")
	listAll := func(entries int) {
		var lat []time.Duration
		var size int
		for range 20 {
			start := time.Now()
			resp, err := c.ListComponents(ctx, &coordinatorv1.ListComponentsRequest{})
			lat = append(lat, time.Since(start))
			check(err)
			if len(resp.GetComponents()) < entries {
				check(fmt.Errorf("ListComponents: %d entries, want at least %d", len(resp.GetComponents()), entries))
			}
			size = proto.Size(resp)
		}
		p50 := benchkit.Pct(lat, 50)
		fmt.Fprintf(tw, "ListComponents, all\t%d\t%s\t\t\t%d bytes, %s per entry\t\n", entries, p50.Round(time.Microsecond),
			size, (p50 / time.Duration(entries)).Round(time.Nanosecond))
	}
	done := 0
	register := func(to, workers int) {
		progress("RegisterComponent %d..%d, %d clients (and etcd puts of the same records)", done, to, workers)
		from := done
		base := parallel(from, to, workers, func(i int) error {
			_, err := cli.Put(ctx, fmt.Sprintf("/bench/registry/c%05d", i), string(record))
			return err
		})
		lat := make([]time.Duration, to)
		ours := parallel(from, to, workers, func(i int) error {
			start := time.Now()
			_, err := c.RegisterComponent(ctx, req(i))
			lat[i] = time.Since(start)
			return err
		})
		done = to
		fmt.Fprintf(tw, "RegisterComponent, %d clients\t%d..%d\t%.0f/s\t%.0f/s\t%.2fx\tp50 %s, p99 %s\t\n", workers, from, to, ours, base,
			ours/base, benchkit.PctString(lat[from:to], 50), benchkit.PctString(lat[from:to], 99))
	}
	// The first hundred alone (the latency of one), then the registry grows
	// tenfold at a time up to n under concurrent clients.
	for _, to := range []int{100, 1000, n} {
		if to <= done || to > n {
			continue
		}
		workers := clients
		if to == 100 {
			workers = 1
		}
		register(to, workers)
		listAll(to)
	}
	var one []time.Duration
	for range 200 {
		start := time.Now()
		_, err := c.ListComponents(ctx, &coordinatorv1.ListComponentsRequest{Name: "registry/bench/c00042"})
		one = append(one, time.Since(start))
		check(err)
	}
	fmt.Fprintf(tw, "ListComponents, one by name\t%d\t%s\t\t\tp99 %s\t\n", n, benchkit.PctString(one, 50), benchkit.PctString(one, 99))
	tw.Flush()
}

// parallel runs op for every i in [from, to) on workers goroutines and
// returns operations per second.
func parallel(from, to, workers int, op func(i int) error) float64 {
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= to {
					return
				}
				check(op(i))
			}
		}()
	}
	wg.Wait()
	return float64(to-from) / time.Since(start).Seconds()
}

// benchService is an in-process service whose components each gate one
// method of a service built at run time (no proto needed: Empty in and
// out), plus one ungated method.
type benchService struct {
	conn      *grpc.ClientConn
	comps     []*lazy.Component
	methods   []string
	plain     string
	initNanos []atomic.Int64
}

func startService(ctx context.Context, coordAddr, name string, n int, initTime time.Duration) *benchService {
	s, err := service.New(service.Config{Name: name}, service.Options{
		Coordinator: coordAddr, Flags: grpcserver.Flags{Listen: "127.0.0.1:0", ShutdownTimeout: time.Second, LogLevel: "error"},
	})
	check(err)
	b := &benchService{initNanos: make([]atomic.Int64, n)}
	svcName := "tradsys.bench.v1." + name
	desc := grpc.ServiceDesc{ServiceName: svcName, HandlerType: (*any)(nil), Metadata: "lazymanybench"}
	method := func(m string) {
		full := "/" + svcName + "/" + m
		desc.Methods = append(desc.Methods, grpc.MethodDesc{MethodName: m,
			Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
				in := new(emptypb.Empty)
				if err := dec(in); err != nil {
					return nil, err
				}
				h := func(context.Context, any) (any, error) { return in, nil }
				if ic == nil {
					return h(ctx, in)
				}
				return ic(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: full}, h)
			}})
	}
	for i := range n {
		k := i
		comp, err := s.Runtime.Add(lazy.Spec{Name: fmt.Sprintf("%s/bench/c%03d", name, i), MemoryBytes: 1 << 20, IdleTimeout: -1,
			Init: func(context.Context) error {
				start := time.Now()
				time.Sleep(initTime)
				b.initNanos[k].Store(int64(time.Since(start)))
				return nil
			}})
		check(err)
		m := fmt.Sprintf("C%03d", i)
		method(m)
		b.comps = append(b.comps, comp)
		b.methods = append(b.methods, "/"+svcName+"/"+m)
		s.Gate.Require(b.methods[i], comp)
	}
	method("Plain")
	b.plain = "/" + svcName + "/Plain"
	s.Server.GRPC().RegisterService(&desc, struct{}{})
	go func() { _ = s.Run(ctx) }()
	b.conn, err = grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	check(err)
	return b
}

func (b *benchService) invoke(ctx context.Context, method string) time.Duration {
	start := time.Now()
	check(b.conn.Invoke(ctx, method, &emptypb.Empty{}, &emptypb.Empty{}))
	return time.Since(start)
}

// call is a call through component i's gate.
func (b *benchService) call(ctx context.Context, i int) time.Duration {
	return b.invoke(ctx, b.methods[i])
}

func (b *benchService) callPlain(ctx context.Context) time.Duration { return b.invoke(ctx, b.plain) }

// cold is the first call to dormant component i, less its Init time.
func (b *benchService) cold(ctx context.Context, i int) time.Duration {
	lat := b.call(ctx, i)
	return lat - time.Duration(b.initNanos[i].Load())
}

func (b *benchService) deactivateAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, c := range b.comps {
		wg.Add(1)
		go func() { defer wg.Done(); check(c.Deactivate(ctx, "bench")) }()
	}
	wg.Wait()
}

func check(err error) { benchkit.Check("lazymanybench", err) }

func progress(format string, args ...any) { fmt.Fprintf(os.Stderr, "... "+format+"\n", args...) }

func ratio(a, b []time.Duration) float64 {
	return float64(benchkit.Pct(a, 50)) / float64(benchkit.Pct(b, 50))
}
