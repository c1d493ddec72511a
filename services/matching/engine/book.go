package engine

import "unsafe"

// order is a resting (or in-flight taker) order. Orders are intrusive
// members of their level's doubly linked FIFO queue and are recycled through
// the book's free list.
type order struct {
	id       uint64
	account  uint64
	price    int64
	qty      int64 // open quantity
	prev     *order
	next     *order // queue link; free-list link when free
	lvl      *level
	side     Side
	postOnly bool
}

// level is one price level: a FIFO queue of orders plus aggregates.
type level struct {
	price int64
	total int64 // sum of open quantities
	count int
	head  *order
	tail  *order
	free  *level // free-list link
}

// bookSide keeps the active levels of one side in a sorted array with the
// best level at the END, so that the churn near the touch (insert/remove of
// the best few levels) moves few elements. keys[i] is the price for bids and
// -price for asks, so keys ascend towards the best price on both sides and a
// single search routine serves both. Searches gallop from the end (the touch)
// and then bisect: O(log distance-from-touch).
type bookSide struct {
	keys []int64
	lvls []*level
	bid  bool
}

func (s *bookSide) key(p int64) int64 {
	if s.bid {
		return p
	}
	return -p
}

func (s *bookSide) best() *level {
	if n := len(s.lvls); n > 0 {
		return s.lvls[n-1]
	}
	return nil
}

// search returns the smallest i with keys[i] >= k (len(keys) if none).
func (s *bookSide) search(k int64) int {
	keys := s.keys
	hi := len(keys)
	lo := hi - 1
	step := 1
	for lo >= 0 && keys[lo] >= k {
		hi = lo
		lo -= step
		step <<= 1
	}
	if lo < -1 {
		lo = -1
	}
	// keys[lo] < k (or lo == -1); keys[hi] >= k (or hi == len)
	for hi-lo > 1 {
		m := lo + (hi-lo)/2
		if keys[m] >= k {
			hi = m
		} else {
			lo = m
		}
	}
	return hi
}

func (s *bookSide) find(price int64) *level {
	k := s.key(price)
	i := s.search(k)
	if i < len(s.keys) && s.keys[i] == k {
		return s.lvls[i]
	}
	return nil
}

func (s *bookSide) insertAt(i int, lvl *level) {
	s.keys = append(s.keys, 0)
	s.lvls = append(s.lvls, nil)
	if i < len(s.keys)-1 {
		copy(s.keys[i+1:], s.keys[i:])
		copy(s.lvls[i+1:], s.lvls[i:])
	}
	s.keys[i] = s.key(lvl.price)
	s.lvls[i] = lvl
}

func (s *bookSide) remove(lvl *level) {
	n := len(s.lvls)
	i := n - 1
	if i < 0 {
		return
	}
	if s.lvls[i] != lvl {
		i = s.search(s.key(lvl.price))
		if i >= n || s.lvls[i] != lvl {
			return // not present; cannot happen
		}
		copy(s.keys[i:], s.keys[i+1:])
		copy(s.lvls[i:], s.lvls[i+1:])
	}
	s.lvls[n-1] = nil
	s.keys = s.keys[:n-1]
	s.lvls = s.lvls[:n-1]
}

// Book is the order book of one symbol. It is not safe for concurrent use;
// see Engine for a concurrent front.
//
// Self-trade prevention: when an incoming order would trade against a resting
// order of the same Account, the RESTING order is cancelled (reason
// ReasonSelfTrade, "cancel oldest" / cancel-resting) and matching continues
// with the next resting order. Under FIFO only the same-account orders the
// taker actually reaches are cancelled; under pro-rata every same-account
// order at a level the taker trades into is cancelled before allocation
// (all orders at a pro-rata level participate). A FOK that is not fillable,
// a rejected post-only and any input error leave the book untouched.
type Book struct {
	symbol string
	algo   Algorithm
	fifo   bool
	sink   Sink

	bids  bookSide
	asks  bookSide
	index orderIndex

	freeOrders  *order
	freeLevels  *level
	ordersAlloc int
	levelsAlloc int

	tradeSeq uint64

	// pro-rata scratch
	scrOrders []*order
	scrSizes  []int64
	scrAlloc  []int64
}

