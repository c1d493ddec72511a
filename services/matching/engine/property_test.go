package engine

import (
	"fmt"
	"math/rand"
	"testing"
)

// model tracks quantity conservation and time-priority stamps alongside a
// book, driven by the book's events.
type model struct {
	t         testing.TB
	b         *Book
	submitted int64
	traded    int64
	cancelled int64
	stamp     map[uint64]uint64 // order id -> priority stamp
	clock     uint64
	lastSeq   uint64
	opTrades  []Trade
}

func newModel(t testing.TB, algo Algorithm) *model {
	m := &model{t: t, stamp: map[uint64]uint64{}}
	m.b = NewBook("P", algo, m)
	return m
}

func (m *model) OnTrade(tr Trade) {
	if tr.Seq != m.lastSeq+1 {
		m.t.Fatalf("trade seq %d after %d", tr.Seq, m.lastSeq)
	}
	m.lastSeq = tr.Seq
	if tr.Qty <= 0 || tr.TakerAccount == tr.MakerAccount || tr.TakerSide.Opposite() == 0 {
		m.t.Fatalf("bad trade %+v", tr)
	}
	m.traded += tr.Qty
	m.opTrades = append(m.opTrades, tr)
}

func (m *model) OnCancel(c Cancel) {
	if c.Qty <= 0 {
		m.t.Fatalf("bad cancel %+v", c)
	}
	m.cancelled += c.Qty
}

func (m *model) resting() int64 {
	var s int64
	for _, sd := range []Side{Buy, Sell} {
		m.b.Walk(sd, func(o OrderInfo) bool { s += o.Qty; return true })
	}
	return s
}

// op is a decoded operation (shared by the property tests and the fuzzer).
type op struct {
	kind  uint8 // 0 submit, 1 cancel, 2 replace, 3 set algorithm
	order Order
	id    uint64
	price int64
	qty   int64
}

func (m *model) apply(o op) error {
	m.opTrades = m.opTrades[:0]
	var err error
	switch o.kind {
	case 0:
		var res Result
		res, err = m.b.Submit(o.order)
		if err == nil {
			m.submitted += o.order.Qty
			if res.Resting > 0 {
				m.clock++
				m.stamp[o.order.ID] = m.clock
			}
			if res.Filled+res.Resting+res.Cancelled != o.order.Qty {
				m.t.Fatalf("result %+v does not add up to %d", res, o.order.Qty)
			}
			if o.order.Type == FOK && res.Filled != o.order.Qty {
				m.t.Fatalf("FOK partially filled: %+v", res)
			}
			if o.order.Type == PostOnly && res.Filled != 0 {
				m.t.Fatalf("post-only traded: %+v", res)
			}
		}
	case 1:
		err = m.b.Cancel(o.id)
	case 2:
		old, ok := m.b.Order(o.id)
		var res Result
		res, err = m.b.Replace(o.id, o.price, o.qty)
		if err == nil {
			if !ok {
				m.t.Fatal("replace of unknown order accepted")
			}
			if res.Filled+res.Resting != o.qty || res.Cancelled != 0 {
				m.t.Fatalf("replace result %+v does not add up to %d", res, o.qty)
			}
			if o.qty > old.Qty {
				m.submitted += o.qty - old.Qty
			} else {
				m.cancelled += old.Qty - o.qty
			}
			if o.price != old.Price || o.qty > old.Qty {
				m.clock++
				m.stamp[o.id] = m.clock
			}
		}
	case 3:
		if o.id%2 == 0 {
			m.b.SetAlgorithm(FIFO{})
		} else {
			m.b.SetAlgorithm(ProRata{})
		}
	}
	m.check()
	return err
}

func (m *model) check() {
	if err := m.b.checkInvariants(); err != nil {
		m.t.Fatal(err)
	}
	r := m.resting()
	if m.submitted != 2*m.traded+r+m.cancelled {
		m.t.Fatalf("conservation: submitted %d != 2*traded %d + resting %d + cancelled %d",
			m.submitted, m.traded, r, m.cancelled)
	}
	// FIFO priority within each level: stamps strictly increase along the queue.
	for _, sd := range []Side{Buy, Sell} {
		var lastPrice int64 = -1
		var lastStamp uint64
		m.b.Walk(sd, func(o OrderInfo) bool {
			st, ok := m.stamp[o.ID]
			if !ok {
				m.t.Fatalf("order %d has no stamp", o.ID)
			}
			if o.Price == lastPrice && st <= lastStamp {
				m.t.Fatalf("time priority violated at price %d (order %d)", o.Price, o.ID)
			}
			lastPrice, lastStamp = o.Price, st
			return true
		})
	}
	// Under FIFO, trades of one operation at one price hit makers in stamp order.
	if m.b.fifo {
		for i := 1; i < len(m.opTrades); i++ {
			p, c := m.opTrades[i-1], m.opTrades[i]
			if p.Price == c.Price && m.stamp[p.MakerID] >= m.stamp[c.MakerID] {
				m.t.Fatalf("FIFO fill order violated: %+v then %+v", p, c)
			}
			if p.Price == c.Price && p.MakerLeft != 0 {
				m.t.Fatalf("FIFO skipped a partially filled maker: %+v then %+v", p, c)
			}
		}
	}
}

