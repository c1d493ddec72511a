package oms

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tradsys/mesh/pkg/fixed"
	"go.uber.org/zap"
)

// Config configures an OMS.
type Config struct {
	Dir         string
	NoSync      bool // benchmarks only
	KeepUpdates int
	Risk        Risk
	Matching    Matching
	Logger      *zap.Logger
	// ReconcileEvery is how often unresolved orders are retried.
	ReconcileEvery time.Duration
	// Metrics (nil: a private, unregistered set).
	Metrics *Metrics
}

// OMS is the order management system: the store, the trade followers and
// the reconciler. Open starts it, Close stops it.
type OMS struct {
	cfg   Config
	log   *zap.Logger
	store *Store

	inflightMu sync.Mutex
	inflight   map[clientKey]chan struct{}

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	followMu  sync.Mutex
	following map[string]bool
	// caughtUp wakes waiters when a symbol's applied trades advance.
	markMu   sync.Mutex
	markWake chan struct{}
}

// Open loads the store in cfg.Dir, marks orders whose submit outcome is
// unknown (NEW) for reconciliation and starts following every instrument's
// trades.
func Open(cfg Config) (*OMS, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.ReconcileEvery <= 0 {
		cfg.ReconcileEvery = 500 * time.Millisecond
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	st, err := OpenStore(cfg.Dir, cfg.NoSync, cfg.KeepUpdates)
	if err != nil {
		return nil, err
	}
	st.metrics = cfg.Metrics
	m := &OMS{cfg: cfg, log: cfg.Logger, store: st, inflight: map[clientKey]chan struct{}{},
		following: map[string]bool{}, markWake: make(chan struct{})}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	// Orders still NEW were between recording and matching's answer when
	// the process stopped: settle them against matching.
	if err := st.commit(func(t *txn) error {
		for _, o := range t.st.orders {
			if o.Status == New && o.Unresolved == "" {
				o.Unresolved = "orders restarted before matching answered"
				t.orders[o.ID] = true
			}
		}
		return nil
	}); err != nil {
		st.Close()
		return nil, err
	}
	st.mu.RLock()
	for sym := range st.st.instruments {
		m.follow(sym)
	}
	st.mu.RUnlock()
	m.wg.Add(1)
	go m.reconciler()
	return m, nil
}

// Close stops the followers and the reconciler and closes the store.
func (m *OMS) Close() error {
	m.cancel()
	m.wg.Wait()
	return m.store.Close()
}

// ---- instruments ----

// CreateInstrument defines a symbol.
func (m *OMS) CreateInstrument(in Instrument) (Instrument, error) {
	if err := in.Check(); err != nil {
		return Instrument{}, err
	}
	if in.Status == 0 {
		in.Status = Trading
	}
	err := m.store.commit(func(t *txn) error {
		if _, ok := t.st.instruments[in.Symbol]; ok {
			return fmt.Errorf("%w: %s", ErrSymbolExists, in.Symbol)
		}
		in.CreatedAt, in.UpdatedAt = t.now, t.now
		c := in
		t.st.instruments[in.Symbol] = &c
		t.instruments[in.Symbol] = true
		return nil
	})
	if err != nil {
		return Instrument{}, err
	}
	m.follow(in.Symbol)
	return in, nil
}

// Instrument returns one instrument.
func (m *OMS) Instrument(symbol string) (Instrument, error) {
	m.store.mu.RLock()
	defer m.store.mu.RUnlock()
	in, ok := m.store.st.instruments[symbol]
	if !ok {
		return Instrument{}, fmt.Errorf("%w: %s", ErrUnknownSymbol, symbol)
	}
	return *in, nil
}

// Instruments lists the instruments by symbol.
func (m *OMS) Instruments() []Instrument {
	m.store.mu.RLock()
	out := make([]Instrument, 0, len(m.store.st.instruments))
	for _, in := range m.store.st.instruments {
		out = append(out, *in)
	}
	m.store.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Symbol < out[j].Symbol })
	return out
}

// SetInstrumentStatus halts or resumes a symbol.
func (m *OMS) SetInstrumentStatus(symbol string, s InstrumentStatus) (Instrument, error) {
	var out Instrument
	err := m.store.commit(func(t *txn) error {
		in, ok := t.st.instruments[symbol]
		if !ok {
			return fmt.Errorf("%w: %s", ErrUnknownSymbol, symbol)
		}
		in.Status, in.UpdatedAt = s, t.now
		t.instruments[symbol] = true
		out = *in
		return nil
	})
	return out, err
}

