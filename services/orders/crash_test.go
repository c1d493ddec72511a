package main_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/fixed"
	"github.com/tradsys/mesh/pkg/proctest"
	"github.com/tradsys/mesh/pkg/service"
	"github.com/tradsys/mesh/pkg/service/servicetest"
	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	riskserver "github.com/tradsys/mesh/services/risk/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

var ordersBin, matchingBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "orderstest")
	if err != nil {
		panic(err)
	}
	if ordersBin, err = proctest.Build(dir, "tradsys-orders", "."); err != nil {
		panic("build orders: " + err.Error())
	}
	if matchingBin, err = proctest.Build(dir, "tradsys-matching", "../matching"); err != nil {
		panic("build matching: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// crashMesh is coordinator (in-process etcd), matching and orders as real
// processes, risk in-process: the processes a test kills are real.
type crashMesh struct {
	coord               string
	matching, orders    *proctest.Proc
	matchingDir         string
	ordersDir           string
	riskAddr            string
	matchingAddr, oAddr string
	// Connections that outlive the processes (they reconnect).
	ordersConn, matchingConn *grpc.ClientConn
}

func startCrashMesh(t *testing.T) *crashMesh {
	coord, _ := coordtest.Start(t, coordtest.Config{})
	c := &crashMesh{coord: coord.Addr(), matchingDir: t.TempDir(), ordersDir: t.TempDir()}
	c.startMatching(t)
	risk := servicetest.Start(t, "risk", c.coord, 0, func(ctx context.Context, s *service.Service) error {
		o := riskserver.Defaults()
		o.DataDir, o.Matching = t.TempDir(), c.matchingAddr
		_, err := riskserver.Setup(ctx, s, o)
		return err
	})
	c.riskAddr = risk.Addr()
	c.startOrders(t)
	var err error
	if c.ordersConn, err = grpc.NewClient(c.oAddr, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		t.Fatal(err)
	}
	if c.matchingConn, err = grpc.NewClient(c.matchingAddr, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.ordersConn.Close(); c.matchingConn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.oc().CreateInstrument(ctx, &ordersv1.CreateInstrumentRequest{Instrument: &ordersv1.Instrument{
		Symbol: "BTC-USD", TickSize: "0.01", LotSize: "0.001"}}); err != nil {
		t.Fatal(err)
	}
	return c
}

// startMatching and startOrders start the process on a free address the
// first time and on that same address after a crash (the others and the
// test's connections know it).
func (c *crashMesh) startMatching(t *testing.T) {
	c.matching = proctest.Start(t, matchingBin, c.coord, append(listenOn(c.matchingAddr), "--data-dir", c.matchingDir)...)
	c.matchingAddr = c.matching.Addr
}

func (c *crashMesh) startOrders(t *testing.T) {
	c.orders = proctest.Start(t, ordersBin, c.coord, append(listenOn(c.oAddr), "--data-dir", c.ordersDir,
		"--risk", c.riskAddr, "--matching", c.matchingAddr, "--call-timeout", "2s")...)
	c.oAddr = c.orders.Addr
}

// listenOn is the --listen flag for addr, none for "" (a free address).
func listenOn(addr string) []string {
	if addr == "" {
		return nil
	}
	return []string{"--listen", addr}
}

func (c *crashMesh) oc() ordersv1.OrderServiceClient {
	return ordersv1.NewOrderServiceClient(c.ordersConn)
}

// load submits crossing orders from workers until stop is closed and
// returns the acknowledged ones by client order id.
func (c *crashMesh) load(t *testing.T, workers int, stop <-chan struct{}) (acked *sync.Map, n *atomic.Int64, wait func()) {
	acked, n = &sync.Map{}, &atomic.Int64{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			side, price := ordersv1.Side_SIDE_BUY, "100.01"
			if w%2 == 1 {
				side, price = ordersv1.Side_SIDE_SELL, "99.99"
			}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				coid := fmt.Sprintf("w%d-%d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				resp, err := c.oc().SubmitOrder(ctx, &ordersv1.SubmitOrderRequest{Account: fmt.Sprintf("acct%d", w), ClientOrderId: coid,
					Symbol: "BTC-USD", Side: side, Type: ordersv1.OrderType_ORDER_TYPE_LIMIT, Price: price, Quantity: "0.003"})
				cancel()
				if err != nil {
					time.Sleep(20 * time.Millisecond) // the service is down: retry later
					continue
				}
				acked.Store(coid, resp.GetOrder())
				n.Add(1)
			}
		}()
	}
	return acked, n, wg.Wait
}

// allOrders lists every order (all pages).
func (c *crashMesh) allOrders(t *testing.T) []*ordersv1.Order {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*ordersv1.Order
	token := ""
	for {
		resp, err := c.oc().ListOrders(ctx, &ordersv1.ListOrdersRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, resp.GetOrders()...)
		if token = resp.GetNextPageToken(); token == "" {
			return out
		}
	}
}

