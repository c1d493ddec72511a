package oms

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/fixed"
)

// The hand-written encoders write exactly what encoding/json writes, so the
// stored format (read back with encoding/json) does not depend on which
// wrote it.
func TestEncodeMatchesJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	strs := []string{"", "alice", "c-1", "a<b>&\"q\"\\", "tab\there", "naïve", "\xff\xfe", "risk: quantity 5 is above 1"}
	str := func() string { return strs[rng.IntN(len(strs))] }
	dec := func() fixed.Decimal {
		if rng.IntN(3) == 0 {
			return 0
		}
		return fixed.Decimal(rng.Int64N(1e18) - 5e17)
	}
	tm := func() time.Time {
		switch rng.IntN(4) {
		case 0:
			return time.Time{}
		case 1:
			return time.Unix(rng.Int64N(4e9), 0).UTC()
		}
		return time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)).In(time.FixedZone("x", 3600*rng.IntN(5)))
	}
	event := func() Event {
		e := Event{Seq: rng.Uint64(), Status: Status(rng.IntN(8)), Time: tm(), Reason: str(), Price: dec(), Quantity: dec()}
		if rng.IntN(2) == 0 {
			e.Fill = &Fill{TradeSeq: rng.Uint64N(1e6), Price: dec(), Quantity: dec(), Maker: rng.IntN(2) == 0, ExecutedAt: tm()}
		}
		return e
	}
	for range 2000 {
		o := Order{ID: rng.Uint64(), ClientOrderID: str(), Account: str(), Symbol: str(), Side: Side(rng.IntN(3)), Type: OrderType(rng.IntN(6)),
			Price: dec(), Quantity: dec(), Filled: dec(), FilledNotional: dec(), Status: Status(rng.IntN(7)), CreatedAt: tm(), UpdatedAt: tm(),
			Seq: rng.Uint64(), Unresolved: str()}
		for range rng.IntN(3) {
			o.RejectReasons = append(o.RejectReasons, str())
		}
		if rng.IntN(4) > 0 {
			o.History = []Event{}
			for range rng.IntN(4) {
				o.History = append(o.History, event())
			}
		}
		want, err := json.Marshal(&o)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendOrder(nil, &o); string(got) != string(want) {
			t.Fatalf("order:\n got %s\nwant %s", got, want)
		}
		snap := o
		snap.History = nil
		u := Update{Seq: rng.Uint64(), OrderID: o.ID, Event: event(), Order: snap}
		if want, err = json.Marshal(&u); err != nil {
			t.Fatal(err)
		}
		if got := appendUpdate(nil, &u); string(got) != string(want) {
			t.Fatalf("update:\n got %s\nwant %s", got, want)
		}
	}
}
