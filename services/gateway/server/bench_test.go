package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gatewayv1 "github.com/tradsys/mesh/proto/tradsys/gateway/v1"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	riskv1 "github.com/tradsys/mesh/proto/tradsys/risk/v1"
	"github.com/tradsys/mesh/services/gateway/server"
)

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

// BenchmarkWebSocketFanout: 1,000 WebSocket clients (in the same process)
// subscribed to one symbol's trades; each iteration makes 10 trades on
// matching (10,000 frames) and waits until every client has them.
// Reported: frames delivered per second to all clients, and the delivery
// latency from the gateway encoding a frame to a client having read it.
func BenchmarkWebSocketFanout(b *testing.B) {
	const subscribers, perCross = 1000, 10
	sessionTTL = time.Minute
	defer func() { sessionTTL = 5 * time.Second }()
	m := startMesh(b, func(o *server.Options) { o.Hub.SendBuffer, o.Hub.WriteTimeout = 4096, 30*time.Second })
	var (
		delivered atomic.Int64
		mu        sync.Mutex
		lat       []time.Duration
		ended     = map[string]int{} // why client reads ended early, for the failure message
		perClient = make([]int64, subscribers)
	)
	clients := make([]*client, subscribers)
	for i := range clients {
		clients[i] = m.mustDial(b, keyBench)
		clients[i].send(map[string]any{"id": "s", "type": "subscribe", "channel": "trades", "symbol": symbol})
	}
	for _, c := range clients {
		c.until(30*time.Second, "ack", func(f frame) bool { return f.Type == "ack" })
	}
	ctx, cancel := context.WithCancel(bg)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for {
				_, data, err := c.ws.Read(ctx)
				if err != nil {
					if ctx.Err() == nil {
						mu.Lock()
						ended[err.Error()]++
						mu.Unlock()
					}
					break
				}
				var f struct {
					Type string `json:"type"`
					TS   int64  `json:"ts"`
				}
				if json.Unmarshal(data, &f) == nil && f.Type == "trade" {
					delivered.Add(1)
					perClient[i]++
					if i%10 == 0 { // a tenth of the clients sample latency
						mine = append(mine, time.Duration(time.Now().UnixNano()-f.TS))
					}
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	b.ResetTimer()
	start := time.Now()
	// One burst at a time: the next trades are made once every client has
	// the last ones, so the latency is a burst's delivery, not a backlog.
	deadline := time.Now().Add(120 * time.Second)
	for i := 0; i < b.N; i++ {
		m.cross(b, symbol, uint64(1+i*(perCross+1)), perCross, 10000)
		for delivered.Load() < int64((i+1)*perCross*subscribers) && time.Now().Before(deadline) {
			time.Sleep(200 * time.Microsecond)
		}
	}
	want := int64(b.N * perCross * subscribers)
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	wg.Wait()
	if got := delivered.Load(); got < want {
		short := 0
		for _, n := range perClient {
			if n < int64(b.N*perCross) {
				short++
			}
		}
		b.Fatalf("delivered %d of %d frames in %s (gateway: %+v); %d clients short; reads ended: %v", got, want, elapsed,
			m.gw.Hub.Stats(), short, ended)
	}
	b.ReportMetric(float64(want)/elapsed.Seconds(), "frames/s")
	b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
	if st := m.gw.Hub.Stats(); st.SlowConsumers != 0 {
		b.Fatalf("%d subscribers were disconnected as slow", st.SlowConsumers)
	}
}

// BenchmarkSubmitRoundTrip: one order submit and its answer through the
// gateway over WebSocket and over gRPC (GatewayService), alternating in the
// same run against the same orders, risk and matching. Reported: p50 and
// p99 of each and the WebSocket/gRPC ratio of the p50s.
func BenchmarkSubmitRoundTrip(b *testing.B) {
	sessionTTL = time.Minute
	defer func() { sessionTTL = 5 * time.Second }()
	m := startMesh(b, nil)
	if _, err := m.risk.SetLimits(bg, &riskv1.SetLimitsRequest{Limits: &riskv1.Limits{Account: "4", OrdersPerSecond: 1e6, OrderBurst: 1e6}}); err != nil {
		b.Fatal(err)
	}
	ws := m.mustDial(b, keyBench)
	gw := gatewayv1.NewGatewayServiceClient(dialGRPC(b, m.gwAddr))
	ctx := withKey(keyBench)
	var wsLat, grpcLat []time.Duration
	submitWS := func(i int) {
		id := strconv.Itoa(i)
		t0 := time.Now()
		ws.send(map[string]any{"id": id, "type": "submit", "order": map[string]string{"symbol": symbol, "side": "buy", "price": "50", "quantity": "1"}})
		f := ws.until(10*time.Second, "ack", func(f frame) bool { return f.ID == id })
		wsLat = append(wsLat, time.Since(t0))
		if f.Type != "ack" {
			b.Fatalf("websocket submit: %+v", f)
		}
	}
	submitGRPC := func() {
		t0 := time.Now()
		resp, err := gw.SubmitOrder(ctx, &gatewayv1.SubmitOrderRequest{Symbol: symbol, Side: ordersv1.Side_SIDE_SELL,
			Type: ordersv1.OrderType_ORDER_TYPE_LIMIT, Price: "150", Quantity: "1"})
		grpcLat = append(grpcLat, time.Since(t0))
		if err != nil || resp.GetOrder().GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_ACCEPTED {
			b.Fatalf("grpc submit: %v %v", resp, err)
		}
	}
	for i := range 50 { // warm: connections, components, code paths
		submitWS(-1 - i)
		submitGRPC()
	}
	wsLat, grpcLat = wsLat[:0], grpcLat[:0]
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		submitWS(i)
		submitGRPC()
	}
	b.StopTimer()
	wp50, wp99, gp50, gp99 := percentile(wsLat, .5), percentile(wsLat, .99), percentile(grpcLat, .5), percentile(grpcLat, .99)
	b.ReportMetric(float64(wp50.Microseconds())/1000, "ws-p50-ms")
	b.ReportMetric(float64(wp99.Microseconds())/1000, "ws-p99-ms")
	b.ReportMetric(float64(gp50.Microseconds())/1000, "grpc-p50-ms")
	b.ReportMetric(float64(gp99.Microseconds())/1000, "grpc-p99-ms")
	b.ReportMetric(float64(wp50)/float64(gp50), "ws/grpc-p50")
	fmt.Printf("submit round trip over %d orders each: websocket p50 %s p99 %s; grpc p50 %s p99 %s; websocket/grpc p50 %.2fx, p99 %.2fx\n",
		b.N, wp50, wp99, gp50, gp99, float64(wp50)/float64(gp50), float64(wp99)/float64(gp99))
}