// tradeFills reads matching's whole trade stream for the symbol and sums
// each order id's filled lots (as taker and as maker).
func (c *crashMesh) tradeFills(t *testing.T) map[uint64]int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	mc := matchingv1.NewMatchingServiceClient(c.matchingConn)
	book, err := mc.GetOrderBook(ctx, &matchingv1.GetOrderBookRequest{Symbol: "BTC-USD", Depth: 1})
	if err != nil {
		t.Fatal(err)
	}
	fills := map[uint64]int64{}
	last := book.GetLastTradeSequence()
	if last == 0 {
		return fills
	}
	stream, err := mc.StreamTrades(ctx, &matchingv1.StreamTradesRequest{Symbol: "BTC-USD", FromSequence: 1})
	if err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		tr := resp.GetTrade()
		fills[tr.GetTakerOrderId()] += tr.GetQuantity()
		fills[tr.GetMakerOrderId()] += tr.GetQuantity()
		if tr.GetSequence() >= last {
			return fills
		}
	}
}

// settled waits until no order is NEW and every order's filled quantity is
// exactly what matching's trade stream says (no fill lost, none applied
// twice), then returns the orders.
func (c *crashMesh) settled(t *testing.T) []*ordersv1.Order {
	t.Helper()
	lot := fixed.Must("0.001")
	deadline := time.Now().Add(20 * time.Second)
	for {
		orders := c.allOrders(t)
		fills := c.tradeFills(t)
		problem := ""
		for _, o := range orders {
			filled := fixed.Must(o.GetFilledQuantity())
			want := fixed.Decimal(fills[o.GetOrderId()] * int64(lot))
			switch {
			case o.GetStatus() == ordersv1.OrderStatus_ORDER_STATUS_NEW:
				problem = fmt.Sprintf("order %d still NEW", o.GetOrderId())
			case filled != want:
				problem = fmt.Sprintf("order %d filled %s in orders, %s in matching's trades", o.GetOrderId(), filled.Text(), want.Text())
			}
			if problem != "" {
				break
			}
		}
		if problem == "" {
			return orders
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled: %s", problem)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// kill -9 of orders in the middle of a stream of submits, then a restart
// on the same store: every acknowledged order is still there, as it was
// acknowledged or further along; fills match matching's trade stream
// exactly (none lost, none applied twice).
func TestKillOrdersMidStream(t *testing.T) {
	c := startCrashMesh(t)
	stop := make(chan struct{})
	acked, n, wait := c.load(t, 4, stop)
	for n.Load() < 40 {
		time.Sleep(10 * time.Millisecond)
	}
	c.orders.Kill(t)
	before := n.Load()
	c.startOrders(t)
	for n.Load() < before+40 {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wait()
	orders := c.settled(t)
	byID := map[uint64]*ordersv1.Order{}
	for _, o := range orders {
		byID[o.GetOrderId()] = o
	}
	lost := 0
	acked.Range(func(k, v any) bool {
		a := v.(*ordersv1.Order)
		o, ok := byID[a.GetOrderId()]
		if !ok || o.GetClientOrderId() != a.GetClientOrderId() || fixed.Must(o.GetFilledQuantity()) < fixed.Must(a.GetFilledQuantity()) {
			lost++
			t.Errorf("acknowledged order %d (%s, filled %s) is now %v", a.GetOrderId(), k, a.GetFilledQuantity(), o)
			return true
		}
		// Further along only by its fills: an acknowledged outcome that
		// the kill took back is read again from matching, never replaced
		// by a cancel or a rejection (nothing here cancels).
		open := func(s ordersv1.OrderStatus) bool {
			return s == ordersv1.OrderStatus_ORDER_STATUS_ACCEPTED || s == ordersv1.OrderStatus_ORDER_STATUS_PARTIALLY_FILLED
		}
		if o.GetStatus() != a.GetStatus() && (!open(a.GetStatus()) || !open(o.GetStatus()) && o.GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_FILLED) {
			t.Errorf("acknowledged order %d (%s) was %v, is now %v (%v)", a.GetOrderId(), k, a.GetStatus(), o.GetStatus(), o.GetRejectReasons())
		}
		return true
	})
	t.Logf("%d orders acknowledged (%d before the kill), %d in the store, %d lost", n.Load(), before, len(orders), lost)
}

// kill -9 of matching under load: every order ends filled (partly or
// wholly), resting, cancelled or rejected with the reason; none stuck in
// NEW, and fills match matching's recovered trade stream.
func TestKillMatchingUnderLoad(t *testing.T) {
	c := startCrashMesh(t)
	stop := make(chan struct{})
	_, n, wait := c.load(t, 4, stop)
	for n.Load() < 40 {
		time.Sleep(10 * time.Millisecond)
	}
	c.matching.Kill(t)
	time.Sleep(300 * time.Millisecond) // submits meet a dead matching
	c.startMatching(t)
	before := n.Load()
	for n.Load() < before+40 {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wait()
	orders := c.settled(t)
	rejected := 0
	for _, o := range orders {
		if o.GetStatus() == ordersv1.OrderStatus_ORDER_STATUS_REJECTED {
			rejected++
			if len(o.GetRejectReasons()) == 0 {
				t.Errorf("order %d rejected without a reason", o.GetOrderId())
			}
		}
	}
	t.Logf("%d orders, %d rejected while matching was down", len(orders), rejected)
	// The operator sees it in the metrics (the unresolved gauge follows
	// the reconciler's next round).
	wants := []string{`tradsys_orders_submitted_total{result="accepted"}`, "tradsys_orders_store_commit_seconds_count",
		"tradsys_orders_fills_applied_total", "tradsys_orders_unresolved 0"}
	if rejected > 0 {
		wants = append(wants, `tradsys_orders_submitted_total{result="rejected"}`)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, want := range wants {
		for {
			resp, err := http.Get("http://" + c.orders.Admin + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("metrics lack %s", want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
