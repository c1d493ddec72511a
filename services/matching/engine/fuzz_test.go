package engine

import (
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// decodeOps turns arbitrary bytes into operations, 6 bytes each. Ids,
// accounts and prices come from small ranges so that duplicates, unknown
// ids, self trades, crossing and multi-order levels are common; some values
// are deliberately invalid.
func decodeOps(data []byte) []op {
	ops := make([]op, 0, len(data)/6)
	for len(data) >= 6 {
		b := data[:6]
		data = data[6:]
		id := uint64(b[1] % 40) // 0 is invalid
		acct := uint64(b[2] & 3)
		side := Side(1 + (b[2]>>2)&1)
		if b[2]&0xF0 == 0xF0 {
			side = Side(b[2] >> 6) // sometimes invalid (0 or 3)
		}
		price := 100 + int64(int8(b[3]))/8
		if b[3] == 0x80 {
			price = 0
		} else if b[3] == 0x7F {
			price = MaxPrice + 1
		}
		qty := int64(b[4]%24) - 1 // -1 and 0 are invalid
		if b[4] == 0xFF {
			qty = MaxQuantity
		}
		switch k := b[0] % 16; {
		case k < 8:
			typ := Limit
			switch b[5] % 12 {
			case 0, 1:
				typ = IOC
			case 2:
				typ = Market
			case 3, 4:
				typ = FOK
			case 5:
				typ = PostOnly
			case 6:
				typ = OrderType(b[5] >> 4) // sometimes invalid
			}
			ops = append(ops, op{kind: 0, order: Order{ID: id, Account: acct, Side: side, Type: typ, Price: price, Qty: qty}})
		case k < 10:
			ops = append(ops, op{kind: 1, id: id})
		case k < 15:
			ops = append(ops, op{kind: 2, id: id, price: price, qty: qty})
		default:
			ops = append(ops, op{kind: 3, id: uint64(b[5])})
		}
	}
	return ops
}

func FuzzEngine(f *testing.F) {
	seed := func(ops ...[6]byte) []byte {
		var out []byte
		for _, o := range ops {
			out = append(out, o[:]...)
		}
		return out
	}
	f.Add(seed([6]byte{0, 1, 0, 0, 5, 9}, [6]byte{0, 2, 5, 0, 3, 9}))
	f.Add(seed([6]byte{0, 1, 0, 8, 5, 9}, [6]byte{0, 2, 1, 8, 5, 9}, [6]byte{0, 3, 6, 8, 7, 0}, [6]byte{15, 0, 0, 0, 0, 1}, [6]byte{0, 4, 7, 0, 9, 3}))
	f.Add(seed([6]byte{0, 1, 0, 0, 5, 9}, [6]byte{10, 1, 0, 16, 5, 0}, [6]byte{8, 1, 0, 0, 0, 0}, [6]byte{10, 1, 0, 0, 9, 0}))
	f.Add(make([]byte, 60))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 6*500 {
			data = data[:6*500]
		}
		for _, algo := range []Algorithm{FIFO{}, ProRata{}} {
			m := newModel(t, algo)
			for _, o := range decodeOps(data) {
				m.apply(o) // checks invariants and conservation after every op
			}
			// snapshot round trip preserves the book exactly
			snap, err := m.b.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			r, err := UnmarshalBook(snap, nil)
			if err != nil {
				t.Fatal(err)
			}
			if bookString(r) != bookString(m.b) || r.TradeSeq() != m.b.TradeSeq() {
				t.Fatal("snapshot round trip differs")
			}
			if err := r.checkInvariants(); err != nil {
				t.Fatal(err)
			}
		}
		// arbitrary bytes as a snapshot: must not panic
		UnmarshalBook(data, nil)
		// and a variant with the magic and a valid CRC, so the parser runs
		forged := append([]byte("TSB1"), data...)
		forged = binary.LittleEndian.AppendUint32(forged, crc32.ChecksumIEEE(forged))
		if b, err := UnmarshalBook(forged, nil); err == nil {
			if err := b.checkInvariants(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
