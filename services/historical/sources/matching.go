package sources

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"time"

	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	"github.com/tradsys/mesh/services/historical/candles"
	"github.com/tradsys/mesh/services/historical/history"
	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Defaults of the matching source's scales. The matching service gives
// prices in integer ticks and quantities in integer lots; the candles need
// decimals: price = ticks × tick size, quantity = lots × lot size, both
// computed exactly on candles.Fixed (8 decimals), never through floats.
const (
	// DefaultTickSize is one cent.
	DefaultTickSize candles.Fixed = candles.Scale / 100 // 0.01
	// DefaultLotSize is the smallest Fixed step (1e-8), so a quantity in
	// lots is the quantity in units of 10^-8 (satoshi-like).
	DefaultLotSize candles.Fixed = 1 // 0.00000001
)

// Conns hands out shared client connections (service.Service's Pool, a
// *clientpool.Pool): the source never dials per call.
type Conns interface {
	Conn(target string) (*grpc.ClientConn, error)
}

// MatchingConfig configures FollowMatching.
type MatchingConfig struct {
	// Address of the matching service ("host:port" or "tradsys:///matching").
	Address string
	// Symbols to follow; each gets its own StreamTrades.
	Symbols []string
	// TickSize and LotSize scale ticks and lots into decimals (defaults
	// DefaultTickSize, DefaultLotSize).
	TickSize, LotSize candles.Fixed
	Logger            *zap.Logger
}

// MatchingSourceName names the source of one followed matching symbol.
func MatchingSourceName(address, symbol string) string {
	return "matching://" + address + "/" + symbol
}

