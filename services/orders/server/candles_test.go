package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/clientpool"
	"github.com/tradsys/mesh/services/historical/candles"
	"github.com/tradsys/mesh/services/historical/history"
	"github.com/tradsys/mesh/services/historical/sources"
)

// An order placed through orders becomes a candle: historical follows
// matching's trade stream (as `tradsys up` wires it) and the fill's
// decimal price and quantity come out exactly, on historical's default
// grid (tick 0.01, lot 0.00000001).
func TestOrdersBecomeCandles(t *testing.T) {
	m := startMesh(t, meshConfig{})
	m.instrument(t, "BTC-USD", "0.01", "0.00000001")
	h, err := history.Open(history.Options{DataDir: t.TempDir(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	pool := clientpool.New(clientpool.Options{})
	t.Cleanup(pool.Close)
	if _, err := sources.FollowMatching(ctx, h, pool, sources.MatchingConfig{Address: m.Matching.Addr, Symbols: []string{"BTC-USD"}}); err != nil {
		t.Fatal(err)
	}
	m.submit(t, "alice", "a1", "BTC-USD", sell, "86780.01", "0.015")
	m.submit(t, "alice", "a2", "BTC-USD", sell, "86781.5", "0.01")
	m.submit(t, "bob", "b1", "BTC-USD", buy, "86790", "0.02")

	deadline := time.Now().Add(10 * time.Second)
	for {
		c, _, err := h.Latest("BTC-USD", candles.Interval1m, true)
		if err == nil && c.Trades == 2 {
			if c.Open.Text() != "86780.01" || c.Close.Text() != "86781.5" || c.Volume.Text() != "0.02" || c.High.Text() != "86781.5" {
				t.Fatalf("candle %+v: want open 86780.01, close/high 86781.5, volume 0.02", c)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no candle of the two trades: %+v %v", c, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
