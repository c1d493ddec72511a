package server

import (
	"context"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/tradsys/mesh/pkg/fixed"
	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	"go.uber.org/zap"
)

// followBytes is what following one symbol holds: its goroutine's stack
// and its trade stream's client buffers (an estimate: a few KiB each).
const followBytes = 16 << 10

// bytes is what the follower holds: a trade stream per followed symbol.
func (f *follower) bytes() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return int64(len(f.symbols)) * followBytes
}

// firstPriceWait bounds how long a check waits for a symbol's last trade
// price when its band starts following it.
const firstPriceWait = 2 * time.Second

// ensure starts following symbol (once) with its tick size, from the
// symbol's last trade, and waits (up to firstPriceWait, within ctx) until
// the band has that price: the first orders after the band is loaded (at
// start, after an idle unload or an UnloadValidator) are checked against
// it too, not passed for want of a price that was on its way.
func (f *follower) ensure(ctx context.Context, symbol string, tick fixed.Decimal) {
	if f.conn == nil || tick <= 0 {
		return
	}
	f.mu.Lock()
	fw, ok := f.symbols[symbol]
	if !ok {
		fctx, cancel := context.WithCancel(context.Background())
		fw = &followed{cancel: cancel, ready: make(chan struct{})}
		f.symbols[symbol] = fw
		go f.run(fctx, symbol, tick, fw.ready)
	}
	f.mu.Unlock()
	wait := time.NewTimer(firstPriceWait)
	defer wait.Stop()
	select {
	case <-fw.ready:
	case <-ctx.Done():
	case <-wait.C:
	}
}

// run follows symbol's trades until ctx ends; ready is closed once the
// last trade's price is set, or there is none to wait for.
func (f *follower) run(ctx context.Context, symbol string, tick fixed.Decimal, ready chan struct{}) {
	var once sync.Once
	isReady := func() { once.Do(func() { close(ready) }) }
	defer isReady()
	api := matchingv1.NewMatchingServiceClient(f.conn)
	var from uint64
	retry := &backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, Multiplier: 2, MaxInterval: 2 * time.Second}
	for ctx.Err() == nil {
		if from == 0 {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			book, err := api.GetOrderBook(cctx, &matchingv1.GetOrderBookRequest{Symbol: symbol, Depth: 1})
			cancel()
			if err == nil {
				// The newest trade, or the first one to come (0 would
				// mean "after the call", missing a trade made meanwhile).
				from = max(book.GetLastTradeSequence(), 1)
				if book.GetLastTradeSequence() == 0 {
					isReady() // no trade yet: no price to wait for
				}
			} else {
				isReady() // no book yet (or no answer): no price to wait for
			}
		}
		stream, err := api.StreamTrades(ctx, &matchingv1.StreamTradesRequest{Symbol: symbol, FromSequence: from, Passive: true})
		if err == nil {
			for {
				resp, rerr := stream.Recv()
				if rerr != nil {
					err = rerr
					break
				}
				t := resp.GetTrade()
				from = t.GetSequence() + 1
				if t.GetPrice() > 0 && t.GetPrice() <= int64(fixed.Max)/int64(tick) {
					f.trades.Set(symbol, fixed.Decimal(t.GetPrice()*int64(tick)))
				}
				isReady()
				retry.Reset()
			}
		}
		if ctx.Err() != nil {
			return
		}
		// No price this time (matching unreachable, the trade no longer
		// kept): the checks waiting for it go on without it.
		isReady()
		f.log.Debug("trade stream ended; resuming", zap.String("symbol", symbol), zap.Error(err))
		select {
		case <-time.After(retry.NextBackOff()):
		case <-ctx.Done():
			return
		}
		from = 0 // the newest trade again (the ring may have moved on)
	}
}

// stopAll stops every follower and forgets the prices.
func (f *follower) stopAll() {
	f.mu.Lock()
	for s, fw := range f.symbols {
		fw.cancel()
		delete(f.symbols, s)
	}
	f.mu.Unlock()
	f.trades.Reset()
}
