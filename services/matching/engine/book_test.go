package engine

import (
	"errors"
	"testing"
)

func lim(id, acct uint64, s Side, price, qty int64) Order {
	return Order{ID: id, Account: acct, Side: s, Type: Limit, Price: price, Qty: qty}
}

func typed(t OrderType, o Order) Order { o.Type = t; return o }

// action is one step of a table case.
type action struct {
	submit  *Order
	cancel  uint64
	replace *[3]int64 // id, price, qty
}

func sub(o Order) action               { return action{submit: &o} }
func cxl(id uint64) action             { return action{cancel: id} }
func rep(id uint64, p, q int64) action { return action{replace: &[3]int64{int64(id), p, q}} }

type tcase struct {
	name     string
	setup    []Order // limit orders, all must be accepted
	act      action
	err      error
	trades   string            // for both algorithms unless tradesBy has the algorithm
	tradesBy map[string]string // algorithm name -> trades
	book     string
	bookBy   map[string]string
	res      *Result
	cancels  string // "id:qty:reason;..." (both algorithms)
}

func cancelsString(cs []Cancel) string {
	s := ""
	for i, c := range cs {
		if i > 0 {
			s += ";"
		}
		s += itoa(int64(c.OrderID)) + ":" + itoa(c.Qty) + ":" + c.Reason.String()
	}
	return s
}

