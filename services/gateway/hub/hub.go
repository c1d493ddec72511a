package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Close codes the gateway uses besides the standard ones.
const (
	// CloseSlowConsumer: the client did not read fast enough and its send
	// buffer filled; it is disconnected so it never slows the others.
	CloseSlowConsumer websocket.StatusCode = 4001
)

// Config tunes a Hub; zero values take the defaults.
type Config struct {
	// SendBuffer is how many frames may wait for one connection; one more
	// and it is closed with CloseSlowConsumer. Default 1024 (a burst of
	// trades from one aggressive order must fit).
	SendBuffer int
	// WriteTimeout bounds writing one frame; a client that does not take
	// it in time is closed as slow. Default 5s.
	WriteTimeout time.Duration
	// Workers and Queue size the pool that runs calls to other services.
	// A full queue answers CodeBusy. Defaults 16 and 1024.
	Workers, Queue int
	// BookInterval is how often a subscribed book is read; a change is
	// published. Default 200ms.
	BookInterval time.Duration
	// CandleInterval is how often subscribed candles are read. Default 1s.
	CandleInterval time.Duration
	// CandleHistory is how many candles a candles subscription starts
	// with. Default 120.
	CandleHistory int
	// RecentTrades is how many trades a trades subscription starts with.
	// Default 50.
	RecentTrades int
	// MaxSubscriptions per connection. Default 100.
	MaxSubscriptions int
	// CallTimeout bounds each call to another service. Default 10s.
	CallTimeout time.Duration
	// MeshRefresh is the longest the mesh view goes unrefreshed without
	// events. Default 5s.
	MeshRefresh time.Duration
	Logger      *zap.Logger
	Metrics     prometheus.Registerer
}

func (c *Config) defaults() {
	setDefault(&c.SendBuffer, 1024)
	setDefault(&c.WriteTimeout, 5*time.Second)
	setDefault(&c.Workers, 16)
	setDefault(&c.Queue, 1024)
	setDefault(&c.BookInterval, 200*time.Millisecond)
	setDefault(&c.CandleInterval, time.Second)
	setDefault(&c.CandleHistory, 120)
	setDefault(&c.RecentTrades, 50)
	setDefault(&c.MaxSubscriptions, 100)
	setDefault(&c.CallTimeout, 10*time.Second)
	setDefault(&c.MeshRefresh, 5*time.Second)
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
}

func setDefault[T int | time.Duration](p *T, v T) {
	if *p <= 0 {
		*p = v
	}
}

// Hub serves WebSocket clients. It is started (Start) when the gateway's
// component activates and stopped (Stop) when it unloads; stopping closes
// every connection with 1001 (going away).
type Hub struct {
	cfg    Config
	md     MarketData
	orders Orders
	mesh   Mesh
	keys   *Keys
	log    *zap.Logger
	m      *metrics

	mu  sync.Mutex
	run *running
}

// running is one activation's state.
type running struct {
	ctx    context.Context
	cancel context.CancelFunc
	jobs   chan func()
	wg     sync.WaitGroup

	mu     sync.Mutex
	topics map[string]*topic
	conns  map[*Conn]struct{}
}

// New returns a stopped hub. orders may be nil (order calls then answer
// CodeUnavailable).
func New(cfg Config, keys *Keys, md MarketData, orders Orders, mesh Mesh) *Hub {
	cfg.defaults()
	return &Hub{cfg: cfg, md: md, orders: orders, mesh: mesh, keys: keys, log: cfg.Logger, m: newMetrics(cfg.Metrics)}
}

// Start starts the worker pool; the hub then accepts connections.
func (h *Hub) Start() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.run != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{ctx: ctx, cancel: cancel, jobs: make(chan func(), h.cfg.Queue),
		topics: map[string]*topic{}, conns: map[*Conn]struct{}{}}
	for range h.cfg.Workers {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case job := <-r.jobs:
					job()
				}
			}
		}()
	}
	h.run = r
}