// randomOp draws an operation; ids refers to ids that may be live.
func randomOp(r *rand.Rand, nextID *uint64, live []uint64) op {
	side := Side(1 + r.Intn(2))
	price := int64(1000 + r.Intn(24) - 20) // buys mostly below 1000, sells above
	if side == Sell {
		price = 2000 - price
	}
	qty := int64(1 + r.Intn(20))
	acct := uint64(1 + r.Intn(4))
	pick := func() uint64 {
		if len(live) > 0 && r.Intn(10) != 0 {
			return live[r.Intn(len(live))]
		}
		return uint64(r.Intn(int(*nextID) + 2))
	}
	x := r.Intn(100)
	switch {
	case x < 2:
		return op{kind: 0, order: Order{ID: pick(), Account: acct, Side: Side(r.Intn(4)), Type: OrderType(r.Intn(7)),
			Price: int64(r.Intn(5)) - 2, Qty: int64(r.Intn(5)) - 2}}
	case x < 50:
		*nextID++
		return op{kind: 0, order: Order{ID: *nextID, Account: acct, Side: side, Type: Limit, Price: price, Qty: qty}}
	case x < 55:
		*nextID++
		return op{kind: 0, order: Order{ID: *nextID, Account: acct, Side: side, Type: IOC, Price: price, Qty: qty}}
	case x < 57:
		*nextID++
		return op{kind: 0, order: Order{ID: *nextID, Account: acct, Side: side, Type: Market, Qty: qty}}
	case x < 61:
		*nextID++
		return op{kind: 0, order: Order{ID: *nextID, Account: acct, Side: side, Type: FOK, Price: price, Qty: qty * 2}}
	case x < 65:
		*nextID++
		return op{kind: 0, order: Order{ID: *nextID, Account: acct, Side: side, Type: PostOnly, Price: price, Qty: qty}}
	case x < 74:
		return op{kind: 1, id: pick()}
	case x < 99:
		id := pick()
		p, q := price, qty
		if r.Intn(3) == 0 {
			p = -1 // same price marker, resolved by caller
		}
		return op{kind: 2, id: id, price: p, qty: q}
	default:
		return op{kind: 3, id: uint64(r.Intn(2))}
	}
}

func runRandom(t *testing.T, seed int64, algo Algorithm, n int) *model {
	r := rand.New(rand.NewSource(seed))
	m := newModel(t, algo)
	var nextID uint64
	live := make([]uint64, 0, 1024)
	for i := 0; i < n; i++ {
		if i%64 == 0 { // refresh the list of live ids
			live = live[:0]
			for _, s := range []Side{Buy, Sell} {
				m.b.Walk(s, func(o OrderInfo) bool { live = append(live, o.ID); return true })
			}
		}
		o := randomOp(r, &nextID, live)
		if o.kind == 3 && algo != nil {
			continue
		}
		if o.kind == 2 && o.price == -1 {
			if info, ok := m.b.Order(o.id); ok {
				o.price = info.Price
			} else {
				o.price = 1000
			}
		}
		m.apply(o)
	}
	return m
}

func TestPropertyRandomStreams(t *testing.T) {
	for _, algo := range []Algorithm{FIFO{}, ProRata{}, nil} {
		for seed := int64(1); seed <= 6; seed++ {
			name := "switching"
			if algo != nil {
				name = algo.Name()
			}
			t.Run(fmt.Sprintf("%s/seed%d", name, seed), func(t *testing.T) {
				m := runRandom(t, seed, algo, 6000)
				if m.traded == 0 || m.cancelled == 0 {
					t.Fatalf("stream too tame: traded %d cancelled %d", m.traded, m.cancelled)
				}
				t.Logf("submitted %d traded %d cancelled %d resting %d orders %d trades %d",
					m.submitted, m.traded, m.cancelled, m.resting(), m.b.Len(), m.lastSeq)
			})
		}
	}
}

// Determinism and snapshot equivalence at the book level: running the same
// stream twice gives identical trades and books, and restoring a snapshot
// taken half way then running the rest equals running straight through.
func TestPropertyDeterminismAndSnapshot(t *testing.T) {
	for _, algo := range []Algorithm{FIFO{}, ProRata{}} {
		for seed := int64(10); seed < 14; seed++ {
			r := rand.New(rand.NewSource(seed))
			var nextID uint64
			ops := make([]op, 0, 4000)
			for i := 0; i < 4000; i++ {
				// replace/cancel targets drawn among all ids ever issued
				o := randomOp(r, &nextID, nil)
				if o.kind == 2 && o.price == -1 {
					o.price = 1000
				}
				if o.kind == 3 {
					continue
				}
				ops = append(ops, o)
			}
			run := func(b *Book, ops []op) {
				for _, o := range ops {
					switch o.kind {
					case 0:
						b.Submit(o.order)
					case 1:
						b.Cancel(o.id)
					case 2:
						b.Replace(o.id, o.price, o.qty)
					}
				}
			}
			s1, s2, s3 := &SliceSink{}, &SliceSink{}, &SliceSink{}
			b1, b2 := NewBook("D", algo, s1), NewBook("D", algo, s2)
			run(b1, ops)
			run(b2, ops[:2000])
			snap, _ := b2.MarshalBinary()
			b3, err := UnmarshalBook(snap, s3)
			if err != nil {
				t.Fatal(err)
			}
			cut := len(s2.Trades)
			run(b2, ops[2000:])
			run(b3, ops[2000:])
			f1, _ := b1.MarshalBinary()
			f2, _ := b2.MarshalBinary()
			f3, _ := b3.MarshalBinary()
			if string(f1) != string(f2) || string(f1) != string(f3) {
				t.Fatalf("%s seed %d: final books differ", algo.Name(), seed)
			}
			if tradesString(s1.Trades) != tradesString(s2.Trades) ||
				fmt.Sprint(s1.Trades[cut:]) != fmt.Sprint(s3.Trades) || len(s1.Trades) == 0 {
				t.Fatalf("%s seed %d: trades differ", algo.Name(), seed)
			}
		}
	}
}