// ---- orders ----

// SubmitRequest is a new order in decimals.
type SubmitRequest struct {
	Account, ClientOrderID, Symbol string
	Side                           Side
	Type                           OrderType
	Price, Quantity                string // Price empty for market orders
}

// Submit places an order: checks it on the instrument's grid, asks risk,
// records it durably, sends it to matching and records the outcome. A
// retry with the same account and client order id answers the first order
// (duplicate true).
func (m *OMS) Submit(ctx context.Context, r SubmitRequest) (o Order, duplicate bool, err error) {
	in, err := m.Instrument(r.Symbol)
	if err != nil {
		return Order{}, false, err
	}
	var price fixed.Decimal
	var ticks int64
	if r.Type != Market {
		if price, err = ParseDecimal("price", r.Price); err != nil {
			return Order{}, false, err
		}
		if ticks, err = in.Ticks("price", price); err != nil {
			return Order{}, false, err
		}
	}
	qty, err := ParseDecimal("quantity", r.Quantity)
	if err != nil {
		return Order{}, false, err
	}
	lots, err := in.Lots("quantity", qty)
	if err != nil {
		return Order{}, false, err
	}

	// Idempotency: one submit per (account, client order id) at a time;
	// a later one answers the recorded order.
	key := clientKey{r.Account, r.ClientOrderID}
	for {
		if prev, ok := m.byClient(key); ok {
			if fields := differences(prev, r, price, qty); len(fields) > 0 {
				return Order{}, false, &ClientOrderIDReusedError{Account: r.Account, ClientOrderID: r.ClientOrderID, OrderID: prev.ID, Fields: fields}
			}
			m.cfg.Metrics.orders.WithLabelValues("duplicate").Inc()
			return prev, true, nil
		}
		m.inflightMu.Lock()
		wait, busy := m.inflight[key]
		if !busy {
			m.inflight[key] = make(chan struct{})
		}
		m.inflightMu.Unlock()
		if !busy {
			break
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return Order{}, false, ctx.Err()
		}
	}
	defer func() {
		m.inflightMu.Lock()
		close(m.inflight[key])
		delete(m.inflight, key)
		m.inflightMu.Unlock()
	}()
	if in.Status == Halted {
		return Order{}, false, fmt.Errorf("%w: %s", ErrHalted, r.Symbol)
	}

	order := Order{ClientOrderID: r.ClientOrderID, Account: r.Account, Symbol: r.Symbol, Side: r.Side, Type: r.Type,
		Price: price, Quantity: qty}
	pos, open := m.exposure(r.Account, r.Symbol, r.Side)
	// The order is recorded (durably: it must be before matching sees it)
	// while risk checks it, so the write's fsync and the risk call overlap.
	var acct uint64
	recorded := m.store.commitAsync(func(t *txn) error {
		p := t.create(&order)
		acct = t.account(p.Account)
		return nil
	})
	failures, rerr := m.cfg.Risk.Validate(ctx, RiskCheck{Account: r.Account, Symbol: r.Symbol, Side: r.Side, Price: price,
		Quantity: qty, TickSize: in.TickSize, LotSize: in.LotSize, Position: pos, OpenQuantity: open})
	if err := recorded(); err != nil {
		return Order{}, false, err
	}
	if rerr != nil {
		failures = []string{"risk check unavailable: " + rerr.Error()}
	}
	if len(failures) > 0 {
		// Kept (NEW then REJECTED) so GetOrder and a retry find it.
		err := m.store.commit(func(t *txn) error {
			p := t.st.orders[order.ID]
			p.RejectReasons = failures
			return t.move(p, Rejected, "risk: "+joinReasons(failures))
		})
		if err != nil {
			return Order{}, false, err
		}
		m.cfg.Metrics.orders.WithLabelValues("rejected").Inc()
		return m.mustGet(order.ID), false, nil
	}

	exec, merr := m.cfg.Matching.Submit(ctx, MatchOrder{Symbol: r.Symbol, ID: order.ID, Account: acct, Side: r.Side,
		Type: r.Type, Ticks: ticks, Lots: lots})
	if merr != nil {
		m.submitFailed(ctx, order.ID, merr)
		o := m.mustGet(order.ID)
		m.cfg.Metrics.orders.WithLabelValues(strings.ToLower(o.Status.String())).Inc()
		return o, false, nil
	}
	// Matching's answer is durable in matching's journal: the order's
	// outcome is answered once applied here, not after our own fsync
	// (one fewer on every order's path), when matching's durable state
	// holds it: the order rests in the book, or it traded (its trades
	// are on the trade stream). A crash before our fsync leaves the order
	// NEW, and the reconciler reads the outcome back from matching. Two
	// outcomes wait to be durable instead: an order that ended without
	// trading or resting (an IOC or market order with nothing to match),
	// which matching remembers only in memory (GetOrder's finished
	// orders), and quantity matching cancelled of OTHER orders (self-trade
	// prevention), known only from this answer.
	apply := func(t *txn) error { return t.applyExecution(order.ID, &in, exec) }
	commit := m.store.commitApplied
	if exec.RestingLots == 0 && len(exec.Trades) == 0 {
		commit = m.store.commit
	}
	for _, c := range exec.Cancellations {
		if c.OrderID != order.ID {
			commit = m.store.commit
		}
	}
	if err := commit(apply); err != nil {
		return Order{}, false, err
	}
	m.cfg.Metrics.orders.WithLabelValues("accepted").Inc()
	return m.mustGet(order.ID), false, nil
}