// FollowMatching follows the matching service's StreamTrades for every
// symbol of cfg until ctx ends, feeding the trades into h's aggregator.
//
// Each symbol's stream starts at the oldest trade matching still keeps
// (trades that fall into a 1m candle already stored for the symbol, i.e.
// that a previous run of this service already wrote, are skipped, so a
// restart neither double-counts nor overwrites final candles), and after
// any break (matching restarting, unloading its engine, the network) it
// reconnects with backoff and resumes from the sequence after the last one
// received, so nothing is dropped or counted twice. A symbol matching does
// not know yet (NOT_FOUND) is retried until it appears. Trades without an
// execution time (journaled by an older matching service) cannot be placed
// in a candle and are counted as invalid.
func FollowMatching(ctx context.Context, h *history.History, conns Conns, cfg MatchingConfig) ([]*history.Source, error) {
	if cfg.Address == "" {
		return nil, errors.New("matching source: no address")
	}
	if len(cfg.Symbols) == 0 {
		return nil, errors.New("matching source: no symbols to follow (--trades-symbols)")
	}
	if cfg.TickSize == 0 {
		cfg.TickSize = DefaultTickSize
	}
	if cfg.LotSize == 0 {
		cfg.LotSize = DefaultLotSize
	}
	if cfg.TickSize < 0 || cfg.LotSize < 0 {
		return nil, fmt.Errorf("matching source: tick size %s and lot size %s must be > 0", cfg.TickSize, cfg.LotSize)
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	seen := map[string]bool{}
	for _, s := range cfg.Symbols {
		if err := candles.ValidateSymbol(s); err != nil {
			return nil, fmt.Errorf("matching source: %w", err)
		}
		if seen[s] {
			return nil, fmt.Errorf("matching source: symbol %q listed twice", s)
		}
		seen[s] = true
	}
	conn, err := conns.Conn(cfg.Address)
	if err != nil {
		return nil, err
	}
	client := matchingv1.NewMatchingServiceClient(conn)
	out := make([]*history.Source, 0, len(cfg.Symbols))
	for _, sym := range cfg.Symbols {
		src, _ := h.Source(MatchingSourceName(cfg.Address, sym))
		f := &matchingFollower{h: h, client: client, src: src, symbol: sym, tick: cfg.TickSize, lot: cfg.LotSize,
			log: cfg.Logger.With(zap.String("source", src.Name))}
		go f.run(ctx)
		out = append(out, src)
	}
	return out, nil
}

type matchingFollower struct {
	h         *history.History
	client    matchingv1.MatchingServiceClient
	src       *history.Source
	symbol    string
	tick, lot candles.Fixed
	log       *zap.Logger
}

// run streams one symbol's trades, resuming after breaks.
func (f *matchingFollower) run(ctx context.Context) {
	defer f.src.SetConnected(false)
	// Trades before the end of the newest stored 1m candle are in the store
	// already (a candle is only written once final).
	var cutoff time.Time
	if c, err := f.h.Store().Latest(f.symbol, candles.Interval1m); err == nil {
		cutoff = c.End()
	}
	next := uint64(1) // the oldest trade matching keeps (OUT_OF_RANGE tells us which)
	received := false // whether any trade was received yet
	retry := reconnectBackoff(2 * time.Second)
	batch := make([]candles.Trade, 1)
	for ctx.Err() == nil {
		sctx, cancel := context.WithCancel(ctx)
		stream, err := f.client.StreamTrades(sctx, &matchingv1.StreamTradesRequest{Symbol: f.symbol, FromSequence: next, Passive: true})
		if err == nil {
			for {
				var msg *matchingv1.StreamTradesResponse
				msg, err = stream.Recv()
				if err != nil {
					break
				}
				if !f.src.Connected() {
					f.src.SetConnected(true)
					f.src.SetError(nil)
					retry.Reset()
				}
				tr := msg.GetTrade()
				seq := tr.GetSequence()
				switch {
				case seq < next:
					continue // already ingested (cannot happen with from_sequence; belt and braces)
				case seq > next && received:
					f.log.Error("gap in matching's trade sequence: trades lost", zap.Uint64("expected", next), zap.Uint64("got", seq))
				}
				next, received = seq+1, true
				f.src.AddTrades(1)
				t, terr := f.trade(tr)
				if terr != nil {
					f.log.Warn("skipping trade", zap.Uint64("sequence", seq), zap.Error(terr))
					f.h.CountInvalid(1)
					continue
				}
				if t.Time.Before(cutoff) {
					continue
				}
				batch[0] = t
				f.h.Ingest(batch)
			}
		}
		cancel()
		f.src.SetConnected(false)
		if ctx.Err() != nil {
			return
		}
		f.src.SetError(err)
		var wait time.Duration
		switch status.Code(err) {
		case codes.OutOfRange:
			oldest, ok := oldestSequence(err)
			switch {
			case !ok:
				f.log.Error("resume point lost and matching did not name its oldest trade; following new trades only", zap.Error(err))
				next = 0
			case received && oldest > next:
				f.log.Error("resume point lost: matching no longer keeps the trades after the last one received",
					zap.Uint64("from_sequence", next), zap.Uint64("oldest_sequence", oldest), zap.Uint64("lost", oldest-next))
				next = oldest
			default:
				f.log.Info("starting from the oldest trade matching keeps", zap.Uint64("oldest_sequence", oldest))
				next = oldest
			}
			continue // at once: this is not a failure to back off from
		case codes.NotFound:
			wait = retry.NextBackOff()
			f.log.Debug("symbol unknown to matching yet; retrying", zap.Error(err), zap.Duration("backoff", wait))
		default:
			wait = retry.NextBackOff()
			f.log.Info("trade stream ended; reconnecting", zap.Error(err), zap.Uint64("from_sequence", next),
				zap.Duration("backoff", wait))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// oldestSequence reads the oldest available sequence from an OUT_OF_RANGE
// status's ErrorInfo.
func oldestSequence(err error) (uint64, bool) {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			if v, perr := strconv.ParseUint(info.GetMetadata()["oldest_sequence"], 10, 64); perr == nil && v > 0 {
				return v, true
			}
		}
	}
	return 0, false
}

// trade converts a matching trade: price = ticks × tick size, quantity =
// lots × lot size, exactly; the sequence is the (per-symbol) trade id.
func (f *matchingFollower) trade(t *matchingv1.Trade) (candles.Trade, error) {
	return MatchingTrade(t, f.tick, f.lot)
}

// MatchingTrade converts a matching trade to a candles.Trade: price =
// ticks × tick, quantity = lots × lot, exactly (an error if not
// representable), time = executed_at (an error when unset), id = sequence.
func MatchingTrade(t *matchingv1.Trade, tick, lot candles.Fixed) (candles.Trade, error) {
	if t.GetExecutedAt() == nil {
		return candles.Trade{}, errors.New("no executed_at (trade journaled by a matching service that did not record times)")
	}
	if t.GetSequence() > math.MaxInt64 {
		return candles.Trade{}, fmt.Errorf("sequence %d out of range", t.GetSequence())
	}
	p, ok := scale(t.GetPrice(), tick)
	if !ok {
		return candles.Trade{}, fmt.Errorf("price %d ticks × %s is not representable", t.GetPrice(), tick)
	}
	q, ok := scale(t.GetQuantity(), lot)
	if !ok {
		return candles.Trade{}, fmt.Errorf("quantity %d lots × %s is not representable", t.GetQuantity(), lot)
	}
	return candles.Trade{Symbol: t.GetSymbol(), Time: t.GetExecutedAt().AsTime(), Price: p, Qty: q, ID: int64(t.GetSequence())}, nil
}

// scale is n × unit for a positive n and unit, false on overflow.
func scale(n int64, unit candles.Fixed) (candles.Fixed, bool) {
	if n <= 0 || unit <= 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(uint64(n), uint64(unit))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	return candles.Fixed(lo), true
}