// Stop closes every connection (1001, going away), ends the feeds and the
// workers, and waits for the workers until ctx ends.
func (h *Hub) Stop(ctx context.Context) {
	h.mu.Lock()
	r := h.run
	h.run = nil
	h.mu.Unlock()
	if r == nil {
		return
	}
	r.mu.Lock()
	for c := range r.conns {
		c.closeWith(websocket.StatusGoingAway, "gateway unloading")
	}
	r.mu.Unlock()
	r.cancel()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func (h *Hub) current() *running {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.run
}

// Connections is the number of open connections.
func (h *Hub) Connections() int {
	r := h.current()
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

// ServeHTTP upgrades an authenticated request to a WebSocket connection
// and serves it until it closes. Without a valid key the upgrade is
// refused with 401.
func (h *Hub) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	key := h.keys.Lookup(SecretFromRequest(req))
	if key == nil {
		h.m.refused.Inc()
		http.Error(w, "missing or unknown API key: send Authorization: Bearer <key>, X-API-Key or ?api_key=", http.StatusUnauthorized)
		return
	}
	r := h.current()
	if r == nil {
		http.Error(w, "gateway not active", http.StatusServiceUnavailable)
		return
	}
	ws, err := websocket.Accept(w, req, nil)
	if err != nil {
		return // Accept wrote the HTTP error
	}
	ws.SetReadLimit(MaxFrameBytes)
	c := &Conn{h: h, run: r, ws: ws, key: key, send: make(chan []byte, h.cfg.SendBuffer), subs: map[string]*topic{}}
	c.ctx, c.cancel = context.WithCancel(r.ctx)
	r.mu.Lock()
	if h.current() != r { // stopped meanwhile
		r.mu.Unlock()
		ws.Close(websocket.StatusGoingAway, "gateway unloading")
		return
	}
	r.conns[c] = struct{}{}
	r.mu.Unlock()
	h.m.conns.Inc()
	defer func() {
		c.closeWith(websocket.StatusNormalClosure, "")
		c.unsubscribeAll()
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
		h.m.conns.Dec()
	}()
	go c.writer()
	c.sendFrame(Frame{Type: FrameWelcome, Data: map[string]any{"account": key.Account, "key": key.Name,
		"rate": key.Rate, "burst": key.Burst, "send_buffer": h.cfg.SendBuffer}})
	c.reader()
}

// submit runs job on the worker pool; false when the queue is full.
func (r *running) submit(job func()) bool {
	select {
	case r.jobs <- job:
		return true
	default:
		return false
	}
}

// Conn is one client connection.
type Conn struct {
	h    *Hub
	run  *running
	ws   *websocket.Conn
	key  *Key
	send chan []byte

	ctx       context.Context // ends when the connection closes
	cancel    context.CancelFunc
	closeOnce sync.Once

	mu   sync.Mutex
	subs map[string]*topic
}

// enqueue queues a frame without ever blocking: a full buffer closes the
// connection as a slow consumer.
func (c *Conn) enqueue(b []byte) bool {
	if c.ctx.Err() != nil {
		return false
	}
	select {
	case c.send <- b:
		return true
	default:
		c.h.m.slowConsumer()
		c.closeWith(CloseSlowConsumer, fmt.Sprintf("slow consumer: %d frames queued and unread", cap(c.send)))
		return false
	}
}

func (c *Conn) sendFrame(f Frame) {
	f.SentAt = time.Now().UnixNano()
	b, err := json.Marshal(f)
	if err != nil {
		c.h.log.Error("encode frame", zap.Error(err))
		return
	}
	c.enqueue(b)
}

func (c *Conn) sendError(id string, e *Error) {
	c.h.m.errors.WithLabelValues(e.Code).Inc()
	c.sendFrame(Frame{Type: FrameError, ID: id, Code: e.Code, Field: e.Field, Message: e.Message})
}

// closeWith closes the connection once, with a code and reason, without
// blocking the caller (a publisher must never wait for one client).
func (c *Conn) closeWith(code websocket.StatusCode, reason string) {
	c.closeOnce.Do(func() {
		if code != websocket.StatusNormalClosure {
			c.h.log.Info("closing connection", zap.String("key", c.key.Name), zap.Int("code", int(code)), zap.String("reason", reason))
		}
		go func() {
			_ = c.ws.Close(code, reason)
			c.cancel()
		}()
		// Stop taking frames at once; the writer stops too.
		c.cancel()
	})
}

func (c *Conn) writer() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case b := <-c.send:
			ctx, cancel := context.WithTimeout(context.Background(), c.h.cfg.WriteTimeout)
			err := c.ws.Write(ctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					c.h.m.slowConsumer()
					c.closeWith(CloseSlowConsumer, fmt.Sprintf("slow consumer: a frame was not taken in %s", c.h.cfg.WriteTimeout))
				} else {
					c.closeWith(websocket.StatusInternalError, "write failed")
				}
				return
			}
			c.h.m.frames.Inc()
		}
	}
}