// differences names the fields in which a submit differs from the order
// its client order id already names, as first submitted (a replace since
// does not make the original submit's retry a different one). Decimals
// compare by value: "0.20" repeats "0.2".
func differences(prev Order, r SubmitRequest, price, qty fixed.Decimal) []string {
	origPrice, origQty := prev.Price, prev.Quantity
	if len(prev.History) > 0 && prev.History[0].Status == New {
		origPrice, origQty = prev.History[0].Price, prev.History[0].Quantity
	}
	var fields []string
	if r.Symbol != prev.Symbol {
		fields = append(fields, "symbol")
	}
	if r.Side != prev.Side {
		fields = append(fields, "side")
	}
	if r.Type != prev.Type {
		fields = append(fields, "type")
	}
	if price != origPrice {
		fields = append(fields, "price")
	}
	if qty != origQty {
		fields = append(fields, "quantity")
	}
	return fields
}

// submitFailed records a matching failure: a definite refusal rejects the
// order; an ambiguous one leaves it NEW and unresolved for the reconciler,
// which is tried once at once.
func (m *OMS) submitFailed(ctx context.Context, id uint64, merr error) {
	var refused *RefusedError
	definite := errors.As(merr, &refused) || errors.Is(merr, ErrNotSent)
	err := m.store.commit(func(t *txn) error {
		o := t.st.orders[id]
		if definite {
			o.RejectReasons = []string{merr.Error()}
			return t.move(o, Rejected, merr.Error())
		}
		o.Unresolved = merr.Error()
		t.orders[id] = true
		return nil
	})
	if err != nil {
		m.log.Error("recording a matching failure", zap.Uint64("order_id", id), zap.Error(err))
		return
	}
	if !definite {
		m.log.Warn("matching's answer unknown; reconciling", zap.Uint64("order_id", id), zap.Error(merr))
		m.reconcile(ctx, id)
	}
}

// create records a new order (NEW) with a fresh id; order.ID is set.
func (t *txn) create(order *Order) *Order {
	o := *order
	o.ID = t.st.nextOrderID
	t.st.nextOrderID++
	o.CreatedAt = t.now
	t.st.orders[o.ID] = &o
	t.st.byClient[clientKey{o.Account, o.ClientOrderID}] = o.ID
	t.event(&o, Event{Status: New, Price: o.Price, Quantity: o.Quantity})
	order.ID = o.ID
	return &o
}

// account is the account's matching number (assigned on first use).
func (t *txn) account(name string) uint64 {
	n, ok := t.st.accounts[name]
	if !ok {
		n = t.st.nextAccount
		t.st.nextAccount++
		t.st.accounts[name] = n
		t.accounts[name] = true
	}
	return n
}

