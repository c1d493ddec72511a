package feeds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// DefaultBinanceURL is Binance's combined-stream endpoint.
const DefaultBinanceURL = "wss://stream.binance.com:9443/stream"

// Backoff is capped exponential backoff with jitter: attempt n (0-based)
// waits a random duration in [d/2, d] where d = min(Max, Initial*Factor^n)
// ("equal jitter": never zero, never above the cap).
type Backoff struct {
	Initial time.Duration // default 500ms
	Max     time.Duration // default 30s
	Factor  float64       // default 2
}

func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = 500 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 30 * time.Second
	}
	if b.Max < b.Initial {
		b.Max = b.Initial
	}
	if b.Factor < 1 {
		b.Factor = 2
	}
	return b
}

// Delay returns the wait before retry attempt n (0-based), drawing the
// jitter from rnd (a uniform [0,1) source such as rand.Float64).
func (b Backoff) Delay(n int, rnd func() float64) time.Duration {
	b = b.withDefaults()
	d := float64(b.Initial)
	for i := 0; i < n && d < float64(b.Max); i++ {
		d *= b.Factor
	}
	if d > float64(b.Max) {
		d = float64(b.Max)
	}
	half := d / 2
	return time.Duration(half + rnd()*half)
}

// BinanceConfig configures a Binance connector.
type BinanceConfig struct {
	// URL of the combined-stream endpoint (default DefaultBinanceURL).
	URL string
	// Symbols to subscribe to: "BTCUSDT" subscribes "btcusdt@trade" and,
	// with Depth, "btcusdt@depth@100ms".
	Symbols []string
	// Depth adds the diff-depth stream of each symbol.
	Depth bool
	// Streams are extra raw stream names subscribed as given
	// (e.g. "ethusdt@aggTrade", "btcusdt@depth5@100ms").
	Streams []string
	Backoff Backoff
	// DialTimeout bounds connect + subscribe (default 10s).
	DialTimeout time.Duration
	// IdleTimeout reconnects when no message arrives for this long
	// (default 60s; Binance pings every 20s and the library answers).
	IdleTimeout time.Duration
	// ReadLimit is the maximum message size (default 1 MiB).
	ReadLimit int64
	Name      string // default "binance"
	// Seed of the jitter source (0 = random).
	Seed uint64
	// OnError, when set, hears every failed or lost connection (with the
	// failed attempts so far) as it happens, for the service's log.
	OnError func(err error, dialErrors uint64)
}

// Binance is a Connector for Binance's public WebSocket market data. It
// dials cfg.URL, sends {"method":"SUBSCRIBE","params":[...],"id":n}, and
// parses every message with ParseBinanceMessage. Malformed messages are
// counted in Stats().Malformed and skipped. When the connection fails or
// drops (or is idle past IdleTimeout) it reconnects with Backoff, counting
// Stats().Reconnects on each successful reconnection (dial + subscribe
// after an earlier connection); the backoff resets after a connection that
// delivered at least one message. WebSocket ping/pong is handled
// by github.com/coder/websocket while reading.
//
// Diff-depth continuity ("U" = previous "u" + 1) is checked per symbol and
// breaks are counted in Stats().SeqGaps (the check restarts with each
// connection); building a consistent book still requires a REST snapshot, which this
// connector does not fetch.
type Binance struct {
	cfg     BinanceConfig
	streams []string
	c       counters
	lc      lifecycle

	rndMu sync.Mutex
	rnd   *rand.Rand
}

// NewBinance validates cfg and returns a Binance connector.
func NewBinance(cfg BinanceConfig) (*Binance, error) {
	if cfg.URL == "" {
		cfg.URL = DefaultBinanceURL
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	if cfg.ReadLimit <= 0 {
		cfg.ReadLimit = 1 << 20
	}
	if cfg.Name == "" {
		cfg.Name = "binance"
	}
	cfg.Backoff = cfg.Backoff.withDefaults()
	var streams []string
	for _, s := range cfg.Symbols {
		s = strings.ToLower(strings.TrimSpace(s))
		if s == "" || strings.ContainsAny(s, "@/ ") {
			return nil, fmt.Errorf("feeds: binance: bad symbol %q", s)
		}
		streams = append(streams, s+"@trade")
		if cfg.Depth {
			streams = append(streams, s+"@depth@100ms")
		}
	}
	streams = append(streams, cfg.Streams...)
	if len(streams) == 0 {
		return nil, errors.New("feeds: binance: nothing to subscribe to")
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &Binance{cfg: cfg, streams: streams, rnd: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))}, nil
}