// NewBook returns an empty book. A nil algo means FIFO; a nil sink discards
// events.
func NewBook(symbol string, algo Algorithm, sink Sink) *Book {
	b := &Book{symbol: symbol}
	b.bids.bid = true
	b.SetAlgorithm(algo)
	b.SetSink(sink)
	b.index.init(minIndexBits)
	b.bids.keys = make([]int64, 0, 64)
	b.bids.lvls = make([]*level, 0, 64)
	b.asks.keys = make([]int64, 0, 64)
	b.asks.lvls = make([]*level, 0, 64)
	return b
}

// Symbol returns the book's symbol.
func (b *Book) Symbol() string { return b.symbol }

// Algorithm returns the matching algorithm in use.
func (b *Book) Algorithm() Algorithm { return b.algo }

// SetAlgorithm selects the matching algorithm (nil means FIFO). It may be
// changed at any time between calls; it affects only future matching.
func (b *Book) SetAlgorithm(a Algorithm) {
	if a == nil {
		a = FIFO{}
	}
	b.algo = a
	switch a.(type) {
	case FIFO, *FIFO:
		b.fifo = true
	default:
		b.fifo = false
	}
}

// SetSink sets the event sink (nil discards events).
func (b *Book) SetSink(s Sink) {
	if s == nil {
		s = NopSink{}
	}
	b.sink = s
}

// TradeSeq returns the sequence number of the last trade (0 if none).
func (b *Book) TradeSeq() uint64 { return b.tradeSeq }

// Len returns the number of resting orders.
func (b *Book) Len() int { return b.index.len() }

// LevelCount returns the number of active price levels on a side.
func (b *Book) LevelCount(s Side) int {
	if s == Buy {
		return len(b.bids.lvls)
	}
	return len(b.asks.lvls)
}

// BestBid returns the best bid price and the quantity resting there.
func (b *Book) BestBid() (price, qty int64, ok bool) {
	if l := b.bids.best(); l != nil {
		return l.price, l.total, true
	}
	return 0, 0, false
}

// BestAsk returns the best ask price and the quantity resting there.
func (b *Book) BestAsk() (price, qty int64, ok bool) {
	if l := b.asks.best(); l != nil {
		return l.price, l.total, true
	}
	return 0, 0, false
}

// OrderInfo describes a resting order.
type OrderInfo struct {
	ID       uint64
	Account  uint64
	Side     Side
	Price    int64
	Qty      int64
	PostOnly bool
}

func (o *order) info() OrderInfo {
	return OrderInfo{ID: o.id, Account: o.account, Side: o.side, Price: o.price, Qty: o.qty, PostOnly: o.postOnly}
}

// Order looks up a resting order.
func (b *Book) Order(id uint64) (OrderInfo, bool) {
	if id == 0 {
		return OrderInfo{}, false
	}
	if o := b.index.get(id); o != nil {
		return o.info(), true
	}
	return OrderInfo{}, false
}

// LevelInfo is an aggregated price level.
type LevelInfo struct {
	Price  int64
	Qty    int64
	Orders int
}

// Depth appends up to n levels of side s, best first, to dst.
func (b *Book) Depth(s Side, n int, dst []LevelInfo) []LevelInfo {
	sd := b.side(s)
	for i := len(sd.lvls) - 1; i >= 0 && n > 0; i-- {
		l := sd.lvls[i]
		dst = append(dst, LevelInfo{Price: l.price, Qty: l.total, Orders: l.count})
		n--
	}
	return dst
}

// Walk calls fn for every resting order of side s in priority order (best
// price first, then time priority). Stop early by returning false.
func (b *Book) Walk(s Side, fn func(OrderInfo) bool) {
	sd := b.side(s)
	for i := len(sd.lvls) - 1; i >= 0; i-- {
		for o := sd.lvls[i].head; o != nil; o = o.next {
			if !fn(o.info()) {
				return
			}
		}
	}
}

