package engine

import (
	"fmt"
	"strings"
)

// checkInvariants verifies every structural invariant of the book.
func (b *Book) checkInvariants() error {
	count := 0
	for _, sd := range []*bookSide{&b.bids, &b.asks} {
		s := Sell
		if sd.bid {
			s = Buy
		}
		if len(sd.keys) != len(sd.lvls) {
			return fmt.Errorf("%v: keys/lvls length mismatch", s)
		}
		for i, l := range sd.lvls {
			if sd.keys[i] != sd.key(l.price) {
				return fmt.Errorf("%v: key mismatch at %d", s, i)
			}
			if i > 0 && sd.keys[i-1] >= sd.keys[i] {
				return fmt.Errorf("%v: keys not strictly ascending at %d", s, i)
			}
			if l.count <= 0 || l.head == nil || l.tail == nil {
				return fmt.Errorf("%v: empty level %d left in book", s, l.price)
			}
			var sum int64
			n := 0
			var prev *order
			for o := l.head; o != nil; o = o.next {
				if o.prev != prev || o.lvl != l || o.side != s || o.price != l.price || o.qty <= 0 {
					return fmt.Errorf("%v: bad order %d at level %d", s, o.id, l.price)
				}
				if b.index.get(o.id) != o {
					return fmt.Errorf("order %d not indexed", o.id)
				}
				sum += o.qty
				n++
				prev = o
				if n > 1<<22 {
					return fmt.Errorf("cycle in level %d", l.price)
				}
			}
			if l.tail != prev || sum != l.total || n != l.count {
				return fmt.Errorf("%v: level %d aggregates wrong (total %d sum %d count %d n %d)", s, l.price, l.total, sum, l.count, n)
			}
			count += n
		}
	}
	if count != b.index.len() {
		return fmt.Errorf("index has %d entries, book %d orders", b.index.len(), count)
	}
	if bb, ba := b.bids.best(), b.asks.best(); bb != nil && ba != nil && bb.price >= ba.price {
		return fmt.Errorf("book crossed: bid %d >= ask %d", bb.price, ba.price)
	}
	return nil
}

// bookString renders the book as "bids[100:1x10,2x5 99:3x1] asks[101:4x2]",
// best level first, queue order within a level.
func bookString(b *Book) string {
	var sb strings.Builder
	for i, s := range []Side{Buy, Sell} {
		if i == 0 {
			sb.WriteString("bids[")
		} else {
			sb.WriteString(" asks[")
		}
		var last int64 = -1
		first := true
		b.Walk(s, func(o OrderInfo) bool {
			if o.Price != last {
				if !first {
					sb.WriteByte(' ')
				}
				fmt.Fprintf(&sb, "%d:", o.Price)
				last = o.Price
			} else {
				sb.WriteByte(',')
			}
			first = false
			fmt.Fprintf(&sb, "%dx%d", o.ID, o.Qty)
			return true
		})
		sb.WriteByte(']')
	}
	return sb.String()
}

func tradesString(ts []Trade) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = fmt.Sprintf("%d<-%d %d@%d", t.TakerID, t.MakerID, t.Qty, t.Price)
	}
	return strings.Join(parts, ";")
}
