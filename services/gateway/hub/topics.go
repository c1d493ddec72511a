package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.uber.org/zap"
)

// topic is one subscribable stream (a symbol's trades, its book at a
// depth, its candles at an interval, an account's orders, the mesh). Its
// feed runs while it has subscribers. Each frame is encoded once and
// queued to every subscriber without blocking.
type topic struct {
	key    string
	cancel context.CancelFunc

	mu   sync.Mutex
	subs map[*Conn]struct{}
	// snapshot gives a new subscriber what it needs first (the recent
	// trades, the current book, the candle history); called under mu.
	snapshot func() [][]byte
}

func topicKey(req Request, c *Conn) string {
	switch req.Channel {
	case ChannelBook:
		return "book|" + req.Symbol + "|" + strconv.Itoa(req.Depth)
	case ChannelCandles:
		return "candles|" + req.Symbol + "|" + req.Interval
	case ChannelOrders:
		// One stream per connection: its ack is sent once the stream is
		// open, so no update after the ack is missed.
		return fmt.Sprintf("orders|%s|%p", c.key.Account, c)
	case ChannelMesh:
		return "mesh"
	default:
		return req.Channel + "|" + req.Symbol
	}
}

// publish queues b to every subscriber.
func (t *topic) publish(b []byte) {
	t.mu.Lock()
	for c := range t.subs {
		c.enqueue(b)
	}
	t.mu.Unlock()
}

func (t *topic) setSnapshot(f func() [][]byte) {
	t.mu.Lock()
	t.snapshot = f
	t.mu.Unlock()
}

func encode(f Frame) []byte {
	f.SentAt = time.Now().UnixNano()
	b, _ := json.Marshal(f) // frames hold plain data
	return b
}

func (c *Conn) subscribe(req Request) {
	if req.Channel == ChannelOrders && c.h.orders == nil {
		c.sendError(req.ID, Errorf(CodeUnavailable, "orders service not configured on this gateway"))
		return
	}
	if req.Channel == ChannelMesh && c.h.mesh == nil {
		c.sendError(req.ID, Errorf(CodeUnavailable, "coordinator not configured on this gateway"))
		return
	}
	key := topicKey(req, c)
	c.mu.Lock()
	if _, dup := c.subs[key]; dup {
		c.mu.Unlock()
		c.sendFrame(Frame{Type: FrameAck, ID: req.ID, Channel: req.Channel, Symbol: req.Symbol})
		return
	}
	if len(c.subs) >= c.h.cfg.MaxSubscriptions {
		c.mu.Unlock()
		c.sendError(req.ID, Errorf(CodeInvalidField, "at most %d subscriptions per connection", c.h.cfg.MaxSubscriptions))
		return
	}
	c.mu.Unlock()
	t := c.run.join(c.h, key, req, c, func() {
		// The ack goes out before the snapshot, under the topic's lock, so
		// no published frame overtakes either. (Orders: once the stream is
		// open, from the feed.)
		if req.Channel != ChannelOrders {
			c.sendFrame(Frame{Type: FrameAck, ID: req.ID, Channel: req.Channel, Symbol: req.Symbol})
		}
	})
	c.mu.Lock()
	c.subs[key] = t
	c.mu.Unlock()
}

// join adds c to the topic key, creating it and starting its feed when it
// is the first subscriber; first runs before the snapshot is queued.
func (r *running) join(h *Hub, key string, req Request, c *Conn, first func()) *topic {
	r.mu.Lock()
	t := r.topics[key]
	if t == nil {
		ctx, cancel := context.WithCancel(r.ctx)
		t = &topic{key: key, cancel: cancel, subs: map[*Conn]struct{}{}}
		r.topics[key] = t
		h.m.topics.Inc()
		// Built here, not in the goroutine, so the snapshot function is
		// in place before the first subscriber joins.
		run := h.feedOf(t, req, c)
		go h.feed(ctx, t, run)
	}
	t.mu.Lock()
	r.mu.Unlock()
	first()
	if t.snapshot != nil {
		for _, b := range t.snapshot() {
			c.enqueue(b)
		}
	}
	t.subs[c] = struct{}{}
	t.mu.Unlock()
	return t
}