func itoa(v int64) string {
	if v == 0 {
		return "0"
	}
	neg := v < 0
	if neg {
		v = -v
	}
	var b [24]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

const A, B, C = 7, 8, 9 // accounts

var tableCases = []tcase{
	{name: "limit rests", act: sub(lim(1, A, Buy, 100, 10)), book: "bids[100:1x10] asks[]", res: &Result{Resting: 10}},
	{name: "limit partial cross rests remainder", setup: []Order{lim(1, A, Sell, 101, 5)},
		act: sub(lim(2, B, Buy, 101, 8)), trades: "2<-1 5@101", book: "bids[101:2x3] asks[]",
		res: &Result{Filled: 5, Resting: 3, Trades: 1}},
	{name: "limit sweeps levels at maker prices", setup: []Order{lim(1, A, Sell, 101, 5), lim(2, A, Sell, 102, 5), lim(3, A, Sell, 104, 5)},
		act: sub(lim(4, B, Buy, 103, 12)), trades: "4<-1 5@101;4<-2 5@102", book: "bids[103:4x2] asks[104:3x5]"},
	{name: "sell limit sweeps bids", setup: []Order{lim(1, A, Buy, 99, 5), lim(2, A, Buy, 98, 5)},
		act: sub(lim(3, B, Sell, 98, 7)), trades: "3<-1 5@99;3<-2 2@98", book: "bids[98:2x3] asks[]"},
	{name: "limit does not cross", setup: []Order{lim(1, A, Sell, 101, 5)},
		act: sub(lim(2, B, Buy, 100, 5)), book: "bids[100:2x5] asks[101:1x5]"},
	{name: "market fills then cancels remainder", setup: []Order{lim(1, A, Sell, 101, 5), lim(2, A, Sell, 150, 5)},
		act: sub(Order{ID: 3, Account: B, Side: Buy, Type: Market, Qty: 12}), trades: "3<-1 5@101;3<-2 5@150",
		book: "bids[] asks[]", res: &Result{Filled: 10, Cancelled: 2, Trades: 2}, cancels: "3:2:unfilled"},
	{name: "market on empty book", act: sub(Order{ID: 3, Account: B, Side: Sell, Type: Market, Qty: 5}),
		book: "bids[] asks[]", res: &Result{Cancelled: 5}, cancels: "3:5:unfilled"},
	{name: "ioc partial", setup: []Order{lim(1, A, Sell, 100, 3)},
		act: sub(typed(IOC, lim(2, B, Buy, 100, 5))), trades: "2<-1 3@100", book: "bids[] asks[]",
		res: &Result{Filled: 3, Cancelled: 2, Trades: 1}, cancels: "2:2:unfilled"},
	{name: "ioc no cross", setup: []Order{lim(1, A, Sell, 101, 3)},
		act: sub(typed(IOC, lim(2, B, Buy, 100, 5))), book: "bids[] asks[101:1x3]", res: &Result{Cancelled: 5}},
	{name: "fok fills across levels", setup: []Order{lim(1, A, Sell, 100, 3), lim(2, A, Sell, 101, 3)},
		act: sub(typed(FOK, lim(3, B, Buy, 101, 6))), trades: "3<-1 3@100;3<-2 3@101", book: "bids[] asks[]",
		res: &Result{Filled: 6, Trades: 2}},
	{name: "fok not fillable", setup: []Order{lim(1, A, Sell, 100, 3), lim(2, A, Sell, 102, 3)},
		act: sub(typed(FOK, lim(3, B, Buy, 101, 4))), err: ErrFOKNotFillable, book: "bids[] asks[100:1x3 102:2x3]"},
	{name: "fok not fillable counting own orders out", setup: []Order{lim(1, A, Sell, 100, 3), lim(2, B, Sell, 100, 3)},
		act: sub(typed(FOK, lim(3, A, Buy, 100, 4))), err: ErrFOKNotFillable, book: "bids[] asks[100:1x3,2x3]"},
	{name: "fok fillable cancels own resting", setup: []Order{lim(1, A, Sell, 100, 3), lim(2, B, Sell, 100, 5)},
		act: sub(typed(FOK, lim(3, A, Buy, 100, 4))), trades: "3<-2 4@100", book: "bids[] asks[100:2x1]",
		cancels: "1:3:self-trade"},
	{name: "post-only crossing rejected", setup: []Order{lim(1, A, Sell, 100, 3)},
		act: sub(typed(PostOnly, lim(2, B, Buy, 100, 2))), err: ErrPostOnlyWouldCross, book: "bids[] asks[100:1x3]"},
	{name: "post-only crossing own order still rejected", setup: []Order{lim(1, A, Sell, 100, 3)},
		act: sub(typed(PostOnly, lim(2, A, Buy, 101, 2))), err: ErrPostOnlyWouldCross, book: "bids[] asks[100:1x3]"},
	{name: "post-only rests", setup: []Order{lim(1, A, Sell, 100, 3)},
		act: sub(typed(PostOnly, lim(2, B, Buy, 99, 2))), book: "bids[99:2x2] asks[100:1x3]", res: &Result{Resting: 2}},
	{name: "cancel", setup: []Order{lim(1, A, Buy, 100, 5), lim(2, A, Buy, 100, 6)},
		act: cxl(1), book: "bids[100:2x6] asks[]", cancels: "1:5:user"},
	{name: "cancel last order removes level", setup: []Order{lim(1, A, Buy, 100, 5), lim(2, A, Buy, 99, 6)},
		act: cxl(1), book: "bids[99:2x6] asks[]"},
	{name: "cancel unknown", setup: []Order{lim(1, A, Buy, 100, 5)}, act: cxl(9), err: ErrUnknownOrder, book: "bids[100:1x5] asks[]"},
	{name: "cancel id 0", act: cxl(0), err: ErrInvalidOrderID, book: "bids[] asks[]"},
	{name: "duplicate id", setup: []Order{lim(1, A, Buy, 100, 5)},
		act: sub(lim(1, A, Buy, 99, 5)), err: ErrDuplicateOrderID, book: "bids[100:1x5] asks[]"},
	{name: "duplicate id on ioc", setup: []Order{lim(1, A, Buy, 100, 5)},
		act: sub(typed(IOC, lim(1, B, Sell, 100, 5))), err: ErrDuplicateOrderID, book: "bids[100:1x5] asks[]"},
	{name: "qty 0", act: sub(lim(1, A, Buy, 100, 0)), err: ErrInvalidQuantity, book: "bids[] asks[]"},
	{name: "qty negative", act: sub(lim(1, A, Buy, 100, -3)), err: ErrInvalidQuantity, book: "bids[] asks[]"},
	{name: "qty too large", act: sub(lim(1, A, Buy, 100, MaxQuantity+1)), err: ErrInvalidQuantity, book: "bids[] asks[]"},
	{name: "price 0", act: sub(lim(1, A, Buy, 0, 1)), err: ErrInvalidPrice, book: "bids[] asks[]"},
	{name: "price negative", act: sub(lim(1, A, Sell, -5, 1)), err: ErrInvalidPrice, book: "bids[] asks[]"},
	{name: "price too large", act: sub(typed(IOC, lim(1, A, Sell, MaxPrice+1, 1))), err: ErrInvalidPrice, book: "bids[] asks[]"},
	{name: "market ignores price", act: sub(Order{ID: 1, Side: Buy, Type: Market, Price: -7, Qty: 1}), book: "bids[] asks[]", res: &Result{Cancelled: 1}},
	{name: "invalid side", act: sub(Order{ID: 1, Side: 3, Type: Limit, Price: 1, Qty: 1}), err: ErrInvalidSide, book: "bids[] asks[]"},
	{name: "invalid type", act: sub(Order{ID: 1, Side: Buy, Type: 9, Price: 1, Qty: 1}), err: ErrInvalidOrderType, book: "bids[] asks[]"},
	{name: "id 0", act: sub(lim(0, A, Buy, 100, 1)), err: ErrInvalidOrderID, book: "bids[] asks[]"},
	{name: "replace reduce keeps priority", setup: []Order{lim(1, A, Buy, 100, 5), lim(2, B, Buy, 100, 5)},
		act: rep(1, 100, 3), book: "bids[100:1x3,2x5] asks[]", res: &Result{Resting: 3}},
	{name: "replace same size keeps priority", setup: []Order{lim(1, A, Buy, 100, 5), lim(2, B, Buy, 100, 5)},
		act: rep(1, 100, 5), book: "bids[100:1x5,2x5] asks[]"},
	{name: "replace increase loses priority", setup: []Order{lim(1, A, Buy, 100, 5), lim(2, B, Buy, 100, 5)},
		act: rep(1, 100, 7), book: "bids[100:2x5,1x7] asks[]"},
	{name: "replace price change loses priority", setup: []Order{lim(1, A, Buy, 100, 5), lim(2, A, Buy, 101, 5), lim(3, A, Buy, 100, 5)},
		act: rep(2, 100, 5), book: "bids[100:1x5,3x5,2x5] asks[]"},
	{name: "replace price change and back loses priority", setup: []Order{lim(1, A, Buy, 100, 5), lim(2, A, Buy, 100, 5)},
		act: rep(1, 100, 6), book: "bids[100:2x5,1x6] asks[]"},
	{name: "replace crossing matches", setup: []Order{lim(1, A, Buy, 100, 5), lim(2, B, Sell, 102, 3)},
		act: rep(1, 103, 5), trades: "1<-2 3@102", book: "bids[103:1x2] asks[]", res: &Result{Filled: 3, Resting: 2, Trades: 1}},
	{name: "replace crossing fully filled", setup: []Order{lim(1, A, Buy, 100, 2), lim(2, B, Sell, 102, 3)},
		act: rep(1, 102, 2), trades: "1<-2 2@102", book: "bids[] asks[102:2x1]"},
	{name: "replace crossing own order stp", setup: []Order{lim(1, A, Buy, 100, 2), lim(2, A, Sell, 102, 3)},
		act: rep(1, 102, 2), book: "bids[102:1x2] asks[]", cancels: "2:3:self-trade"},
	{name: "replace unknown", act: rep(5, 100, 1), err: ErrUnknownOrder, book: "bids[] asks[]"},
	{name: "replace bad qty", setup: []Order{lim(1, A, Buy, 100, 2)}, act: rep(1, 100, 0), err: ErrInvalidQuantity, book: "bids[100:1x2] asks[]"},
	{name: "replace bad price", setup: []Order{lim(1, A, Buy, 100, 2)}, act: rep(1, 0, 1), err: ErrInvalidPrice, book: "bids[100:1x2] asks[]"},
	{name: "stp cancels resting and continues", setup: []Order{lim(1, A, Sell, 100, 5), lim(2, B, Sell, 100, 5)},
		act: sub(lim(3, A, Buy, 100, 4)), trades: "3<-2 4@100", book: "bids[] asks[100:2x1]", cancels: "1:5:self-trade"},
	{name: "stp then rests", setup: []Order{lim(1, A, Sell, 100, 5)},
		act: sub(lim(3, A, Buy, 100, 3)), book: "bids[100:3x3] asks[]", cancels: "1:5:self-trade"},
	{name: "stp on market across levels", setup: []Order{lim(1, B, Sell, 100, 2), lim(2, A, Sell, 101, 5), lim(3, B, Sell, 102, 5)},
		act: sub(Order{ID: 4, Account: A, Side: Buy, Type: Market, Qty: 4}), trades: "4<-1 2@100;4<-3 2@102",
		book: "bids[] asks[102:3x3]", cancels: "2:5:self-trade"},
	// Multi-order levels: the algorithms differ.
	{name: "level allocation equal sizes", setup: []Order{lim(1, A, Sell, 100, 5), lim(2, A, Sell, 100, 5), lim(3, A, Sell, 100, 5)},
		act:      sub(typed(IOC, lim(4, B, Buy, 100, 7))),
		tradesBy: map[string]string{"fifo": "4<-1 5@100;4<-2 2@100", "pro-rata": "4<-1 3@100;4<-2 2@100;4<-3 2@100"},
		bookBy:   map[string]string{"fifo": "bids[] asks[100:2x3,3x5]", "pro-rata": "bids[] asks[100:1x2,2x3,3x3]"}},
	{name: "pro-rata rounding 10/20/30 of 25", setup: []Order{lim(1, A, Sell, 100, 10), lim(2, A, Sell, 100, 20), lim(3, A, Sell, 100, 30)},
		act:      sub(typed(IOC, lim(4, B, Buy, 100, 25))),
		tradesBy: map[string]string{"fifo": "4<-1 10@100;4<-2 15@100", "pro-rata": "4<-1 5@100;4<-2 8@100;4<-3 12@100"},
		bookBy:   map[string]string{"fifo": "bids[] asks[100:2x5,3x30]", "pro-rata": "bids[] asks[100:1x5,2x12,3x18]"}},
	{name: "pro-rata all floors zero residual fifo", setup: []Order{lim(1, A, Sell, 100, 1), lim(2, A, Sell, 100, 1), lim(3, A, Sell, 100, 1), lim(5, A, Sell, 100, 1)},
		act: sub(typed(IOC, lim(4, B, Buy, 100, 3))), trades: "4<-1 1@100;4<-2 1@100;4<-3 1@100", book: "bids[] asks[100:5x1]"},
	{name: "pro-rata residual to small oldest order", setup: []Order{lim(1, A, Sell, 100, 1), lim(2, A, Sell, 100, 100)},
		act:      sub(typed(IOC, lim(4, B, Buy, 100, 50))),
		tradesBy: map[string]string{"fifo": "4<-1 1@100;4<-2 49@100", "pro-rata": "4<-1 1@100;4<-2 49@100"},
		book:     "bids[] asks[100:2x51]"},
	{name: "pro-rata residual capped by size then next", setup: []Order{lim(1, A, Sell, 100, 2), lim(2, A, Sell, 100, 3), lim(3, A, Sell, 100, 3)},
		// 7 of 8: floors 7*2/8=1, 7*3/8=2, 2 -> 5, residual 2: order1 +1 (full), order2 +1
		act:      sub(typed(IOC, lim(4, B, Buy, 100, 7))),
		tradesBy: map[string]string{"fifo": "4<-1 2@100;4<-2 3@100;4<-3 2@100", "pro-rata": "4<-1 2@100;4<-2 3@100;4<-3 2@100"},
		book:     "bids[] asks[100:3x1]"},
	{name: "pro-rata incoming covers level then next level", setup: []Order{lim(1, A, Sell, 100, 2), lim(2, A, Sell, 100, 3), lim(3, A, Sell, 101, 2), lim(5, A, Sell, 101, 2)},
		act: sub(lim(4, B, Buy, 101, 6)), trades: "4<-1 2@100;4<-2 3@100;4<-3 1@101", book: "bids[] asks[101:3x1,5x2]"},
	{name: "pro-rata stp removes all own orders at level", setup: []Order{lim(1, A, Sell, 100, 4), lim(2, B, Sell, 100, 4), lim(3, A, Sell, 100, 4)},
		act:      sub(typed(IOC, lim(4, A, Buy, 100, 2))),
		tradesBy: map[string]string{"fifo": "4<-2 2@100", "pro-rata": "4<-2 2@100"},
		bookBy:   map[string]string{"fifo": "bids[] asks[100:2x2,3x4]", "pro-rata": "bids[] asks[100:2x2]"}},
	{name: "reduced order keeps priority when filled", setup: []Order{lim(1, A, Buy, 100, 5), lim(2, B, Buy, 100, 5), lim(9, B, Buy, 90, 1)},
		act: rep(1, 100, 3), book: "bids[100:1x3,2x5 90:9x1] asks[]"},
}

func runAction(b *Book, a action) (Result, error) {
	switch {
	case a.submit != nil:
		return b.Submit(*a.submit)
	case a.replace != nil:
		return b.Replace(uint64(a.replace[0]), a.replace[1], a.replace[2])
	default:
		return Result{}, b.Cancel(a.cancel)
	}
}

func TestTable(t *testing.T) {
	for _, algo := range []Algorithm{FIFO{}, ProRata{}} {
		for _, tc := range tableCases {
			t.Run(algo.Name()+"/"+tc.name, func(t *testing.T) {
				sink := &SliceSink{}
				b := NewBook("X", algo, sink)
				for _, o := range tc.setup {
					if _, err := b.Submit(o); err != nil {
						t.Fatalf("setup %+v: %v", o, err)
					}
				}
				sink.Reset()
				seq0 := b.TradeSeq()
				before := bookString(b)
				res, err := runAction(b, tc.act)
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				if err != nil && bookString(b) != before {
					t.Fatalf("rejected input changed the book: %s -> %s", before, bookString(b))
				}
				wantTrades := tc.trades
				if s, ok := tc.tradesBy[algo.Name()]; ok {
					wantTrades = s
				}
				if got := tradesString(sink.Trades); got != wantTrades {
					t.Errorf("trades = %q, want %q", got, wantTrades)
				}
				for i, tr := range sink.Trades {
					if tr.Seq != seq0+uint64(i)+1 {
						t.Errorf("trade %d seq %d, want %d", i, tr.Seq, seq0+uint64(i)+1)
					}
				}
				wantBook := tc.book
				if s, ok := tc.bookBy[algo.Name()]; ok {
					wantBook = s
				}
				if got := bookString(b); got != wantBook {
					t.Errorf("book = %q, want %q", got, wantBook)
				}
				if tc.res != nil && res != *tc.res {
					t.Errorf("result = %+v, want %+v", res, *tc.res)
				}
				if tc.cancels != "" {
					if got := cancelsString(sink.Cancels); got != tc.cancels {
						t.Errorf("cancels = %q, want %q", got, tc.cancels)
					}
				}
				if err := b.checkInvariants(); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// A reduced order keeps its place: an incoming sell fills it first.
func TestReplaceReducePriorityFills(t *testing.T) {
	sink := &SliceSink{}
	b := NewBook("X", nil, sink)
	b.Submit(lim(1, A, Buy, 100, 5))
	b.Submit(lim(2, B, Buy, 100, 5))
	if _, err := b.Replace(1, 100, 3); err != nil {
		t.Fatal(err)
	}
	b.Submit(typed(IOC, lim(3, C, Sell, 100, 4)))
	if got := tradesString(sink.Trades); got != "3<-1 3@100;3<-2 1@100" {
		t.Fatal(got)
	}
}

type badAlgo struct{}

func (badAlgo) Name() string { return "bad" }
func (badAlgo) Allocate(qty int64, sizes, alloc []int64) {
	for i := range alloc {
		alloc[i] = qty * 3 // way too much
	}
	if len(alloc) > 1 {
		alloc[1] = -100
	}
}

func TestFaultyAlgorithmIsContained(t *testing.T) {
	sink := &SliceSink{}
	b := NewBook("X", badAlgo{}, sink)
	for i := uint64(1); i <= 4; i++ {
		b.Submit(lim(i, A, Sell, 100, 5))
	}
	res, err := b.Submit(typed(IOC, lim(9, B, Buy, 100, 7)))
	if err != nil || res.Filled != 7 {
		t.Fatalf("%+v %v", res, err)
	}
	if err := b.checkInvariants(); err != nil {
		t.Fatal(err)
	}
}

func TestProRataAllocateLarge(t *testing.T) {
	// 128-bit intermediate: qty*size overflows int64.
	sizes := []int64{MaxQuantity, MaxQuantity, MaxQuantity}
	alloc := make([]int64, 3)
	ProRata{}.Allocate(MaxQuantity, sizes, alloc)
	var sum int64
	for _, a := range alloc {
		sum += a
	}
	if sum != MaxQuantity || alloc[0] < alloc[2] {
		t.Fatal(alloc)
	}
}

func TestEngineLazyBooksAndErrors(t *testing.T) {
	e, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Algorithm: "nope"}); err != ErrUnknownAlgorithm {
		t.Fatal(err)
	}
	if len(e.Symbols()) != 0 {
		t.Fatal("books created eagerly")
	}
	if err := e.Cancel("AAA", 1); err != ErrUnknownOrder {
		t.Fatal(err)
	}
	if _, err := e.Replace("AAA", 1, 1, 1); err != ErrUnknownOrder {
		t.Fatal(err)
	}
	if _, err := e.Submit("", lim(1, A, Buy, 1, 1)); err != ErrInvalidSymbol {
		t.Fatal(err)
	}
	if len(e.Symbols()) != 0 {
		t.Fatal("book created by cancel/replace")
	}
	e.Submit("AAA", lim(1, A, Buy, 100, 1))
	e.Submit("BBB", lim(1, A, Buy, 100, 1))
	if err := e.SetAlgorithm("BBB", "pro-rata"); err != nil {
		t.Fatal(err)
	}
	if err := e.SetAlgorithm("BBB", "x"); err != ErrUnknownAlgorithm {
		t.Fatal(err)
	}
	if got := e.Symbols(); len(got) != 2 || got[0] != "AAA" {
		t.Fatal(got)
	}
	m0 := e.MemoryBytes()
	for i := uint64(2); i < 3000; i++ {
		e.Submit("AAA", lim(i, A, Buy, 100+int64(i%500), 1))
	}
	if m1 := e.MemoryBytes(); m1 <= m0 {
		t.Fatalf("memory estimate did not grow: %d -> %d", m0, m1)
	}
	e.With("BBB", func(b *Book) {
		if b.Algorithm().Name() != "pro-rata" {
			t.Fatal("algorithm not set")
		}
	})
}

func TestSnapshotRoundTrip(t *testing.T) {
	b := NewBook("SYM", ProRata{}, nil)
	b.Submit(lim(1, A, Buy, 100, 5))
	b.Submit(lim(2, B, Buy, 100, 6))
	b.Submit(typed(PostOnly, lim(3, A, Buy, 99, 7)))
	b.Submit(lim(4, B, Sell, 105, 8))
	b.Submit(typed(IOC, lim(5, C, Sell, 100, 1)))
	data, _ := b.MarshalBinary()
	r, err := UnmarshalBook(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bookString(r) != bookString(b) || r.TradeSeq() != b.TradeSeq() || r.Algorithm().Name() != "pro-rata" {
		t.Fatalf("%s vs %s", bookString(r), bookString(b))
	}
	if o, _ := r.Order(3); !o.PostOnly {
		t.Fatal("post-only flag lost")
	}
	// every truncation / bit flip is rejected without panicking
	for i := 0; i < len(data); i++ {
		if _, err := UnmarshalBook(data[:i], nil); err == nil {
			t.Fatalf("truncated snapshot at %d accepted", i)
		}
		c := append([]byte(nil), data...)
		c[i] ^= 0x40
		if _, err := UnmarshalBook(c, nil); err == nil {
			t.Fatalf("corrupt snapshot at %d accepted", i)
		}
	}
}

func TestSteadyStateZeroAllocs(t *testing.T) {
	b := NewBook("X", nil, nil)
	id := uint64(1)
	warm := func() {
		for i := 0; i < 2000; i++ {
			b.Submit(lim(id, uint64(id%5), Side(1+id%2), 1000+int64(id%50)-25, 1+int64(id%7)))
			id++
			if id%3 == 0 {
				b.Cancel(id - 2)
			}
		}
	}
	warm()
	warm()
	allocs := testing.AllocsPerRun(100, func() { warm() })
	if allocs != 0 {
		t.Fatalf("allocs per run = %v", allocs)
	}
	bp := NewBook("Y", ProRata{}, nil)
	b = bp
	warm()
	warm()
	if a := testing.AllocsPerRun(100, func() { warm() }); a != 0 {
		t.Fatalf("pro-rata allocs per run = %v", a)
	}
}
