package oms

import (
	"errors"
	"strings"
	"testing"

	"github.com/tradsys/mesh/pkg/fixed"
)

func TestTransitions(t *testing.T) {
	legal := map[[2]Status]bool{
		{New, Accepted}: true, {New, Rejected}: true,
		{Accepted, PartiallyFilled}: true, {Accepted, Filled}: true, {Accepted, Canceled}: true,
		{PartiallyFilled, PartiallyFilled}: true, {PartiallyFilled, Filled}: true, {PartiallyFilled, Canceled}: true,
	}
	all := []Status{New, Accepted, PartiallyFilled, Filled, Rejected, Canceled}
	for _, from := range all {
		for _, to := range all {
			if got := CanMove(from, to); got != legal[[2]Status{from, to}] {
				t.Errorf("CanMove(%v, %v) = %v", from, to, got)
			}
		}
	}
	// None skipped: a fill on a NEW order is recorded as ACCEPTED first.
	tx := &txn{st: &state{orders: map[uint64]*Order{}, positions: map[posKey]*Position{}, open: map[openKey]fixed.Decimal{}, nextSeq: 1},
		orders: map[uint64]bool{}, positions: map[posKey]bool{}}
	o := &Order{ID: 7, Account: "a", Symbol: "S", Side: Buy, Quantity: fixed.Must("2"), Status: New}
	tx.st.orders[7] = o
	tx.fill(o, Fill{TradeSeq: 1, Price: fixed.Must("10.5"), Quantity: fixed.Must("0.5")})
	tx.fill(o, Fill{TradeSeq: 2, Price: fixed.Must("11"), Quantity: fixed.Must("1.5")})
	var got []Status
	for _, e := range o.History {
		got = append(got, e.Status)
	}
	if want := []Status{Accepted, PartiallyFilled, Filled}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("history %v, want %v", got, want)
	}
	if avg := o.AveragePrice(); avg.Text() != "10.875" {
		t.Fatalf("average price %s, want 10.875", avg.Text())
	}
	if p := tx.st.positions[posKey{"a", "S"}]; p.Net().Text() != "2" || p.BoughtNotional.Text() != "21.75" {
		t.Fatalf("position %+v", p)
	}
	if err := tx.move(o, Canceled, ""); !errors.Is(err, ErrBadTransition) {
		t.Fatalf("cancel of a filled order: %v", err)
	}
}

func TestTradeMarkAppliesOnce(t *testing.T) {
	var m tradeMark
	for _, seq := range []uint64{3, 1, 5, 2} {
		if m.seen(seq) {
			t.Fatalf("%d seen before it was added", seq)
		}
		m.add(seq)
	}
	for _, seq := range []uint64{1, 2, 3, 5} {
		if !m.seen(seq) {
			t.Fatalf("%d not seen", seq)
		}
	}
	if m.seen(4) || m.Through != 3 || len(m.Above) != 1 {
		t.Fatalf("mark %+v: want through 3, 5 above, 4 missing", m)
	}
	m.add(4)
	if m.Through != 5 || len(m.Above) != 0 {
		t.Fatalf("mark %+v: want through 5", m)
	}
}