// applyExecution records what matching did with a submit or replace of
// order id: accepted, its trades (each at most once), and the quantity
// matching cancelled.
func (t *txn) applyExecution(id uint64, in *Instrument, e Execution) error {
	o := t.st.orders[id]
	if o.Status == New {
		if err := t.move(o, Accepted, ""); err != nil {
			return err
		}
	}
	o.Unresolved = ""
	t.orders[id] = true
	for _, tr := range e.Trades {
		t.applyTrade(in, tr)
	}
	for _, c := range e.Cancellations {
		co, ok := t.st.orders[c.OrderID]
		if !ok || co.Symbol != in.Symbol || !co.Status.Open() {
			continue
		}
		reason := "unfilled remainder cancelled"
		if c.Cause == CancelSelfTrade {
			reason = "cancelled by self-trade prevention"
		}
		if co.Status == New {
			_ = t.move(co, Accepted, "")
		}
		if err := t.move(co, Canceled, reason); err != nil {
			return err
		}
	}
	return nil
}

// applyTrade applies one matching trade to the orders of this service
// that took part, once: a trade already applied is skipped.
func (t *txn) applyTrade(in *Instrument, tr Trade) {
	mark := t.st.trades[tr.Symbol]
	if mark == nil {
		mark = &tradeMark{}
		t.st.trades[tr.Symbol] = mark
	}
	if mark.seen(tr.Seq) {
		return
	}
	mark.add(tr.Seq)
	t.trades[tr.Symbol] = true
	price, okP := in.Price(tr.Ticks)
	qty, okQ := in.Quantity(tr.Lots)
	if !okP || !okQ {
		return // not representable: cannot be one of our orders' trades
	}
	makerSide := Buy
	if tr.TakerSide == Buy {
		makerSide = Sell
	}
	for _, side := range []struct {
		id      uint64
		maker   bool
		side    Side
		account uint64
	}{{tr.TakerID, false, tr.TakerSide, tr.TakerAccount}, {tr.MakerID, true, makerSide, tr.MakerAccount}} {
		o, ok := t.st.orders[side.id]
		if !ok || o.Symbol != tr.Symbol {
			continue
		}
		if o.Side != side.side || side.account != 0 && side.account != t.st.accounts[o.Account] {
			// Not this order's trade: matching also takes orders from
			// other clients (tools, benchmarks) with ids of their own
			// choosing, and one of them used this order's id.
			continue
		}
		t.fill(o, Fill{TradeSeq: tr.Seq, Price: price, Quantity: qty, Maker: side.maker, ExecutedAt: tr.ExecutedAt})
	}
}

// fill adds a fill to an order and its account's position.
func (t *txn) fill(o *Order, f Fill) {
	if o.Status == New {
		_ = t.move(o, Accepted, "")
	}
	notional, _ := f.Price.Mul(f.Quantity)
	t.fills++
	o.Filled += f.Quantity
	o.FilledNotional += notional
	status := o.Status
	reason := ""
	switch {
	case !status.Open():
		// A fill after the order was closed (an ambiguous submit settled
		// before its trade arrived): kept, never dropped.
		reason = "fill after the order was closed"
	case o.Filled >= o.Quantity:
		status = Filled
	default:
		status = PartiallyFilled
	}
	ff := f
	t.event(o, Event{Status: status, Reason: reason, Fill: &ff})
	k := posKey{o.Account, o.Symbol}
	p := t.st.positions[k]
	if p == nil {
		p = &Position{Account: o.Account, Symbol: o.Symbol}
		t.st.positions[k] = p
	}
	if o.Side == Buy {
		p.Bought += f.Quantity
		p.BoughtNotional += notional
	} else {
		p.Sold += f.Quantity
		p.SoldNotional += notional
	}
	p.UpdatedAt = t.now
	t.positions[k] = true
}

func joinReasons(rs []string) string {
	out := ""
	for i, r := range rs {
		if i > 0 {
			out += "; "
		}
		out += r
	}
	return out
}

// Cancel cancels the open quantity of an account's order.
func (m *OMS) Cancel(ctx context.Context, account string, id uint64) (Order, error) {
	o, err := m.owned(account, id)
	if err != nil {
		return Order{}, err
	}
	if !o.Status.Open() || o.Status == New {
		return Order{}, fmt.Errorf("%w: order %d is %s", ErrNotOpen, id, o.Status)
	}
	_, cerr := m.cfg.Matching.Cancel(ctx, o.Symbol, id)
	if errors.Is(cerr, ErrNotFound) {
		// Not resting: it filled (the trade is on its way) meanwhile.
		return Order{}, fmt.Errorf("%w: order %d is no longer in the book", ErrNotOpen, id)
	}
	if cerr != nil {
		return Order{}, cerr
	}
	if err := m.store.commit(func(t *txn) error {
		p := t.st.orders[id]
		if !p.Status.Open() {
			return nil
		}
		return t.move(p, Canceled, "cancelled by the user")
	}); err != nil {
		return Order{}, err
	}
	return m.mustGet(id), nil
}

