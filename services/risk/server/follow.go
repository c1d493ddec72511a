package server

import (
	"context"
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

// ensure starts following symbol (once) with its tick size: the stream
// starts at the symbol's last trade, so the band has a price at once.
func (f *follower) ensure(symbol string, tick fixed.Decimal) {
	if f.conn == nil || tick <= 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.symbols[symbol]; ok {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.symbols[symbol] = cancel
	go f.run(ctx, symbol, tick)
}

func (f *follower) run(ctx context.Context, symbol string, tick fixed.Decimal) {
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
				retry.Reset()
			}
		}
		if ctx.Err() != nil {
			return
		}
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
	for s, cancel := range f.symbols {
		cancel()
		delete(f.symbols, s)
	}
	f.mu.Unlock()
	f.trades.Reset()
}