// MemoryBytes is an estimate of the heap memory held by the book: the order
// and level pools (live and free), the order index, the level arrays and
// scratch space.
func (b *Book) MemoryBytes() int64 {
	const (
		orderSize = int64(unsafe.Sizeof(order{}))
		levelSize = int64(unsafe.Sizeof(level{}))
		bookSize  = int64(unsafe.Sizeof(Book{}))
	)
	m := bookSize + int64(len(b.symbol))
	m += int64(b.ordersAlloc) * orderSize
	m += int64(b.levelsAlloc) * levelSize
	m += b.index.memBytes()
	m += int64(cap(b.bids.keys)+cap(b.asks.keys)) * 16
	m += int64(cap(b.scrOrders)+cap(b.scrSizes)+cap(b.scrAlloc)) * 8
	return m
}

func (b *Book) side(s Side) *bookSide {
	if s == Buy {
		return &b.bids
	}
	return &b.asks
}

// crosses reports whether a taker on side s with limit price limit can trade
// with a resting level at price p.
func crosses(s Side, limit, p int64) bool {
	if s == Buy {
		return p <= limit
	}
	return p >= limit
}

const poolChunk = 256

func (b *Book) newOrder() *order {
	o := b.freeOrders
	if o == nil {
		chunk := make([]order, poolChunk)
		for i := range chunk {
			chunk[i].next = b.freeOrders
			b.freeOrders = &chunk[i]
		}
		b.ordersAlloc += poolChunk
		o = b.freeOrders
	}
	b.freeOrders = o.next
	*o = order{}
	return o
}

func (b *Book) freeOrder(o *order) {
	o.prev, o.lvl = nil, nil
	o.next = b.freeOrders
	b.freeOrders = o
}

func (b *Book) newLevel(price int64) *level {
	l := b.freeLevels
	if l == nil {
		chunk := make([]level, poolChunk)
		for i := range chunk {
			chunk[i].free = b.freeLevels
			b.freeLevels = &chunk[i]
		}
		b.levelsAlloc += poolChunk
		l = b.freeLevels
	}
	b.freeLevels = l.free
	*l = level{price: price}
	return l
}

func (b *Book) freeLevel(l *level) {
	l.head, l.tail = nil, nil
	l.free = b.freeLevels
	b.freeLevels = l
}

// link appends o at the tail of its side's level at o.price (creating the
// level if needed). The index is not touched.
func (b *Book) link(o *order) {
	sd := b.side(o.side)
	k := sd.key(o.price)
	var lvl *level
	// fast path: best level
	if n := len(sd.keys); n > 0 && sd.keys[n-1] == k {
		lvl = sd.lvls[n-1]
	} else {
		i := sd.search(k)
		if i < len(sd.keys) && sd.keys[i] == k {
			lvl = sd.lvls[i]
		} else {
			lvl = b.newLevel(o.price)
			sd.insertAt(i, lvl)
		}
	}
	o.lvl = lvl
	o.next = nil
	o.prev = lvl.tail
	if lvl.tail != nil {
		lvl.tail.next = o
	} else {
		lvl.head = o
	}
	lvl.tail = o
	lvl.total += o.qty
	lvl.count++
}

// unlink removes o from its level's queue and aggregates. The level is left
// in place even if empty; the caller removes empty levels.
func (b *Book) unlink(o *order) *level {
	lvl := o.lvl
	if o.prev != nil {
		o.prev.next = o.next
	} else {
		lvl.head = o.next
	}
	if o.next != nil {
		o.next.prev = o.prev
	} else {
		lvl.tail = o.prev
	}
	lvl.total -= o.qty
	lvl.count--
	o.prev, o.next, o.lvl = nil, nil, nil
	return lvl
}

func (b *Book) dropLevelIfEmpty(s Side, lvl *level) {
	if lvl.count == 0 {
		b.side(s).remove(lvl)
		b.freeLevel(lvl)
	}
}

