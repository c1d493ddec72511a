package server_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/latency"
	"github.com/tradsys/mesh/pkg/lazy"
	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"github.com/tradsys/mesh/services/matching/server"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

// End-to-end benchmarks: real gRPC on loopback TCP, the full interceptor
// chain, the lazy gate, the engine and the journal (fsync on unless
// -matchbench.nofsync). Each benchmark also measures a no-op call on the
// same server in the same run (health Check for unary; an echoing
// FullDuplexCall for streams) and reports orders/s as a ratio of it.
//
// Latency is per order, from just before the client sends it to its
// answer, in a log-linear histogram (1/64 resolution).

var benchDir = os.Getenv("MATCHBENCH_DIR") // where journals go (default: a temp dir)

// rounds splits n calls into up to 10 rounds.
func rounds(n int) []int {
	k := min(10, n)
	out := make([]int, k)
	for i := range out {
		out[i] = n / k
	}
	out[k-1] += n % k
	return out
}

// echo is the no-op streaming service registered beside MatchingService.
type echo struct {
	testpb.UnimplementedTestServiceServer
}

func (echo) FullDuplexCall(s testpb.TestService_FullDuplexCallServer) error {
	for {
		m, err := s.Recv()
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if err := s.Send(&testpb.StreamingOutputCallResponse{Payload: m.GetPayload()}); err != nil {
			return err
		}
	}
}

func benchEnv(b *testing.B, nofsync bool) *env {
	r, cc := coordtest.Start(b, coordtest.Config{})
	dir := b.TempDir()
	if benchDir != "" {
		d, err := os.MkdirTemp(benchDir, "matchbench")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(d) })
		dir = d
	}
	e := startEnvOn(b, r.Addr(), cc, server.Options{DataDir: dir, NoFsync: nofsync, Engine: lazy.Settings{IdleTimeout: -1}},
		func(g *grpc.Server) { testpb.RegisterTestServiceServer(g, echo{}) })
	// Activate first: the benchmark measures the active service.
	if _, err := e.mc.SubmitOrder(bg, limit("WARM", 1, buy, 1, 1)); err != nil {
		b.Fatal(err)
	}
	return e
}

var orderID atomic.Uint64

// order is a limit order around a fixed mid: about half cross, so the
// book stays bounded and trades happen.
func order(rng *rand.Rand) *matchingv1.SubmitOrderRequest {
	id := orderID.Add(1) + 10
	side, price := buy, int64(1000-rng.IntN(10))
	if rng.IntN(2) == 0 {
		side, price = sell, int64(995+rng.IntN(10))
	}
	return &matchingv1.SubmitOrderRequest{Symbol: "BENCH", OrderId: id, Account: id % 1000, Side: side,
		Type: matchingv1.OrderType_ORDER_TYPE_LIMIT, Price: price, Quantity: int64(1 + rng.IntN(10))}
}

// parallel runs n calls of fn over conc goroutines and returns calls/s and
// the latency histogram.
func parallel(n, conc int, fn func(rng *rand.Rand) error) (float64, *latency.Histogram, error) {
	h := &latency.Histogram{}
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for g := 0; g < conc; g++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 7))
			lat := make([]int64, 0, n/conc+1)
			for next.Add(1) <= int64(n) {
				t0 := time.Now()
				if err := fn(rng); err != nil {
					firstErr.CompareAndSwap(nil, err)
					break
				}
				lat = append(lat, int64(time.Since(t0)))
			}
			h.RecordAll(lat)
		}(uint64(g))
	}
	wg.Wait()
	el := time.Since(start)
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, nil, err
	}
	return float64(n) / el.Seconds(), h, nil
}

