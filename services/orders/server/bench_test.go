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
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	matchingserver "github.com/tradsys/mesh/services/matching/server"
	"github.com/tradsys/mesh/services/orders/orderstest"
	"github.com/tradsys/mesh/services/orders/server"
	riskserver "github.com/tradsys/mesh/services/risk/server"
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
		hc := healthpb.NewHealthClient(m.Orders.Conn)
		var seq atomic.Uint64
		submit := func(rng *rand.Rand, client int) error {
			side, price := ordersv1.Side_SIDE_BUY, fmt.Sprintf("100.%02d", rng.IntN(10))
			if rng.IntN(2) == 0 {
				side, price = ordersv1.Side_SIDE_SELL, fmt.Sprintf("99.%02d", 95+rng.IntN(5))
			}
			resp, err := m.OrderService.SubmitOrder(context.Background(), &ordersv1.SubmitOrderRequest{
				Account: fmt.Sprintf("acct%d", client), ClientOrderId: fmt.Sprint("c", seq.Add(1)), Symbol: "BENCH",
				Side: side, Type: ordersv1.OrderType_ORDER_TYPE_LIMIT, Price: price, Quantity: fmt.Sprintf("0.%03d", 1+rng.IntN(9))})
			if err == nil && resp.GetOrder().GetStatus() == ordersv1.OrderStatus_ORDER_STATUS_REJECTED {
				err = fmt.Errorf("rejected: %v", resp.GetOrder().GetRejectReasons())
			}
			return err
		}
		if err := submit(rand.New(rand.NewPCG(1, 1)), 0); err != nil { // activate everything first
			b.Fatal(err)
		}
		for _, conc := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("fsync=%v/stream=%v/clients=%d", !nofsync, mode.stream, conc), func(b *testing.B) {
				var orderRate, noopRate []float64
				var orderCPU, noopCPU time.Duration
				h := &latency.Histogram{}
				for _, n := range splitRounds(b.N) {
					c0 := cpuTime()
					r, err := run(n, conc, h, submit)
					if err != nil {
						b.Fatal(err)
					}
					orderRate = append(orderRate, r)
					c1 := cpuTime()
					r, err = run(n, conc, nil, func(*rand.Rand, int) error {
						_, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{})
						return err
					})
					if err != nil {
						b.Fatal(err)
					}
					noopRate = append(noopRate, r)
					orderCPU, noopCPU = orderCPU+c1-c0, noopCPU+cpuTime()-c1
				}
				rate, noop := median(orderRate), median(noopRate)
				// CPU per call (the whole process: client, orders, risk,
				// matching, the coordinator): what the rate ratio tends to
				// when the machine's cores are the limit, and steadier
				// than the rates on a shared machine.
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