// leave removes c from t; the last subscriber out stops the feed.
func (r *running) leave(t *topic, c *Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t.mu.Lock()
	delete(t.subs, c)
	empty := len(t.subs) == 0
	t.mu.Unlock()
	if empty && r.topics[t.key] == t {
		delete(r.topics, t.key)
		t.cancel()
	}
}

// feed runs a topic's source until ctx ends, retrying failed streams with
// backoff.
func (h *Hub) feed(ctx context.Context, t *topic, run func(ctx context.Context) error) {
	defer h.m.topics.Dec()
	retry := &backoff.ExponentialBackOff{InitialInterval: 200 * time.Millisecond, Multiplier: 2, MaxInterval: 5 * time.Second}
	for ctx.Err() == nil {
		start := time.Now()
		err := run(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > 10*time.Second {
			retry.Reset()
		}
		wait := retry.NextBackOff()
		h.log.Warn("feed failed; retrying", zap.String("topic", t.key), zap.Duration("backoff", wait), zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// feedOf is the source of a topic: one run of it (until ctx ends or the
// source fails).
func (h *Hub) feedOf(t *topic, req Request, c *Conn) (run func(ctx context.Context) error) {
	switch req.Channel {
	case ChannelTrades:
		run = h.tradesFeed(t, req.Symbol)
	case ChannelBook:
		run = h.bookFeed(t, req.Symbol, req.Depth)
	case ChannelCandles:
		run = h.candlesFeed(t, req.Symbol, req.Interval)
	case ChannelOrders:
		var acked sync.Once
		run = func(ctx context.Context) error {
			opened := func() {
				acked.Do(func() { c.sendFrame(Frame{Type: FrameAck, ID: req.ID, Channel: ChannelOrders}) })
			}
			return h.orders.Updates(ctx, c.key.Account, opened, func(u OrderUpdate) {
				t.publish(encode(Frame{Type: FrameOrder, Channel: ChannelOrders, Symbol: u.Symbol, Data: u}))
			})
		}
	case ChannelMesh:
		run = h.meshFeed(t)
	}
	return run
}

// tradesFeed streams a symbol's trades from matching, starting with the
// last RecentTrades ones, and resumes after a failure where it stopped.
func (h *Hub) tradesFeed(t *topic, symbol string) func(context.Context) error {
	n := h.cfg.RecentTrades
	var (
		mu     sync.Mutex
		recent []Trade
		next   uint64 // next sequence wanted; 0: not started
	)
	t.setSnapshot(func() [][]byte {
		mu.Lock()
		defer mu.Unlock()
		return [][]byte{encode(Frame{Type: FrameTrades, Channel: ChannelTrades, Symbol: symbol, Data: append([]Trade{}, recent...)})}
	})
	return func(ctx context.Context) error {
		if next == 0 {
			// Start with the last n trades. Always from a sequence (1 when
			// there is no trade yet), never "from now": a trade made while
			// the stream is being opened is not lost.
			cctx, cancel := context.WithTimeout(ctx, h.cfg.CallTimeout)
			b, err := h.md.Book(cctx, symbol, 1)
			cancel()
			next = 1
			if err == nil && b.LastTradeSeq > uint64(n) {
				next = b.LastTradeSeq - uint64(n) + 1
			}
		}
		return h.md.Trades(ctx, symbol, next, func(tr Trade) {
			b := encode(Frame{Type: FrameTrade, Channel: ChannelTrades, Symbol: symbol, Data: tr})
			t.mu.Lock() // recent and the subscribers change together
			mu.Lock()
			recent = append(recent, tr)
			if len(recent) > n {
				recent = append(recent[:0], recent[len(recent)-n:]...)
			}
			next = tr.Sequence + 1
			mu.Unlock()
			for c := range t.subs {
				c.enqueue(b)
			}
			t.mu.Unlock()
		})
	}
}

// bookFeed reads the book every BookInterval and publishes changes.
func (h *Hub) bookFeed(t *topic, symbol string, depth int) func(context.Context) error {
	var last []byte
	return func(ctx context.Context) error {
		tick := time.NewTicker(h.cfg.BookInterval)
		defer tick.Stop()
		for {
			cctx, cancel := context.WithTimeout(ctx, h.cfg.CallTimeout)
			b, err := h.md.Book(cctx, symbol, depth)
			cancel()
			if err != nil {
				return err
			}
			data, _ := json.Marshal(b)
			if !bytes.Equal(data, last) {
				last = data
				f := encode(Frame{Type: FrameBook, Channel: ChannelBook, Symbol: symbol, Data: json.RawMessage(data)})
				t.setSnapshot(func() [][]byte { return [][]byte{f} })
				t.publish(f)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
		}
	}
}

// candlesFeed keeps the last CandleHistory candles, refreshes the newest
// every CandleInterval and publishes each candle that changed.
func (h *Hub) candlesFeed(t *topic, symbol, interval string) func(context.Context) error {
	var history []Candle
	return func(ctx context.Context) error {
		tick := time.NewTicker(h.cfg.CandleInterval)
		defer tick.Stop()
		n := h.cfg.CandleHistory
		for {
			cctx, cancel := context.WithTimeout(ctx, h.cfg.CallTimeout)
			cs, err := h.md.Candles(cctx, symbol, interval, n)
			cancel()
			if err != nil {
				return err
			}
			var changed []Candle
			history, changed = mergeCandles(history, cs, h.cfg.CandleHistory)
			if n > 2 || len(changed) > 0 {
				snap := encode(Frame{Type: FrameCandles, Channel: ChannelCandles, Symbol: symbol, Data: append([]Candle{}, history...)})
				t.setSnapshot(func() [][]byte { return [][]byte{snap} })
			}
			if n > 2 {
				// The first read: subscribers that joined before it get
				// the history now.
				t.publish(encode(Frame{Type: FrameCandles, Channel: ChannelCandles, Symbol: symbol, Data: history}))
			} else {
				for _, cd := range changed {
					t.publish(encode(Frame{Type: FrameCandle, Channel: ChannelCandles, Symbol: symbol, Data: cd}))
				}
			}
			n = 2 // then only the newest two: the last closed and the partial one
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
		}
	}
}

// mergeCandles folds fresh candles into history by open time; changed are
// the fresh ones that are new or differ.
func mergeCandles(history, fresh []Candle, keep int) (out, changed []Candle) {
	idx := map[int64]int{}
	for i, c := range history {
		idx[c.OpenTime] = i
	}
	for _, c := range fresh {
		if i, ok := idx[c.OpenTime]; ok {
			if history[i] != c {
				history[i] = c
				changed = append(changed, c)
			}
			continue
		}
		if len(history) > 0 && c.OpenTime < history[len(history)-1].OpenTime {
			continue // older than what we hold: not news
		}
		idx[c.OpenTime] = len(history)
		history = append(history, c)
		changed = append(changed, c)
	}
	if len(history) > keep {
		history = append(history[:0], history[len(history)-keep:]...)
	}
	return history, changed
}

// meshFeed follows the coordinator's Watch and publishes a fresh snapshot
// after events (at most every 100ms) and at least every MeshRefresh.
func (h *Hub) meshFeed(t *topic) func(context.Context) error {
	var last []byte
	return func(ctx context.Context) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		dirty := make(chan string, 1)
		werr := make(chan error, 1)
		go func() {
			werr <- h.mesh.Watch(ctx, func(ev string) {
				select {
				case dirty <- ev:
				default:
				}
			})
		}()
		refresh := time.NewTicker(h.cfg.MeshRefresh)
		defer refresh.Stop()
		lastEvent := ""
		for {
			cctx, ccancel := context.WithTimeout(ctx, h.cfg.CallTimeout)
			st, err := h.mesh.Snapshot(cctx)
			ccancel()
			if err != nil {
				return err
			}
			st.LastEvent = lastEvent
			at := st.At
			st.At = time.Time{}
			data, _ := json.Marshal(st)
			if !bytes.Equal(data, last) {
				last = data
				st.At = at
				f := encode(Frame{Type: FrameMesh, Channel: ChannelMesh, Data: st})
				t.setSnapshot(func() [][]byte { return [][]byte{f} })
				t.publish(f)
			}
			select {
			case <-ctx.Done():
				return nil
			case err := <-werr:
				return err
			case lastEvent = <-dirty:
				time.Sleep(100 * time.Millisecond) // let a burst of events settle
			case <-refresh.C:
			}
		}
	}
}
