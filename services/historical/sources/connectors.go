// Package sources feeds trades into the historical service from other
// services, as their gRPC client: the connectors service's
// StreamMarketData (one stream per followed connector, resumed from the
// last sequence after a break), and the matching service's StreamTrades
// (one stream per followed symbol, resumed the same way; see
// FollowMatching for the tick and lot scaling and the execution time).
package sources

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	connectorsv1 "github.com/tradsys/mesh/proto/tradsys/connectors/v1"
	"github.com/tradsys/mesh/services/historical/candles"
	"github.com/tradsys/mesh/services/historical/history"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Followers runs connector followers for a History.
type Followers struct {
	h     *history.History
	log   *zap.Logger
	conns Conns
	ctx   context.Context

	mu        sync.Mutex
	following map[string]bool   // source name -> running
	keptPath  string            // follows.json, once KeepFollows is called
	kept      map[string]Follow // source name -> request, as kept on disk
}

// New returns Followers that stop when ctx ends; they call connectors
// services over conns (the service's shared pool).
func New(ctx context.Context, h *history.History, conns Conns, log *zap.Logger) *Followers {
	if log == nil {
		log = zap.NewNop()
	}
	return &Followers{h: h, log: log, conns: conns, ctx: ctx, following: map[string]bool{}}
}

// SourceName names a followed connector.
func SourceName(address, connector string) string {
	if connector == "" {
		connector = "*"
	}
	return "connectors://" + address + "/" + connector
}

// Follow starts following connector on the connectors service at address
// (every connector, including later ones, when connector is ""). It is
// idempotent: following the same thing again returns its existing source.
func (f *Followers) Follow(address, connector string, symbols []string) (*history.Source, error) {
	conn, err := f.conns.Conn(address)
	if err != nil {
		return nil, err
	}
	name := SourceName(address, connector)
	src, _ := f.h.Source(name)
	f.mu.Lock()
	running := f.following[name]
	f.following[name] = true
	f.mu.Unlock()
	if running {
		return src, nil
	}
	client := connectorsv1.NewConnectorServiceClient(conn)
	if connector != "" {
		go f.followOne(client, src, address, connector, symbols, false)
		return src, nil
	}
	go f.discover(client, src, address, symbols)
	return src, nil
}

// discover follows every connector the service lists, polling for new ones.
func (f *Followers) discover(client connectorsv1.ConnectorServiceClient, src *history.Source, address string, symbols []string) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(f.ctx, 5*time.Second)
		resp, err := client.ListConnectors(ctx, &connectorsv1.ListConnectorsRequest{})
		cancel()
		src.SetConnected(err == nil)
		src.SetError(err)
		for _, c := range resp.GetConnectors() {
			name := SourceName(address, c.GetName())
			f.mu.Lock()
			running := f.following[name]
			f.following[name] = true
			f.mu.Unlock()
			if !running {
				one, _ := f.h.Source(name)
				go f.followOne(client, one, address, c.GetName(), symbols, true)
			}
		}
		select {
		case <-f.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// followOne streams one connector's trades into the aggregator, resuming
// after breaks. A discovered connector that is gone (NOT_FOUND) is dropped
// (discovery picks it up again if it comes back); a named one is retried.
func (f *Followers) followOne(client connectorsv1.ConnectorServiceClient, src *history.Source, address, connector string, symbols []string, discovered bool) {
	defer func() {
		f.mu.Lock()
		delete(f.following, src.Name)
		f.mu.Unlock()
		src.SetConnected(false)
	}()
	log := f.log.With(zap.String("source", src.Name))
	resume := map[string]uint64{}
	retry := reconnectBackoff(5 * time.Second)
	batch := make([]candles.Trade, 0, 256)
	for f.ctx.Err() == nil {
		stream, err := client.StreamMarketData(f.ctx, &connectorsv1.StreamMarketDataRequest{
			Connector: connector, Symbols: symbols, FromSequences: resume, FromOldest: true, TradesOnly: true})
		if err == nil {
			for {
				var msg *connectorsv1.StreamMarketDataResponse
				msg, err = stream.Recv()
				if err != nil {
					break
				}
				if !src.Connected() {
					src.SetConnected(true)
					src.SetError(nil)
					retry.Reset()
				}
				resume[msg.GetSymbol()] = msg.GetSequence() + 1
				tr := msg.GetTrade()
				if tr == nil {
					continue
				}
				t, terr := tradeFromPB(tr)
				src.AddTrades(1)
				if terr != nil {
					log.Debug("skipping trade", zap.Error(terr))
					continue
				}
				batch = append(batch[:0], t)
				f.h.Ingest(batch)
			}
		}
		src.SetConnected(false)
		if f.ctx.Err() != nil {
			return
		}
		src.SetError(err)
		wait := retry.NextBackOff()
		switch status.Code(err) {
		case codes.NotFound:
			if discovered {
				log.Info("connector gone; no longer following", zap.Error(err))
				return
			}
			resume = map[string]uint64{}
		case codes.OutOfRange:
			// The connector was reloaded (sequences started over) or we fell
			// behind its ring: take what it still has.
			log.Warn("resume point lost; restarting from the oldest retained event", zap.Error(err))
			resume = map[string]uint64{}
		default:
			log.Info("stream ended; reconnecting", zap.Error(err), zap.Duration("backoff", wait))
		}
		select {
		case <-f.ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// reconnectBackoff is the followers' reconnect schedule (cenkalti/backoff):
// 100ms doubling up to max, reset by the first message of a new stream.
func reconnectBackoff(max time.Duration) *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, Multiplier: 2, MaxInterval: max}
}

func tradeFromPB(t *connectorsv1.Trade) (candles.Trade, error) {
	p, err := candles.ParseFixed(t.GetPrice())
	if err != nil {
		return candles.Trade{}, fmt.Errorf("price: %w", err)
	}
	q, err := candles.ParseFixed(t.GetQuantity())
	if err != nil {
		return candles.Trade{}, fmt.Errorf("quantity: %w", err)
	}
	return candles.Trade{Symbol: t.GetSymbol(), Time: t.GetTime().AsTime(), Price: p, Qty: q, ID: t.GetTradeId()}, nil
}
