package engine

import (
	"math/rand"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/latency"
)

// Exchange-core-like benchmark: a real resting book of ~1,000 orders over
// ~750 price levels, kept at that size, driven by a pregenerated stream of
// ~9% GTC, 3% IOC/market, 6% cancel and 82% replace (moves near the touch).
//
// The generator runs the stream against a shadow book while generating it,
// so every cancel/replace targets an order that still exists at that point;
// because the engine is deterministic, the benchmark book (started from the
// same initial orders) sees exactly the same states.

const (
	benchOps       = 1 << 20
	benchTarget    = 1000
	benchMid       = 1_000_000
	benchSpread    = 1900 // width (ticks) of the passive price distribution per side
	benchNearTouch = 40   // replaces: most go within this many ticks of the touch
)

type benchOp struct {
	kind  uint8 // 0 submit, 1 cancel, 2 replace
	side  Side
	typ   OrderType
	acct  uint32
	id    uint64
	price int64
	qty   int64
}

type benchStream struct {
	init       []Order
	ops        []benchOp
	avgOrders  float64
	avgLevels  float64
	genTrades  int
	genCancels int
}

// liveSet tracks live order ids with O(1) add/remove/random pick.
type liveSet struct {
	ids []uint64
	pos map[uint64]int
}

func (l *liveSet) add(id uint64) {
	if _, ok := l.pos[id]; ok {
		return
	}
	l.pos[id] = len(l.ids)
	l.ids = append(l.ids, id)
}

func (l *liveSet) remove(id uint64) {
	i, ok := l.pos[id]
	if !ok {
		return
	}
	last := l.ids[len(l.ids)-1]
	l.ids[i] = last
	l.pos[last] = i
	l.ids = l.ids[:len(l.ids)-1]
	delete(l.pos, id)
}

// genSink keeps the live set in sync with the shadow book.
type genSink struct {
	live    *liveSet
	trades  int
	cancels int
}

func (s *genSink) OnTrade(t Trade) {
	s.trades++
	if t.MakerLeft == 0 {
		s.live.remove(t.MakerID)
	}
}

func (s *genSink) OnCancel(c Cancel) {
	s.cancels++
	s.live.remove(c.OrderID)
}