func (c *Conn) reader() {
	for {
		// Not c.ctx: cancelling a Read's context makes the library close
		// the connection with its own code; closeWith picks the code.
		typ, b, err := c.ws.Read(context.Background())
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			c.sendError("", Errorf(CodeBadJSON, "binary frames are not part of the protocol: send JSON text frames"))
			continue
		}
		req, perr := Decode(b)
		if perr != nil {
			c.sendError(req.ID, perr)
			continue
		}
		c.h.m.requests.WithLabelValues(req.Type).Inc()
		if req.Type != TypePing && !c.key.Allow() {
			c.sendError(req.ID, Errorf(CodeRateLimited, "key %s: more than %g requests/s (burst %d)", c.key.Name, c.key.Rate, c.key.Burst))
			continue
		}
		c.handle(req)
	}
}

func (c *Conn) handle(req Request) {
	switch req.Type {
	case TypePing:
		c.sendFrame(Frame{Type: FramePong, ID: req.ID})
	case TypeSubscribe:
		c.subscribe(req)
	case TypeUnsubscribe:
		key := topicKey(req, c)
		c.mu.Lock()
		t := c.subs[key]
		delete(c.subs, key)
		c.mu.Unlock()
		if t != nil {
			c.run.leave(t, c)
		}
		c.sendFrame(Frame{Type: FrameAck, ID: req.ID, Channel: req.Channel, Symbol: req.Symbol})
	case TypeSubmit, TypeReplace, TypeCancel:
		c.order(req)
	}
}

// order runs a submit, replace or cancel through orders on the pool.
func (c *Conn) order(req Request) {
	acct := c.key.Account
	claimed := req.Account
	if req.Order != nil && req.Order.Account != nil {
		claimed = req.Order.Account
	}
	if claimed != nil && *claimed != acct {
		c.sendError(req.ID, Errorf(CodeForbidden, "key %s acts for account %s only, not account %s", c.key.Name, acct, *claimed))
		return
	}
	if c.h.orders == nil {
		c.sendError(req.ID, Errorf(CodeUnavailable, "orders service not configured on this gateway"))
		return
	}
	if req.Type == TypeSubmit && req.Order.ClientOrderID == "" {
		req.Order.ClientOrderID = NewClientOrderID()
	}
	job := func() {
		ctx, cancel := context.WithTimeout(c.ctx, c.h.cfg.CallTimeout)
		defer cancel()
		var u OrderUpdate
		var err error
		switch req.Type {
		case TypeSubmit:
			u, err = c.h.orders.Submit(ctx, NewOrderFor{NewOrder: *req.Order, Account: acct})
		case TypeReplace:
			u, err = c.h.orders.Replace(ctx, acct, req.OrderID, req.Price, req.Quantity)
		case TypeCancel:
			u, err = c.h.orders.Cancel(ctx, acct, req.OrderID)
		}
		if err != nil {
			c.sendError(req.ID, asError(err))
			return
		}
		c.sendFrame(Frame{Type: FrameAck, ID: req.ID, Data: u})
	}
	if !c.run.submit(job) {
		c.sendError(req.ID, Errorf(CodeBusy, "gateway worker queue full (%d); retry", c.h.cfg.Queue))
	}
}

// NewClientOrderID is an idempotency key for a submit that has none.
func NewClientOrderID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "gw-" + hex.EncodeToString(b[:])
}

// asError is err as an error frame's content.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return Errorf(CodeUnavailable, "no answer in time: %v", err)
	}
	return Errorf(CodeInternal, "%v", err)
}

func (c *Conn) unsubscribeAll() {
	c.mu.Lock()
	subs := c.subs
	c.subs = map[string]*topic{}
	c.mu.Unlock()
	for _, t := range subs {
		c.run.leave(t, c)
	}
}
