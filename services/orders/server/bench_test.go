package server_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/latency"
	"github.com/tradsys/mesh/pkg/muxstream"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	matchingserver "github.com/tradsys/mesh/services/matching/server"
	"github.com/tradsys/mesh/services/orders/orderstest"
	"github.com/tradsys/mesh/services/orders/server"
	riskserver "github.com/tradsys/mesh/services/risk/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// BenchmarkE2ESubmitOrder is SubmitOrder end to end: client -> orders
// (durable store, fsync) -> risk (five leased validators) -> matching
// (journal, fsync) -> orders (outcome, fsync) -> client, every hop real gRPC
// over loopback TCP, each service with its real coordinator session. The
// denominator is a no-op unary call (health Check on the orders server),
// measured in the same run, interleaved with the orders.
//
//	cd services/orders && go test -run '^$' -bench E2ESubmitOrder -benchtime 3000x ./server/
//
// How orders enter orders (the entry= level; none: unary):
//   - unary: a SubmitOrder call each, clients calls in flight.
//   - entry=stream: each client its own SubmitOrders stream (a trader's
//     session), one order in flight on it at a time: the same orders in
//     flight as unary at the same clients, so the two compare the entry
//     alone.
//   - entry=shared: every client on one SubmitOrders stream, shared by id
//     (pkg/muxstream, as the gateway places its sessions' orders): one
//     session with clients orders in flight, pipelined.
func BenchmarkE2ESubmitOrder(b *testing.B) {
	for _, mode := range []struct{ nofsync, stream bool }{{false, false}, {false, true}, {true, false}, {true, true}} {
		nofsync := mode.nofsync
		m := orderstest.Start(b, orderstest.Config{
			Risk: func(o *riskserver.Options) { o.Defaults.OrdersPerSecond, o.Defaults.OrderBurst = 1e6, 1e6 },
			Orders: func(o *server.Options) {
				o.NoFsync, o.Store.IdleTimeout, o.StreamSubmits, o.StreamRisk = nofsync, -1, mode.stream, mode.stream
			},
			Matching: func(o *matchingserver.Options) { o.NoFsync, o.Engine.IdleTimeout = nofsync, -1 },
		})
		m.Instrument(b, "BENCH", "0.01", "0.001")
		benchEntries(b, m.OrderService, healthpb.NewHealthClient(m.Orders.Conn), cpuTime, func(entry string, conc int) string {
			if entry == "unary" {
				return fmt.Sprintf("fsync=%v/stream=%v/clients=%d", !nofsync, mode.stream, conc) // the names before streamed entry
			}
			return fmt.Sprintf("fsync=%v/stream=%v/entry=%s/clients=%d", !nofsync, mode.stream, entry, conc)
		})
	}
}

// benchEntries measures the order path behind oc with each entry (unary,
// stream, shared) at 1, 16 and 64 clients, against the no-op hc.Check in
// the same rounds; cpu is the CPU time of every process on the path.
func benchEntries(b *testing.B, oc ordersv1.OrderServiceClient, hc healthpb.HealthClient, cpu func() time.Duration, name func(entry string, conc int) string) {
	var seq atomic.Uint64
	order := func(rng *rand.Rand, client int) *ordersv1.SubmitOrderRequest {
		// A client buys and sells from two accounts: one account on
		// both sides would cross itself, and self-trade prevention
		// would cancel its resting orders instead of trading.
		side, price, account := ordersv1.Side_SIDE_BUY, fmt.Sprintf("100.%02d", rng.IntN(10)), fmt.Sprintf("buyer%d", client)
		if rng.IntN(2) == 0 {
			side, price, account = ordersv1.Side_SIDE_SELL, fmt.Sprintf("99.%02d", 95+rng.IntN(5)), fmt.Sprintf("seller%d", client)
		}
		return &ordersv1.SubmitOrderRequest{
			Account: account, ClientOrderId: fmt.Sprint("c", seq.Add(1)), Symbol: "BENCH",
			Side: side, Type: ordersv1.OrderType_ORDER_TYPE_LIMIT, Price: price, Quantity: fmt.Sprintf("0.%03d", 1+rng.IntN(9))}
	}
	placed := func(resp *ordersv1.SubmitOrderResponse, err error) error {
		if err == nil && resp.GetOrder().GetStatus() == ordersv1.OrderStatus_ORDER_STATUS_REJECTED {
			err = fmt.Errorf("rejected: %v", resp.GetOrder().GetRejectReasons())
		}
		return err
	}
	unary := func(rng *rand.Rand, client int) error {
		return placed(oc.SubmitOrder(context.Background(), order(rng, client)))
	}
	if err := unary(rand.New(rand.NewPCG(1, 1)), 0); err != nil { // activate everything first
		b.Fatal(err)
	}
	for _, entry := range []string{"unary", "stream", "shared"} {
		for _, conc := range []int{1, 16, 64} {
			if entry == "shared" && conc == 1 {
				continue // entry=stream/clients=1
			}
			b.Run(name(entry, conc), func(b *testing.B) {
				submit := unary
				switch entry {
				case "stream":
					submit = perClientStreams(b, oc, conc, order, placed)
				case "shared":
					submit = sharedStream(b, oc, order, placed)
				}
				var orderRate, noopRate []float64
				var orderCPU, noopCPU time.Duration
				h := &latency.Histogram{}
				for _, n := range splitRounds(b.N) {
					c0 := cpu()
					r, err := run(n, conc, h, submit)
					if err != nil {
						b.Fatal(err)
					}
					orderRate = append(orderRate, r)
					c1 := cpu()
					r, err = run(n, conc, nil, func(*rand.Rand, int) error {
						_, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{})
						return err
					})
					if err != nil {
						b.Fatal(err)
					}
					noopRate = append(noopRate, r)
					orderCPU, noopCPU = orderCPU+c1-c0, noopCPU+cpu()-c1
				}
				rate, noop := median(orderRate), median(noopRate)
				// CPU per call (every process of the path: client, orders,
				// risk, matching, the coordinator): what the rate ratio
				// tends to when the machine's cores are the limit, and
				// steadier than the rates on a shared machine.
				b.ReportMetric(float64(orderCPU.Microseconds())/float64(b.N), "cpu-µs/order")
				b.ReportMetric(float64(noopCPU.Microseconds())/float64(b.N), "cpu-µs/noop")
				b.ReportMetric(rate, "orders/s")
				b.ReportMetric(float64(h.Quantile(0.50).Microseconds()), "p50-µs")
				b.ReportMetric(float64(h.Quantile(0.99).Microseconds()), "p99-µs")
				b.ReportMetric(noop, "noop/s")
				b.ReportMetric(rate/noop, "ratio")
			})
		}
	}
}