func report(b *testing.B, rate float64, h *latency.Histogram, noop float64) {
	b.ReportMetric(rate, "orders/s")
	b.ReportMetric(float64(h.Quantile(0.50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(h.Quantile(0.99).Microseconds()), "p99-µs")
	b.ReportMetric(noop, "noop/s")
	b.ReportMetric(rate/noop, "ratio")
}

func BenchmarkE2ESubmitOrder(b *testing.B) {
	for _, nofsync := range []bool{false, true} {
		e := benchEnv(b, nofsync)
		hc := healthpb.NewHealthClient(e.conn)
		for _, conc := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("fsync=%v/conc=%d", !nofsync, conc), func(b *testing.B) {
				// Interleave no-op and order rounds so both see the same
				// machine (it is shared): the ratio is what matters.
				var noopT, orderT time.Duration
				h := &latency.Histogram{}
				b.ResetTimer()
				for _, n := range rounds(b.N) {
					b.StopTimer()
					t0 := time.Now()
					if _, _, err := parallel(n, conc, func(*rand.Rand) error {
						_, err := hc.Check(bg, &healthpb.HealthCheckRequest{})
						return err
					}); err != nil {
						b.Fatal(err)
					}
					noopT += time.Since(t0)
					b.StartTimer()
					t0 = time.Now()
					_, rh, err := parallel(n, conc, func(rng *rand.Rand) error {
						_, err := e.mc.SubmitOrder(bg, order(rng))
						return err
					})
					if err != nil {
						b.Fatal(err)
					}
					orderT += time.Since(t0)
					h.Merge(rh)
				}
				rate, noop := float64(b.N)/orderT.Seconds(), float64(b.N)/noopT.Seconds()
				report(b, rate, h, noop)
			})
		}
	}
}

// pipeline sends n messages on one stream with up to window in flight and
// returns messages/s and per-message latency.
func pipeline(n, window int, send func(i int) error, recv func() error) (float64, *latency.Histogram, error) {
	sent := make([]time.Time, n)
	lat := make([]int64, 0, n)
	credits := make(chan struct{}, window)
	errc := make(chan error, 1)
	start := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			credits <- struct{}{}
			sent[i] = time.Now()
			if err := send(i); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i := 0; i < n; i++ {
		if err := recv(); err != nil {
			return 0, nil, err
		}
		lat = append(lat, int64(time.Since(sent[i])))
		<-credits
	}
	if err := <-errc; err != nil {
		return 0, nil, err
	}
	el := time.Since(start)
	h := &latency.Histogram{}
	h.RecordAll(lat)
	return float64(n) / el.Seconds(), h, nil
}

func BenchmarkE2ESubmitOrdersStream(b *testing.B) {
	for _, nofsync := range []bool{false, true} {
		e := benchEnv(b, nofsync)
		tc := testpb.NewTestServiceClient(e.conn)
		for _, window := range []int{1, 64, 512} {
			b.Run(fmt.Sprintf("fsync=%v/window=%d", !nofsync, window), func(b *testing.B) {
				ctx, cancel := context.WithCancel(bg)
				defer cancel()
				es, err := tc.FullDuplexCall(ctx)
				if err != nil {
					b.Fatal(err)
				}
				payload := &testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: make([]byte, 40)}}
				ms, err := e.mc.SubmitOrders(ctx)
				if err != nil {
					b.Fatal(err)
				}
				rng := rand.New(rand.NewPCG(uint64(window), 3))
				reqs := make([]*matchingv1.SubmitOrdersRequest, b.N)
				for i := range reqs {
					reqs[i] = &matchingv1.SubmitOrdersRequest{Order: order(rng)}
				}
				var noopT, orderT time.Duration
				h := &latency.Histogram{}
				done := 0
				b.ResetTimer()
				for _, n := range rounds(b.N) {
					b.StopTimer()
					t0 := time.Now()
					if _, _, err := pipeline(n, window, func(int) error { return es.Send(payload) },
						func() error { _, err := es.Recv(); return err }); err != nil {
						b.Fatal(err)
					}
					noopT += time.Since(t0)
					b.StartTimer()
					t0 = time.Now()
					_, rh, err := pipeline(n, window, func(i int) error { return ms.Send(reqs[done+i]) },
						func() error {
							m, err := ms.Recv()
							if err == nil && m.GetRejection() != nil {
								err = fmt.Errorf("rejected: %v", m.GetRejection())
							}
							return err
						})
					if err != nil {
						b.Fatal(err)
					}
					orderT += time.Since(t0)
					done += n
					h.Merge(rh)
				}
				_ = es.CloseSend()
				rate, noop := float64(b.N)/orderT.Seconds(), float64(b.N)/noopT.Seconds()
				_ = ms.CloseSend()
				report(b, rate, h, noop)
			})
		}
	}
}
