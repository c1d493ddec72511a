package strategies

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/fixed"
	"go.uber.org/zap"
)

// gapOrders is an orders service that no longer has the updates a runner
// asks for first: that stream fails with the gap, later ones record where
// they start and stay open.
type gapOrders struct {
	paper
	mu    sync.Mutex
	froms []uint64
}

func (g *gapOrders) Updates(ctx context.Context, _, _ string, from uint64, _ func(Update)) error {
	g.mu.Lock()
	g.froms = append(g.froms, from)
	first := len(g.froms) == 1
	g.mu.Unlock()
	if first {
		return &UpdatesGapError{Requested: from, ResumeFrom: 500, Reason: "UPDATES_TRIMMED"}
	}
	<-ctx.Done()
	return ctx.Err()
}

func (g *gapOrders) starts() []uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]uint64(nil), g.froms...)
}

type quietMarket struct{}

func (quietMarket) Trades(ctx context.Context, _, _ string, _ func(fixed.Decimal)) error {
	<-ctx.Done()
	return ctx.Err()
}

// Updates the orders service no longer keeps (or does not have yet) are
// skipped, loudly, and the runner goes on from where the orders service
// can: asking again for the same sequence would fail forever.
func TestRunnerGoesOnAfterAGapInOrderUpdates(t *testing.T) {
	cfg := Config{Name: "mm", Type: MarketMaking, Account: "a", Symbol: "X", Connector: "c",
		MarketMaking: &MarketMakingParams{Spread: fixed.Must("0.02"), Quantity: fixed.Must("1"), MaxInventory: fixed.Must("2")}}
	cfg.Defaults()
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	g := &gapOrders{}
	r := newRunner(cfg, quietMarket{}, g, zap.NewNop(), Metrics{LastUpdate: 7})
	g.r = r
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.run(ctx, logicFor(cfg)) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(g.starts()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("update streams started from %v: never resumed after the gap", g.starts())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if s := g.starts(); s[0] != 8 || s[1] != 500 {
		t.Fatalf("update streams started from %v, want [8 500]", s)
	}
}
