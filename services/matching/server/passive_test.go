package server_test

import (
	"context"
	"testing"
	"time"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	lifecyclev1 "github.com/tradsys/mesh/proto/tradsys/lifecycle/v1"
	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	"github.com/tradsys/mesh/services/matching/server"
)

// engineState is the matching engine's state as its lifecycle service reports it.
func engineState(t *testing.T, e *env) coordinatorv1.ComponentState {
	t.Helper()
	st, err := lifecyclev1.NewLifecycleServiceClient(e.conn).GetState(bg, &lifecyclev1.GetStateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st.GetComponents() {
		if c.GetName() == server.MainComponent {
			return c.GetState()
		}
	}
	t.Fatalf("no %s component in %v", server.MainComponent, st)
	return 0
}

// A passive follower (historical) neither wakes a dormant matching nor keeps
// it loaded, yet receives every trade made while others keep it active, and
// its stream outlives the engine's unload.
func TestPassiveStreamTradesNeitherWakesNorKeepsTheEngine(t *testing.T) {
	o := server.Defaults()
	o.DataDir = t.TempDir()
	o.Engine.IdleTimeout = time.Second
	o.Algorithm.IdleTimeout = time.Second
	e := startEnv(t, o)
	ctx, cancel := context.WithTimeout(bg, 60*time.Second)
	defer cancel()
	stream, err := e.mc.StreamTrades(ctx, &matchingv1.StreamTradesRequest{Symbol: "BTC", FromSequence: 1, Passive: true})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *matchingv1.Trade, 8)
	ended := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				ended <- err
				return
			}
			got <- m.GetTrade()
		}
	}()
	// Past the stream's start and a re-check: still dormant, no lease.
	time.Sleep(700 * time.Millisecond)
	if s := engineState(t, e); s != coordinatorv1.ComponentState_COMPONENT_STATE_DORMANT {
		t.Fatalf("a passive stream woke the engine: %v", s)
	}
	if l := leaseNames(t, e.coord); len(l) != 0 {
		t.Fatalf("a passive stream took leases %v", l)
	}
	trade := func(sellID, buyID uint64, wantSeq uint64) {
		t.Helper()
		if _, err := e.mc.SubmitOrder(bg, limit("BTC", sellID, sell, 100, 1)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.mc.SubmitOrder(bg, limit("BTC", buyID, buy, 100, 1)); err != nil {
			t.Fatal(err)
		}
		select {
		case tr := <-got:
			if tr.GetSequence() != wantSeq || tr.GetMakerOrderId() != sellID || tr.GetTakerOrderId() != buyID {
				t.Fatalf("trade %v, want sequence %d between %d and %d", tr, wantSeq, sellID, buyID)
			}
		case err := <-ended:
			t.Fatalf("passive stream ended: %v", err)
		case <-ctx.Done():
			t.Fatalf("trade %d never reached the passive stream", wantSeq)
		}
	}
	// Someone else's orders wake the engine; the follower sees the trade.
	trade(1, 2, 1)
	// The engine idles out and unloads although the stream is open.
	for engineState(t, e) != coordinatorv1.ComponentState_COMPONENT_STATE_DORMANT {
		if ctx.Err() != nil {
			t.Fatal("the engine never went idle with a passive stream open: the stream keeps it loaded")
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case err := <-ended:
		t.Fatalf("passive stream ended when the engine unloaded: %v", err)
	default:
	}
	// The next activation (by an order) brings the next trade on the same stream.
	trade(3, 4, 2)
	// A trade made just before an unload reaches the follower before the
	// engine closes: it is there with the engine dormant and nobody waking it.
	if _, err := e.mc.SubmitOrder(bg, limit("BTC", 5, sell, 100, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.mc.SubmitOrder(bg, limit("BTC", 6, buy, 100, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := lifecyclev1.NewLifecycleServiceClient(e.conn).Deactivate(bg, &lifecyclev1.DeactivateRequest{Component: server.MainComponent}); err != nil {
		t.Fatal(err)
	}
	for engineState(t, e) != coordinatorv1.ComponentState_COMPONENT_STATE_DORMANT {
		if ctx.Err() != nil {
			t.Fatal("the engine did not unload")
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case tr := <-got:
		if tr.GetSequence() != 3 || tr.GetMakerOrderId() != 5 {
			t.Fatalf("trade %v, want sequence 3 of order 5", tr)
		}
	case err := <-ended:
		t.Fatalf("passive stream ended: %v", err)
	case <-ctx.Done():
		t.Fatal("the trade made before the unload never reached the passive stream")
	}
	if s := engineState(t, e); s != coordinatorv1.ComponentState_COMPONENT_STATE_DORMANT {
		t.Fatalf("reading the last trade woke the engine: %v", s)
	}
}
