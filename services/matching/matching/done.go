package matching

import (
	"sync"
	"time"
	"unsafe"

	"github.com/tradsys/mesh/services/matching/engine"
)

// DoneStatus is how an order left the book.
type DoneStatus uint8

// Finished orders' statuses.
const (
	DoneFilled    DoneStatus = iota + 1 // completely filled
	DoneCancelled                       // cancelled (by the user, self-trade prevention, or an unfilled IOC/market remainder)
)

// DoneOrder is an order no longer in the book, as GetOrder reports it.
type DoneOrder struct {
	Symbol  string
	ID      uint64
	Account uint64
	Side    engine.Side
	Price   int64 // its limit price; for a fill, the last trade's price
	Status  DoneStatus
	Reason  engine.CancelReason // for DoneCancelled
	At      time.Time
}

// doneOrders keeps the most recent finished orders, at most max of them and
// none older than ttl, so GetOrder answers for filled and cancelled orders
// too. It lives in memory: a restart forgets them (the journal replay does
// not re-announce old fills).
type doneOrders struct {
	max int
	ttl time.Duration

	mu   sync.Mutex
	byID map[doneKey]int // index into ring
	ring []DoneOrder     // circular, oldest at head
	head int
	n    int
	// symBytes is the symbol strings the kept orders hold (each order's
	// own, from its request).
	symBytes int64
}

type doneKey struct {
	symbol string
	id     uint64
}

func newDoneOrders(max int, ttl time.Duration) *doneOrders {
	return &doneOrders{max: max, ttl: ttl, byID: map[doneKey]int{}}
}

func (d *doneOrders) add(o DoneOrder) {
	if d.max <= 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.ring) < d.max {
		d.ring = append(d.ring, DoneOrder{})
	}
	if d.n == d.max { // full: the oldest goes
		old := d.ring[d.head]
		if i, ok := d.byID[doneKey{old.Symbol, old.ID}]; ok && i == d.head {
			delete(d.byID, doneKey{old.Symbol, old.ID})
		}
		d.head = (d.head + 1) % d.max
		d.n--
	}
	i := (d.head + d.n) % len(d.ring)
	d.symBytes += stringBytes(o.Symbol) - stringBytes(d.ring[i].Symbol)
	d.ring[i] = o
	d.n++
	d.byID[doneKey{o.Symbol, o.ID}] = i
}

// get returns a finished order kept and not older than the ttl. An id
// reused after the order finished (ids are unique among resting orders
// only) finds the latest.
func (d *doneOrders) get(symbol string, id uint64, now time.Time) (DoneOrder, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	i, ok := d.byID[doneKey{symbol, id}]
	if !ok {
		return DoneOrder{}, false
	}
	o := d.ring[i]
	if d.ttl > 0 && now.Sub(o.At) > d.ttl {
		return DoneOrder{}, false
	}
	return o, true
}

// record notes the orders one accepted input finished: makers filled by
// its trades, the incoming order (id) when it filled completely, and every
// cancel.
func (d *doneOrders) record(symbol string, id uint64, res engine.Result, trades []engine.Trade, cancels []engine.Cancel, at time.Time) {
	for _, t := range trades {
		if t.MakerLeft == 0 {
			side := engine.Sell
			if t.TakerSide == engine.Sell {
				side = engine.Buy
			}
			d.add(DoneOrder{Symbol: symbol, ID: t.MakerID, Account: t.MakerAccount, Side: side, Price: t.Price, Status: DoneFilled, At: at})
		}
	}
	if n := len(trades); n > 0 && res.Filled > 0 && res.Resting == 0 && res.Cancelled == 0 {
		last := trades[n-1]
		d.add(DoneOrder{Symbol: symbol, ID: id, Account: last.TakerAccount, Side: last.TakerSide, Price: last.Price, Status: DoneFilled, At: at})
	}
	for _, c := range cancels {
		d.add(DoneOrder{Symbol: symbol, ID: c.OrderID, Account: c.Account, Side: c.Side, Price: c.Price, Status: DoneCancelled, Reason: c.Reason, At: at})
	}
}

// Map entries cost their key and value plus the map's slot overhead (top
// hash byte, load factor below 7/8, overflow buckets): measured about 1.5x
// key+value for these sizes.
const (
	doneOrderBytes = int64(unsafe.Sizeof(DoneOrder{}))
	doneIndexBytes = (int64(unsafe.Sizeof(doneKey{})) + 8) * 3 / 2
)

// memBytes is what the table holds: its ring, its index, and the symbol
// strings its orders keep.
func (d *doneOrders) memBytes() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return int64(cap(d.ring))*doneOrderBytes + int64(len(d.byID))*doneIndexBytes + d.symBytes
}

// stringBytes is a string's backing array as allocated (rounded up to 8).
func stringBytes(s string) int64 { return int64(len(s)+7) &^ 7 }