func genBenchStream(seed int64, n int) *benchStream {
	r := rand.New(rand.NewSource(seed))
	live := &liveSet{pos: make(map[uint64]int)}
	sink := &genSink{live: live}
	shadow := NewBook("BENCH", FIFO{}, sink)
	st := &benchStream{ops: make([]benchOp, 0, n)}
	var nextID uint64
	qty := func() int64 { return 1 + r.Int63n(100) }
	acct := func() uint32 { return uint32(1 + r.Intn(2000)) }
	// distance from the touch: mildly skewed towards it.
	dist := func(far int) int64 {
		u := r.Float64()
		return int64(u * (0.5 + 0.5*u) * float64(far))
	}
	// passive price: just behind the opposite touch plus a distance.
	passive := func(s Side, far int) int64 {
		var ref int64
		if s == Buy {
			if p, _, ok := shadow.BestAsk(); ok {
				ref = p
			} else if p, _, ok := shadow.BestBid(); ok {
				ref = p + 2
			} else {
				ref = benchMid + 1
			}
			return ref - 1 - dist(far)
		}
		if p, _, ok := shadow.BestBid(); ok {
			ref = p
		} else if p, _, ok := shadow.BestAsk(); ok {
			ref = p - 2
		} else {
			ref = benchMid - 1
		}
		return ref + 1 + dist(far)
	}
	aggressive := func(s Side) int64 {
		if s == Buy {
			if p, _, ok := shadow.BestAsk(); ok {
				return p + r.Int63n(3)
			}
			return benchMid
		}
		if p, _, ok := shadow.BestBid(); ok {
			return p - r.Int63n(3)
		}
		return benchMid
	}
	// initial book
	for len(live.ids) < benchTarget {
		nextID++
		s := Side(1 + r.Intn(2))
		o := Order{ID: nextID, Account: uint64(acct()), Side: s, Type: Limit, Price: passive(s, benchSpread), Qty: qty()}
		if res, err := shadow.Submit(o); err == nil && res.Resting > 0 {
			live.add(o.ID)
			st.init = append(st.init, o)
		}
	}
	sink.trades, sink.cancels = 0, 0
	var sumOrders, sumLevels float64
	for i := 0; i < n; i++ {
		sumOrders += float64(shadow.Len())
		sumLevels += float64(shadow.LevelCount(Buy) + shadow.LevelCount(Sell))
		excess := len(live.ids) - benchTarget
		x := r.Intn(100)
		var op benchOp
		switch {
		case x < 9 || len(live.ids) == 0: // GTC
			nextID++
			s := Side(1 + r.Intn(2))
			op = benchOp{kind: 0, side: s, typ: Limit, acct: acct(), id: nextID, qty: qty()}
			// aggressive share adapts to keep the book at its target size
			pAggr := min(max(5+excess, 0), 100)
			if r.Intn(100) < pAggr {
				op.price = aggressive(s)
				op.qty *= 2
			} else {
				op.price = passive(s, benchSpread)
			}
		case x < 12: // IOC or market
			nextID++
			s := Side(1 + r.Intn(2))
			op = benchOp{kind: 0, side: s, typ: IOC, acct: acct(), id: nextID, qty: qty()}
			if r.Intn(3) == 0 {
				op.typ = Market
			} else {
				op.price = aggressive(s)
			}
			if excess > 0 {
				op.qty += int64(excess) * 10
			} else if excess < 0 {
				op.qty = op.qty/3 + 1
			}
		case x < 18: // cancel an existing order
			op = benchOp{kind: 1, id: live.ids[r.Intn(len(live.ids))]}
		default: // replace an existing order near the touch
			id := live.ids[r.Intn(len(live.ids))]
			info, _ := shadow.Order(id)
			op = benchOp{kind: 2, id: id, side: info.Side, qty: info.Qty}
			cross := min(max(15+excess, 2), 60) // per mille
			switch y := r.Intn(1000); {
			case y < cross: // crosses: trades
				op.price = aggressive(info.Side)
			case y < 150: // reduce in place, keeps priority
				op.price = info.Price
				op.qty = max(1, info.Qty/2)
			case y < 400:
				op.price = passive(info.Side, benchNearTouch)
				op.qty = qty()
			default:
				op.price = passive(info.Side, benchSpread)
				op.qty = qty()
			}
		}
		switch op.kind {
		case 0:
			res, err := shadow.Submit(Order{ID: op.id, Account: uint64(op.acct), Side: op.side, Type: op.typ, Price: op.price, Qty: op.qty})
			if err == nil && res.Resting > 0 {
				live.add(op.id)
			}
		case 1:
			shadow.Cancel(op.id)
			live.remove(op.id)
		case 2:
			res, err := shadow.Replace(op.id, op.price, op.qty)
			if err == nil && res.Resting == 0 {
				live.remove(op.id)
			}
		}
		st.ops = append(st.ops, op)
	}
	st.avgOrders = sumOrders / float64(n)
	st.avgLevels = sumLevels / float64(n)
	st.genTrades, st.genCancels = sink.trades, sink.cancels
	return st
}

var cachedStream *benchStream

func benchStreamOnce() *benchStream {
	if cachedStream == nil {
		cachedStream = genBenchStream(42, benchOps)
	}
	return cachedStream
}

// resetBook empties b, returning every order and level to the free lists
// (so no allocation happens), and loads the initial orders.
func resetBook(b *Book, init []Order) {
	for _, sd := range []*bookSide{&b.bids, &b.asks} {
		for i, l := range sd.lvls {
			for o := l.head; o != nil; {
				next := o.next
				b.freeOrder(o)
				o = next
			}
			b.freeLevel(l)
			sd.lvls[i] = nil
		}
		sd.lvls = sd.lvls[:0]
		sd.keys = sd.keys[:0]
	}
	clear(b.index.slots)
	b.index.n = 0
	b.tradeSeq = 0
	for _, o := range init {
		b.Submit(o)
	}
}

type countSink struct{ trades, cancels int }

func (s *countSink) OnTrade(Trade)   { s.trades++ }
func (s *countSink) OnCancel(Cancel) { s.cancels++ }