func (b *Binance) Name() string { return b.cfg.Name }

// StreamNames are the streams subscribed to.
func (b *Binance) StreamNames() []string { return append([]string(nil), b.streams...) }

func (b *Binance) Stats() Stats {
	s := b.c.snapshot()
	s.Running = b.lc.running()
	return s
}

// Start connects in the background; connection failures are retried
// (Stats().DialErrors, LastError), so Start itself only fails when already
// running.
func (b *Binance) Start(ctx context.Context, out Publisher) error {
	return b.lc.start(ctx, func(ctx context.Context) error { return b.run(ctx, out) })
}

func (b *Binance) Stop()                 { b.lc.stop() }
func (b *Binance) Done() <-chan struct{} { return b.lc.doneChan() }

func (b *Binance) jitter() float64 {
	b.rndMu.Lock()
	defer b.rndMu.Unlock()
	return b.rnd.Float64()
}

func (b *Binance) run(ctx context.Context, out Publisher) error {
	attempt := 0
	everConnected := false
	var pubErr error
	lastU := map[string]int64{}
	for ctx.Err() == nil {
		subscribed, gotData, err := b.session(ctx, out, everConnected, lastU, &pubErr)
		if pubErr != nil {
			return pubErr
		}
		if subscribed {
			everConnected = true
		}
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			b.c.setErr(err)
			if b.cfg.OnError != nil {
				b.cfg.OnError(err, b.c.dialErrors.Load())
			}
		}
		if gotData {
			attempt = 0
		}
		d := b.cfg.Backoff.Delay(attempt, b.jitter)
		attempt++
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	return ctx.Err()
}

// session runs one connection; subscribed reports whether it got as far as
// sending the subscription, gotData whether any message arrived.
func (b *Binance) session(ctx context.Context, out Publisher, reconnect bool, lastU map[string]int64, pubErr *error) (subscribed, gotData bool, err error) {
	dctx, cancel := context.WithTimeout(ctx, b.cfg.DialTimeout)
	conn, _, err := websocket.Dial(dctx, b.cfg.URL, nil)
	if err != nil {
		cancel()
		b.c.dialErrors.Add(1)
		return false, false, fmt.Errorf("feeds: binance: dial %s: %w", b.cfg.URL, err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(b.cfg.ReadLimit)
	sub, _ := json.Marshal(struct {
		Method string   `json:"method"`
		Params []string `json:"params"`
		ID     int64    `json:"id"`
	}{"SUBSCRIBE", b.streams, 1})
	err = conn.Write(dctx, websocket.MessageText, sub)
	cancel()
	if err != nil {
		b.c.dialErrors.Add(1)
		return false, false, fmt.Errorf("feeds: binance: subscribe: %w", err)
	}
	if reconnect {
		b.c.reconnects.Add(1)
	}
	b.c.connected.Store(true)
	defer b.c.connected.Store(false)
	for k := range lastU {
		delete(lastU, k) // continuity restarts with each connection
	}
	for {
		rctx, rcancel := context.WithTimeout(ctx, b.cfg.IdleTimeout)
		typ, msg, err := conn.Read(rctx)
		idle := rctx.Err() == context.DeadlineExceeded && ctx.Err() == nil
		rcancel()
		if err != nil {
			if ctx.Err() != nil {
				conn.Close(websocket.StatusNormalClosure, "stopping")
				return true, gotData, nil
			}
			if idle {
				return true, gotData, fmt.Errorf("feeds: binance: no message for %v, reconnecting", b.cfg.IdleTimeout)
			}
			return true, gotData, fmt.Errorf("feeds: binance: read: %w", err)
		}
		b.c.messages.Add(1)
		gotData = true
		if typ != websocket.MessageText {
			b.c.malformed.Add(1)
			b.c.setErr(errors.New("feeds: binance: unexpected binary message"))
			continue
		}
		ev, err := ParseBinanceMessage(msg)
		if err != nil {
			var api *APIError
			if !errors.As(err, &api) {
				b.c.malformed.Add(1)
			}
			b.c.setErr(err)
			continue
		}
		if ev == nil {
			continue // control message (subscription ack)
		}
		if bu, ok := ev.(BookUpdate); ok && !bu.Snapshot {
			if prev, ok := lastU[bu.Symbol]; ok && bu.FirstSeq != prev+1 {
				b.c.seqGaps.Add(1)
			}
			lastU[bu.Symbol] = bu.Seq
		}
		if err := publish(&b.c, out, ev); err != nil {
			*pubErr = err
			return true, gotData, err
		}
	}
}