// Submit processes a new order. On error the book is unchanged.
func (b *Book) Submit(in Order) (Result, error) {
	var res Result
	if in.ID == 0 {
		return res, ErrInvalidOrderID
	}
	if !in.Side.Valid() {
		return res, ErrInvalidSide
	}
	if !in.Type.Valid() {
		return res, ErrInvalidOrderType
	}
	if !validQty(in.Qty) {
		return res, ErrInvalidQuantity
	}
	limit := in.Price
	if in.Type == Market {
		in.Price = 0
		if in.Side == Buy {
			limit = marketBuyLimit
		} else {
			limit = marketSellLimit
		}
	} else if !validPrice(in.Price) {
		return res, ErrInvalidPrice
	}
	if b.index.get(in.ID) != nil {
		return res, ErrDuplicateOrderID
	}
	switch in.Type {
	case PostOnly:
		if best := b.side(in.Side.Opposite()).best(); best != nil && crosses(in.Side, limit, best.price) {
			return res, ErrPostOnlyWouldCross
		}
	case FOK:
		if !b.fillable(in.Side, in.Account, limit, in.Qty) {
			return res, ErrFOKNotFillable
		}
	}

	t := b.newOrder()
	t.id, t.account, t.side, t.price, t.qty = in.ID, in.Account, in.Side, in.Price, in.Qty
	t.postOnly = in.Type == PostOnly
	b.match(t, limit, &res)
	if t.qty > 0 {
		if in.Type == Limit || in.Type == PostOnly {
			b.link(t)
			b.index.put(t.id, t)
			res.Resting = t.qty
			return res, nil
		}
		res.Cancelled = t.qty
		b.sink.OnCancel(Cancel{Symbol: b.symbol, OrderID: t.id, Account: t.account, Side: t.side,
			Price: t.price, Qty: t.qty, Reason: ReasonUnfilled})
	}
	b.freeOrder(t)
	return res, nil
}

// Cancel removes a resting order.
func (b *Book) Cancel(id uint64) error {
	if id == 0 {
		return ErrInvalidOrderID
	}
	o := b.index.get(id)
	if o == nil {
		return ErrUnknownOrder
	}
	b.sink.OnCancel(Cancel{Symbol: b.symbol, OrderID: o.id, Account: o.account, Side: o.side,
		Price: o.price, Qty: o.qty, Reason: ReasonUser})
	lvl := b.unlink(o)
	b.dropLevelIfEmpty(o.side, lvl)
	b.index.del(id)
	b.freeOrder(o)
	return nil
}

// Replace changes the price and/or open quantity of a resting order
// (cancel/replace). qty is the new OPEN quantity.
//
//   - same price, qty <= current open qty: reduced in place, time priority kept;
//   - same price, larger qty: moved to the back of its level;
//   - new price: removed and re-entered as a limit order with the same id and
//     account at the back of the new level; if the new price crosses it
//     matches first (self-trade prevention applies) and only the remainder
//     rests. A post-only order whose new price would cross is rejected with
//     ErrPostOnlyWouldCross and left unchanged.
func (b *Book) Replace(id uint64, price, qty int64) (Result, error) {
	var res Result
	if id == 0 {
		return res, ErrInvalidOrderID
	}
	if !validPrice(price) {
		return res, ErrInvalidPrice
	}
	if !validQty(qty) {
		return res, ErrInvalidQuantity
	}
	o := b.index.get(id)
	if o == nil {
		return res, ErrUnknownOrder
	}
	if price == o.price {
		lvl := o.lvl
		if qty > o.qty && lvl.tail != o {
			// lose priority: move to the back
			b.unlink(o)
			o.qty = qty
			b.link(o)
		} else {
			lvl.total += qty - o.qty
			o.qty = qty
		}
		res.Resting = qty
		return res, nil
	}
	if o.postOnly {
		if best := b.side(o.side.Opposite()).best(); best != nil && crosses(o.side, price, best.price) {
			return res, ErrPostOnlyWouldCross
		}
	}
	lvl := b.unlink(o)
	b.dropLevelIfEmpty(o.side, lvl)
	o.price, o.qty = price, qty
	b.match(o, price, &res)
	if o.qty > 0 {
		b.link(o)
		res.Resting = o.qty
		return res, nil
	}
	b.index.del(o.id)
	b.freeOrder(o)
	return res, nil
}

