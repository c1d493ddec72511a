package main

// Real-process tests: the tradsys-matching binary (built in TestMain) runs
// as a child process against a real coordinator, is killed with SIGKILL
// after acknowledging orders, and is restarted on the same --data-dir.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/proctest"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	lifecyclev1 "github.com/tradsys/mesh/proto/tradsys/lifecycle/v1"
	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "matchingbin")
	if err != nil {
		panic(err)
	}
	if bin, err = proctest.Build(dir, "tradsys-matching", "."); err != nil {
		panic("build tradsys-matching: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running tradsys-matching process.
type proc struct {
	*proctest.Proc
	mc matchingv1.MatchingServiceClient
}

func start(t *testing.T, coord, dataDir string) *proc {
	t.Helper()
	p := proctest.Start(t, bin, coord, "--data-dir", dataDir)
	return &proc{Proc: p, mc: matchingv1.NewMatchingServiceClient(p.Conn)}
}

var bg = context.Background()

type ack struct {
	req *matchingv1.SubmitOrderRequest
	x   *matchingv1.Execution
}

func TestKill9KeepsEveryAcknowledgedOrderAndTrade(t *testing.T) {
	r, cc := coordtest.Start(t, coordtest.Config{})
	dir := t.TempDir()
	p := start(t, r.Addr(), dir)

	// Dormant: no lease until the first order; cheap calls do not load it.
	if _, err := p.mc.ListAlgorithms(bg, &matchingv1.ListAlgorithmsRequest{}); err != nil {
		t.Fatal(err)
	}
	st, err := lifecyclev1.NewLifecycleServiceClient(p.Conn).GetState(bg, &lifecyclev1.GetStateRequest{Component: "matching"})
	if err != nil || st.GetComponents()[0].GetState() != coordinatorv1.ComponentState_COMPONENT_STATE_DORMANT {
		t.Fatalf("state before any order: %v %v", st, err)
	}
	if ls, err := cc.ListLeases(bg, &coordinatorv1.ListLeasesRequest{}); err != nil || len(ls.GetLeases()) != 0 {
		t.Fatalf("dormant service holds leases: %v %v", ls, err)
	}

	// Concurrent submitters; SIGKILL once enough orders are acknowledged,
	// with calls still in flight.
	const sym, workers, killAfter = "BTC-USD", 8, 400
	var (
		mu    sync.Mutex
		acks  []ack
		count atomic.Int64
		wg    sync.WaitGroup
	)
	killed := make(chan struct{})
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; ; i++ {
				id := uint64(w*100000 + i)
				side, price := matchingv1.Side_SIDE_BUY, int64(1000-(i*7+w)%15)
				if (i+w)%2 == 0 {
					side, price = matchingv1.Side_SIDE_SELL, int64(995+(i*5+w)%15)
				}
				req := &matchingv1.SubmitOrderRequest{Symbol: sym, OrderId: id, Account: id, Side: side,
					Type: matchingv1.OrderType_ORDER_TYPE_LIMIT, Price: price, Quantity: int64(1 + (i*3+w)%9)}
				resp, err := p.mc.SubmitOrder(bg, req)
				if err != nil {
					select {
					case <-killed:
						return
					default:
						t.Errorf("submit before the kill: %v", err)
						return
					}
				}
				mu.Lock()
				acks = append(acks, ack{req, resp.GetExecution()})
				mu.Unlock()
				if count.Add(1) == killAfter {
					close(killed)
					_ = p.Cmd.Process.Signal(syscall.SIGKILL) // mid-flight: others are still submitting
				}
			}
		}()
	}
	wg.Wait()
	p.Kill(t) // reaps the killed process
	mu.Lock()
	acked := append([]ack(nil), acks...)
	mu.Unlock()
	if len(acked) < killAfter {
		t.Fatalf("only %d acknowledgements", len(acked))
	}

	// Restart on the same data dir: everything acknowledged is there.
	p2 := start(t, r.Addr(), dir)
	book, err := p2.mc.GetOrderBook(bg, &matchingv1.GetOrderBookRequest{Symbol: sym, Depth: 1000})
	if err != nil {
		t.Fatal(err)
	}
	last := book.GetLastTradeSequence()
	trades := streamTrades(t, p2.mc, sym, 1, int(last))
	ackedTrades := 0
	for _, a := range acked {
		for _, tr := range a.x.GetTrades() {
			ackedTrades++
			if tr.GetSequence() > last {
				t.Fatalf("acknowledged trade %d lost: recovered only up to %d", tr.GetSequence(), last)
			}
			got := trades[tr.GetSequence()-1]
			if got.GetMakerOrderId() != tr.GetMakerOrderId() || got.GetTakerOrderId() != tr.GetTakerOrderId() ||
				got.GetQuantity() != tr.GetQuantity() || got.GetPrice() != tr.GetPrice() {
				t.Fatalf("trade %d: acknowledged %v, recovered %v", tr.GetSequence(), tr, got)
			}
		}
	}
	made := map[uint64]int64{}
	for _, tr := range trades {
		made[tr.GetMakerOrderId()] += tr.GetQuantity()
	}
	resting := 0
	for _, a := range acked {
		want := a.x.GetRestingQuantity() - made[a.req.GetOrderId()]
		o, err := p2.mc.GetOrder(bg, &matchingv1.GetOrderRequest{Symbol: sym, OrderId: a.req.GetOrderId()})
		switch {
		case want > 0 && (err != nil || o.GetOrder().GetQuantity() != want || o.GetOrder().GetPrice() != a.req.GetPrice()):
			t.Fatalf("acknowledged order %d: want %d resting at %d, got %v %v", a.req.GetOrderId(), want, a.req.GetPrice(), o, err)
		case want <= 0 && status.Code(err) != codes.NotFound:
			t.Fatalf("order %d should be done (resting %d - made %d): %v %v", a.req.GetOrderId(), a.x.GetRestingQuantity(),
				made[a.req.GetOrderId()], o, err)
		case want > 0:
			resting++
		}
	}
	t.Logf("%d acknowledged orders (%d trades) before SIGKILL; recovered %d trades, %d acknowledged orders resting",
		len(acked), ackedTrades, last, resting)
	if ackedTrades == 0 || resting == 0 {
		t.Fatal("the workload produced no trades or no resting orders")
	}

	// StreamTrades resumes from a sequence and then follows live trades.
	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	from := last/2 + 1
	s, err := p2.mc.StreamTrades(ctx, &matchingv1.StreamTradesRequest{Symbol: sym, FromSequence: from})
	if err != nil {
		t.Fatal(err)
	}
	for seq := from; seq <= last; seq++ {
		m, err := s.Recv()
		if err != nil || m.GetTrade().GetSequence() != seq {
			t.Fatalf("resumed stream at %d: %v %v", seq, m, err)
		}
	}
	bestAsk := book.GetAsks()[0]
	x, err := p2.mc.SubmitOrder(bg, &matchingv1.SubmitOrderRequest{Symbol: sym, OrderId: 9_000_001, Account: 1, Side: matchingv1.Side_SIDE_BUY,
		Type: matchingv1.OrderType_ORDER_TYPE_IOC, Price: bestAsk.GetPrice(), Quantity: 1})
	if err != nil || len(x.GetExecution().GetTrades()) != 1 {
		t.Fatalf("crossing order: %v %v", x, err)
	}
	if m, err := s.Recv(); err != nil || m.GetTrade().GetSequence() != last+1 || m.GetTrade().GetTakerOrderId() != 9_000_001 {
		t.Fatalf("live trade: %v %v", m, err)
	}
	cancel()

	// A graceful stop snapshots; the next start restores the same book and
	// still serves the trades from sequence 1 (the ring is saved with it).
	before, err := p2.mc.GetOrderBook(bg, &matchingv1.GetOrderBookRequest{Symbol: sym, Depth: 1000})
	if err != nil {
		t.Fatal(err)
	}
	p2.Stop(t)
	if _, err := os.Stat(filepath.Join(dir, "snapshot.bin")); err != nil {
		t.Fatalf("no snapshot after SIGTERM: %v", err)
	}
	p3 := start(t, r.Addr(), dir)
	after, err := p3.mc.GetOrderBook(bg, &matchingv1.GetOrderBookRequest{Symbol: sym, Depth: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("book changed across a graceful restart:\n%v\n%v", before, after)
	}
	again := streamTrades(t, p3.mc, sym, 1, int(last+1))
	for i := range trades {
		if fmt.Sprint(again[i]) != fmt.Sprint(trades[i]) {
			t.Fatalf("trade %d differs after snapshot restore: %v vs %v", i+1, again[i], trades[i])
		}
	}
}

// streamTrades reads n trades of sym from sequence from.
func streamTrades(t *testing.T, mc matchingv1.MatchingServiceClient, sym string, from uint64, n int) []*matchingv1.Trade {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	s, err := mc.StreamTrades(ctx, &matchingv1.StreamTradesRequest{Symbol: sym, FromSequence: from})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*matchingv1.Trade, 0, n)
	for len(out) < n {
		m, err := s.Recv()
		if err != nil {
			t.Fatalf("trade stream after %d of %d: %v", len(out), n, err)
		}
		if want := from + uint64(len(out)); m.GetTrade().GetSequence() != want {
			t.Fatalf("trade sequence %d, want %d", m.GetTrade().GetSequence(), want)
		}
		out = append(out, m.GetTrade())
	}
	return out
}