type (
	orderFor  func(rng *rand.Rand, client int) *ordersv1.SubmitOrderRequest
	checkFunc func(*ordersv1.SubmitOrderResponse, error) error
)

// perClientStreams is a submit over one SubmitOrders stream per client
// (run's goroutine g is client g and alone on its stream), each order sent
// and its answer awaited; the streams end with the benchmark.
func perClientStreams(b *testing.B, oc ordersv1.OrderServiceClient, clients int, order orderFor, placed checkFunc) func(*rand.Rand, int) error {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	streams := make([]grpc.BidiStreamingClient[ordersv1.SubmitOrdersRequest, ordersv1.SubmitOrdersResponse], clients)
	for i := range streams {
		st, err := oc.SubmitOrders(ctx)
		if err != nil {
			b.Fatal(err)
		}
		streams[i] = st
	}
	return func(rng *rand.Rand, client int) error {
		st := streams[client]
		if err := st.Send(&ordersv1.SubmitOrdersRequest{RequestId: 1, Order: order(rng, client)}); err != nil {
			return err
		}
		resp, err := st.Recv()
		if err != nil {
			return err
		}
		return placed(answer(resp))
	}
}

// sharedStream is a submit over one SubmitOrders stream shared by every
// client, each order matched to its answer by id.
func sharedStream(b *testing.B, oc ordersv1.OrderServiceClient, order orderFor, placed checkFunc) func(*rand.Rand, int) error {
	s := muxstream.New(oc.SubmitOrders, (*ordersv1.SubmitOrdersResponse).GetRequestId, 0)
	b.Cleanup(s.Close)
	var ids atomic.Uint64
	return func(rng *rand.Rand, client int) error {
		id := ids.Add(1)
		resp, err := s.Call(context.Background(), id, &ordersv1.SubmitOrdersRequest{RequestId: id, Order: order(rng, client)})
		if err != nil {
			return err
		}
		return placed(answer(resp))
	}
}

// answer is a SubmitOrders answer as SubmitOrder's.
func answer(resp *ordersv1.SubmitOrdersResponse) (*ordersv1.SubmitOrderResponse, error) {
	if e := resp.GetError(); e != nil {
		return nil, fmt.Errorf("%v: %s", codes.Code(e.GetCode()), e.GetMessage())
	}
	return resp.GetSubmitted(), nil
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(v []float64) float64 {
	sort.Float64s(v)
	return v[len(v)/2]
}

// splitRounds splits n calls into up to 5 alternating rounds.
func splitRounds(n int) []int {
	k := min(5, n)
	out := make([]int, k)
	for i := range out {
		out[i] = n / k
	}
	out[k-1] += n % k
	return out
}

// run makes n calls of fn over conc goroutines; it returns calls/s and
// records each call's latency in h (when set).
func run(n, conc int, h *latency.Histogram, fn func(rng *rand.Rand, client int) error) (float64, error) {
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for g := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			lat := make([]int64, 0, n/conc+1)
			for next.Add(1) <= int64(n) {
				t0 := time.Now()
				if err := fn(rng, g); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				lat = append(lat, int64(time.Since(t0)))
			}
			if h != nil {
				h.RecordAll(lat)
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