func runBenchOp(b *Book, op *benchOp) bool {
	switch op.kind {
	case 0:
		_, err := b.Submit(Order{ID: op.id, Account: uint64(op.acct), Side: op.side, Type: op.typ, Price: op.price, Qty: op.qty})
		return err == nil
	case 1:
		return b.Cancel(op.id) == nil
	default:
		_, err := b.Replace(op.id, op.price, op.qty)
		return err == nil
	}
}

func setupBench(b *testing.B, algo Algorithm) (*benchStream, *Book, *countSink) {
	st := benchStreamOnce()
	sink := &countSink{}
	book := NewBook("BENCH", algo, sink)
	// warm up: one full pass sizes the pools, index and level arrays.
	resetBook(book, st.init)
	for i := range st.ops {
		runBenchOp(book, &st.ops[i])
	}
	resetBook(book, st.init)
	*sink = countSink{}
	return st, book, sink
}

func benchMix(b *testing.B, algo Algorithm) {
	st, book, sink := setupBench(b, algo)
	var failed, cancelsOK, cancelOps int
	b.ReportAllocs()
	b.ResetTimer()
	j := 0
	for i := 0; i < b.N; i++ {
		if j == len(st.ops) {
			b.StopTimer()
			resetBook(book, st.init)
			j = 0
			b.StartTimer()
		}
		op := &st.ops[j]
		j++
		ok := runBenchOp(book, op)
		if !ok {
			failed++
		}
		if op.kind == 1 {
			cancelOps++
			if ok {
				cancelsOK++
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(sink.trades)/float64(b.N), "trades/op")
	b.ReportMetric(float64(cancelsOK)/float64(b.N), "cancels/op")
	b.ReportMetric(float64(failed)/float64(b.N), "rejects/op")
	b.ReportMetric(st.avgOrders, "book-orders")
	b.ReportMetric(st.avgLevels, "book-levels")
	if algo.Name() == "fifo" && failed != 0 {
		b.Fatalf("%d ops rejected: the stream no longer matches the book", failed)
	}
}

func BenchmarkEngineMixFIFO(b *testing.B)    { benchMix(b, FIFO{}) }
func BenchmarkEngineMixProRata(b *testing.B) { benchMix(b, ProRata{}) }

// BenchmarkEngineLatency times every operation individually (the clock
// reads add their own ~20-40ns, so throughput is measured separately above)
// and reports percentiles from a log-linear histogram.
func BenchmarkEngineLatency(b *testing.B) {
	st, book, _ := setupBench(b, FIFO{})
	h := &latency.Histogram{}
	b.ReportAllocs()
	b.ResetTimer()
	j := 0
	for i := 0; i < b.N; i++ {
		if j == len(st.ops) {
			b.StopTimer()
			resetBook(book, st.init)
			j = 0
			b.StartTimer()
		}
		op := &st.ops[j]
		j++
		t0 := time.Now()
		runBenchOp(book, op)
		h.Record(time.Since(t0))
	}
	b.StopTimer()
	b.ReportMetric(float64(h.Quantile(0.50)), "p50-ns")
	b.ReportMetric(float64(h.Quantile(0.99)), "p99-ns")
	b.ReportMetric(float64(h.Quantile(0.999)), "p99.9-ns")
	b.ReportMetric(float64(h.Max()), "max-ns")
}

// TestBenchStreamSanity checks the generator: book size and level count near
// their targets, every op valid, trades happen.
func TestBenchStreamSanity(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	st := genBenchStream(42, 200_000)
	sink := &countSink{}
	book := NewBook("BENCH", FIFO{}, sink)
	resetBook(book, st.init)
	var kinds [3]int
	for i := range st.ops {
		kinds[st.ops[i].kind]++
		if !runBenchOp(book, &st.ops[i]) {
			t.Fatalf("op %d (%+v) rejected", i, st.ops[i])
		}
	}
	t.Logf("avg orders %.0f, avg levels %.0f, trades %d, cancel events %d, mix submit/cancel/replace %v",
		st.avgOrders, st.avgLevels, sink.trades, sink.cancels, kinds)
	if st.avgOrders < 800 || st.avgOrders > 1200 || sink.trades < len(st.ops)/100 {
		t.Fatalf("stream off target")
	}
	if err := book.checkInvariants(); err != nil {
		t.Fatal(err)
	}
}