// Replace changes an open order's price and/or total quantity (checked by
// risk like a new order); an empty one stays as it is.
func (m *OMS) Replace(ctx context.Context, account string, id uint64, priceS, qtyS string) (Order, error) {
	o, err := m.owned(account, id)
	if err != nil {
		return Order{}, err
	}
	in, err := m.Instrument(o.Symbol)
	if err != nil {
		return Order{}, err
	}
	if in.Status == Halted {
		return Order{}, fmt.Errorf("%w: %s", ErrHalted, o.Symbol)
	}
	if !o.Status.Open() || o.Status == New || o.Type != Limit && o.Type != PostOnly {
		return Order{}, fmt.Errorf("%w: order %d is %s", ErrNotOpen, id, o.Status)
	}
	// Either may be empty: it stays as it is.
	price, qty := o.Price, o.Quantity
	if priceS != "" {
		if price, err = ParseDecimal("price", priceS); err != nil {
			return Order{}, err
		}
	}
	ticks, err := in.Ticks("price", price)
	if err != nil {
		return Order{}, err
	}
	if qtyS != "" {
		if qty, err = ParseDecimal("quantity", qtyS); err != nil {
			return Order{}, err
		}
	}
	if _, err := in.Lots("quantity", qty); err != nil {
		return Order{}, err
	}
	if qty <= o.Filled {
		return Order{}, &FieldError{Field: "quantity", Reason: fmt.Sprintf("%s is not above the filled quantity %s", qty.Text(), o.Filled.Text())}
	}
	openLots, _ := in.Lots("quantity", qty-o.Filled)
	pos, open := m.exposure(account, o.Symbol, o.Side)
	failures, rerr := m.cfg.Risk.Validate(ctx, RiskCheck{OrderID: id, Account: account, Symbol: o.Symbol, Side: o.Side,
		Price: price, Quantity: qty - o.Filled, TickSize: in.TickSize, LotSize: in.LotSize, Position: pos,
		OpenQuantity: open - o.Open()})
	if rerr != nil {
		return Order{}, fmt.Errorf("risk check unavailable: %w", rerr)
	}
	if len(failures) > 0 {
		return Order{}, &RiskRejectedError{Failures: failures}
	}
	exec, err := m.cfg.Matching.Replace(ctx, o.Symbol, id, ticks, openLots)
	if errors.Is(err, ErrNotFound) {
		return Order{}, fmt.Errorf("%w: order %d is no longer in the book", ErrNotOpen, id)
	}
	if err != nil {
		return Order{}, err
	}
	if err := m.store.commit(func(t *txn) error {
		p := t.st.orders[id]
		if !p.Status.Open() {
			return nil
		}
		t.resize(p, price, qty)
		t.event(p, Event{Status: p.Status, Reason: "replaced", Price: price, Quantity: qty})
		return t.applyExecution(id, &in, exec)
	}); err != nil {
		return Order{}, err
	}
	return m.mustGet(id), nil
}

// resize sets a replaced order's price and total quantity and moves the
// account's open quantity on that side by the change: event counts only
// what changes within it, and risk's position check reads that sum.
func (t *txn) resize(o *Order, price, qty fixed.Decimal) {
	prevOpen := o.Open()
	o.Price, o.Quantity = price, qty
	t.st.open[openKey{o.Account, o.Symbol, o.Side}] += o.Open() - prevOpen
}

// RiskRejectedError is a replace refused by risk.
type RiskRejectedError struct{ Failures []string }

func (e *RiskRejectedError) Error() string {
	return "risk rejected the replace: " + joinReasons(e.Failures)
}

func (m *OMS) owned(account string, id uint64) (Order, error) {
	o, err := m.Get(id)
	if err != nil {
		return Order{}, err
	}
	if o.Account != account {
		// Not found rather than "someone else's": ids are not secrets,
		// but another account's order is none of the caller's business.
		return Order{}, fmt.Errorf("%w: order %d of account %s", ErrUnknownOrder, id, account)
	}
	return o, nil
}