// fillable reports whether qty can be filled immediately at prices within
// limit, not counting resting orders of account (they would be cancelled by
// self-trade prevention, not traded).
func (b *Book) fillable(s Side, account uint64, limit, qty int64) bool {
	opp := b.side(s.Opposite())
	var avail int64
	for i := len(opp.lvls) - 1; i >= 0; i-- {
		lvl := opp.lvls[i]
		if !crosses(s, limit, lvl.price) {
			return false
		}
		for o := lvl.head; o != nil; o = o.next {
			if o.account != account {
				avail += o.qty
				if avail >= qty {
					return true
				}
			}
		}
	}
	return false
}

// match trades taker t against the opposite side up to limit.
func (b *Book) match(t *order, limit int64, res *Result) {
	opp := b.side(t.side.Opposite())
	for t.qty > 0 {
		n := len(opp.lvls)
		if n == 0 {
			return
		}
		lvl := opp.lvls[n-1]
		if !crosses(t.side, limit, lvl.price) {
			return
		}
		if b.fifo {
			b.matchFIFO(t, lvl, res)
		} else {
			b.matchAlloc(t, lvl, res)
		}
		if lvl.count == 0 {
			opp.remove(lvl)
			b.freeLevel(lvl)
		}
	}
}

func (b *Book) matchFIFO(t *order, lvl *level, res *Result) {
	for o := lvl.head; o != nil && t.qty > 0; {
		next := o.next
		if o.account == t.account {
			b.stpCancel(o)
		} else {
			b.fill(t, o, min(o.qty, t.qty), res)
		}
		o = next
	}
}

func (b *Book) matchAlloc(t *order, lvl *level, res *Result) {
	// self-trade prevention: every same-account order at this level goes.
	for o := lvl.head; o != nil; {
		next := o.next
		if o.account == t.account {
			b.stpCancel(o)
		}
		o = next
	}
	if lvl.count == 0 {
		return
	}
	if t.qty >= lvl.total {
		for o := lvl.head; o != nil; {
			next := o.next
			b.fill(t, o, o.qty, res)
			o = next
		}
		return
	}
	orders, sizes := b.scrOrders[:0], b.scrSizes[:0]
	for o := lvl.head; o != nil; o = o.next {
		orders = append(orders, o)
		sizes = append(sizes, o.qty)
	}
	alloc := b.scrAlloc[:0]
	for range sizes {
		alloc = append(alloc, 0)
	}
	b.scrOrders, b.scrSizes, b.scrAlloc = orders, sizes, alloc
	qty := t.qty
	b.algo.Allocate(qty, sizes, alloc)
	for i, o := range orders { // in case the algorithm scribbled on sizes
		sizes[i] = o.qty
	}
	sanitizeAlloc(qty, sizes, alloc)
	for i, o := range orders {
		if a := alloc[i]; a > 0 {
			b.fill(t, o, a, res)
		}
		orders[i] = nil
	}
}

func (b *Book) stpCancel(o *order) {
	b.sink.OnCancel(Cancel{Symbol: b.symbol, OrderID: o.id, Account: o.account, Side: o.side,
		Price: o.price, Qty: o.qty, Reason: ReasonSelfTrade})
	b.unlink(o)
	b.index.del(o.id)
	b.freeOrder(o)
}

// fill executes q between taker t and resting maker o. A fully filled maker
// is removed from its level and freed; the level itself is left to match().
func (b *Book) fill(t, o *order, q int64, res *Result) {
	b.tradeSeq++
	o.qty -= q
	o.lvl.total -= q
	t.qty -= q
	res.Filled += q
	res.Trades++
	b.sink.OnTrade(Trade{Symbol: b.symbol, Seq: b.tradeSeq, Price: o.price, Qty: q,
		TakerID: t.id, MakerID: o.id, TakerAccount: t.account, MakerAccount: o.account,
		TakerSide: t.side, MakerLeft: o.qty})
	if o.qty == 0 {
		b.unlink(o)
		b.index.del(o.id)
		b.freeOrder(o)
	}
}