func TestGrids(t *testing.T) {
	in := Instrument{Symbol: "BTC-USD", TickSize: fixed.Must("0.01"), LotSize: fixed.Must("0.001"),
		MinPrice: fixed.Must("1"), MaxQuantity: fixed.Must("100")}
	if err := in.Check(); err != nil {
		t.Fatal(err)
	}
	if ticks, err := in.Ticks("price", fixed.Must("86780.01")); err != nil || ticks != 8678001 {
		t.Fatalf("ticks %d %v", ticks, err)
	}
	if lots, err := in.Lots("quantity", fixed.Must("0.015")); err != nil || lots != 15 {
		t.Fatalf("lots %d %v", lots, err)
	}
	for _, c := range []struct {
		price, qty  string
		field, want string
	}{
		{"86780.015", "1", "price", "not a multiple of the tick size 0.01"},
		{"0.5", "1", "price", "below BTC-USD's minimum price 1"},
		{"100", "0.0015", "quantity", "not a multiple of the lot size 0.001"},
		{"100", "100.001", "quantity", "above BTC-USD's maximum quantity 100"},
	} {
		_, perr := in.Ticks("price", fixed.Must(c.price))
		_, qerr := in.Lots("quantity", fixed.Must(c.qty))
		err := perr
		if c.field == "quantity" {
			err = qerr
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(fe.Reason, c.want) {
			t.Errorf("%s/%s: %v, want a %s error containing %q", c.price, c.qty, err, c.field, c.want)
		}
	}
	if p, ok := in.Price(8678001); !ok || p.Text() != "86780.01" {
		t.Fatalf("price of 8678001 ticks: %s", p.Text())
	}
	bad := Instrument{Symbol: "X", TickSize: fixed.Must("0.03"), LotSize: fixed.Must("1"), MinPrice: fixed.Must("0.05")}
	if err := bad.Check(); err == nil || !strings.Contains(err.Error(), "instrument.min_price") {
		t.Fatalf("min price off the grid: %v", err)
	}
}

// Matching takes orders from other clients too (tools, benchmarks) with
// ids of their own choosing: a trade whose side of an id is not this
// service's order's side, or whose account number is not that order's
// account's, is another client's and changes neither order nor position.
func TestTradeOfAnotherClientsOrderWithTheSameID(t *testing.T) {
	in := &Instrument{Symbol: "S", TickSize: fixed.Must("1"), LotSize: fixed.Must("1")}
	tx := &txn{st: &state{orders: map[uint64]*Order{}, positions: map[posKey]*Position{}, open: map[openKey]fixed.Decimal{},
		trades: map[string]*tradeMark{}, accounts: map[string]uint64{"a": 1, "b": 2}, nextSeq: 1},
		orders: map[uint64]bool{}, positions: map[posKey]bool{}, trades: map[string]bool{}}
	buy := &Order{ID: 7, Account: "a", Symbol: "S", Side: Buy, Quantity: fixed.Must("5"), Status: Accepted}
	sell := &Order{ID: 8, Account: "b", Symbol: "S", Side: Sell, Quantity: fixed.Must("5"), Status: Accepted}
	tx.st.orders[7], tx.st.orders[8] = buy, sell
	// Order 7 is a buy: as the maker of a buyer's trade it was a sell,
	// someone else's. Order 8's account is 2, not 9.
	tx.applyTrade(in, Trade{Symbol: "S", Seq: 1, Ticks: 10, Lots: 1, TakerID: 99, MakerID: 7, TakerSide: Buy})
	tx.applyTrade(in, Trade{Symbol: "S", Seq: 2, Ticks: 10, Lots: 1, TakerID: 8, MakerID: 98, TakerSide: Sell, TakerAccount: 9})
	if buy.Filled != 0 || sell.Filled != 0 || len(tx.st.positions) != 0 {
		t.Fatalf("another client's trades applied: buy filled %s, sell filled %s, positions %v", buy.Filled.Text(), sell.Filled.Text(), tx.st.positions)
	}
	// Their own trade (sides and accounts as theirs) is applied to both.
	tx.applyTrade(in, Trade{Symbol: "S", Seq: 3, Ticks: 10, Lots: 2, TakerID: 7, MakerID: 8, TakerSide: Buy, TakerAccount: 1, MakerAccount: 2})
	if buy.Filled.Text() != "2" || sell.Filled.Text() != "2" {
		t.Fatalf("their own trade: buy filled %s, sell filled %s", buy.Filled.Text(), sell.Filled.Text())
	}
}

// A decimal past fixed's range says so and names the largest there is.
func TestParseDecimalOutOfRange(t *testing.T) {
	_, err := ParseDecimal("instrument.max_price", "99999999999")
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "instrument.max_price" || fe.Reason != `"99999999999" is above the largest decimal, `+fixed.Max.Text() {
		t.Fatalf("99999999999: %v", err)
	}
}