// Get returns an order with its history.
func (m *OMS) Get(id uint64) (Order, error) {
	m.store.mu.RLock()
	defer m.store.mu.RUnlock()
	o, ok := m.store.st.orders[id]
	if !ok {
		return Order{}, fmt.Errorf("%w: order %d", ErrUnknownOrder, id)
	}
	c := *o
	c.History = slices.Clone(o.History)
	c.RejectReasons = slices.Clone(o.RejectReasons)
	return c, nil
}

func (m *OMS) mustGet(id uint64) Order {
	o, _ := m.Get(id)
	return o
}

func (m *OMS) byClient(k clientKey) (Order, bool) {
	m.store.mu.RLock()
	id, ok := m.store.st.byClient[k]
	m.store.mu.RUnlock()
	if !ok {
		return Order{}, false
	}
	return m.mustGet(id), true
}

// exposure is the account's net position in the symbol and its open
// quantity on side.
func (m *OMS) exposure(account, symbol string, side Side) (pos, open fixed.Decimal) {
	m.store.mu.RLock()
	defer m.store.mu.RUnlock()
	if p := m.store.st.positions[posKey{account, symbol}]; p != nil {
		pos = p.Net()
	}
	return pos, m.store.st.open[openKey{account, symbol, side}]
}

// ListFilter selects orders.
type ListFilter struct {
	Account, Symbol string
	Statuses        []Status
	After, Before   time.Time // zero: unbounded
	PageSize        int
	PageToken       string
}

// List returns orders newest first (by id), one page, and the next page's
// token ("" on the last page).
func (m *OMS) List(f ListFilter) ([]Order, string, error) {
	below := uint64(0) // ids below this; 0: from the newest
	if f.PageToken != "" {
		n, err := strconv.ParseUint(f.PageToken, 36, 64)
		if err != nil || n == 0 {
			return nil, "", fmt.Errorf("%w: %q", ErrInvalidPageToken, f.PageToken)
		}
		below = n
	}
	m.store.mu.RLock()
	defer m.store.mu.RUnlock()
	ids := make([]uint64, 0, len(m.store.st.orders))
	for id, o := range m.store.st.orders {
		if below != 0 && id >= below {
			continue
		}
		if f.Account != "" && o.Account != f.Account || f.Symbol != "" && o.Symbol != f.Symbol ||
			len(f.Statuses) > 0 && !slices.Contains(f.Statuses, o.Status) ||
			!f.After.IsZero() && o.CreatedAt.Before(f.After) || !f.Before.IsZero() && !o.CreatedAt.Before(f.Before) {
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	slices.Reverse(ids)
	next := ""
	if len(ids) > f.PageSize {
		ids = ids[:f.PageSize]
		next = strconv.FormatUint(ids[len(ids)-1], 36)
	}
	out := make([]Order, len(ids))
	for i, id := range ids {
		out[i] = *m.store.st.orders[id]
		out[i].History = nil
	}
	return out, next, nil
}

// Positions returns positions, filtered by account and symbol when set.
func (m *OMS) Positions(account, symbol string) []Position {
	m.store.mu.RLock()
	var out []Position
	for k, p := range m.store.st.positions {
		if account != "" && k.account != account || symbol != "" && k.symbol != symbol {
			continue
		}
		out = append(out, *p)
	}
	m.store.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Account != out[j].Account {
			return out[i].Account < out[j].Account
		}
		return out[i].Symbol < out[j].Symbol
	})
	return out
}

// Updates reads the update log from sequence from (0: after the newest),
// calling fn for each update matching the filter, until ctx ends or fn
// fails.
func (m *OMS) Updates(ctx context.Context, from uint64, account, symbol string, fn func(*Update) error) error {
	if from == 0 {
		from = m.store.lastSeq() + 1
	}
	m.store.mu.RLock()
	next := m.store.st.nextSeq
	m.store.mu.RUnlock()
	if from > next {
		// Not a sequence this service gave: waiting for it would skip
		// every update up to it without a word.
		return &AheadError{Requested: from, Next: next}
	}
	buf := make([]Update, 0, 256)
	for {
		var wake <-chan struct{}
		var err error
		buf, wake, err = m.store.updatesFrom(from, cap(buf), buf[:0])
		if err != nil {
			return err
		}
		for i := range buf {
			u := &buf[i]
			from = u.Seq + 1
			if account != "" && u.Order.Account != account || symbol != "" && u.Order.Symbol != symbol {
				continue
			}
			if err := fn(u); err != nil {
				return err
			}
		}
		if len(buf) > 0 {
			continue
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-m.ctx.Done():
			return ErrClosed
		}
	}
}
