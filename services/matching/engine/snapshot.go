package engine

import (
	"encoding/binary"
	"hash/crc32"
)

// Snapshot format (little endian), book:
//
//	"TSB1" | u8 len, symbol | u8 len, algorithm name | u64 tradeSeq |
//	for bids then asks: u32 n, n * (u64 id, u64 account, i64 price, i64 qty, u8 flags) |
//	u32 CRC32-IEEE of everything before
//
// Orders are written in priority order (best price first, then time
// priority), so restoring them by appending reproduces every queue exactly.
// Engine: "TSE1" | u32 books | per book (sorted by symbol): u32 len, book | u32 CRC.

const orderRecLen = 8 + 8 + 8 + 8 + 1

// AppendBinary appends the book's snapshot to dst.
func (b *Book) AppendBinary(dst []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, "TSB1"...)
	dst = append(dst, byte(len(b.symbol)))
	dst = append(dst, b.symbol...)
	name := b.algo.Name()
	if len(name) > 255 {
		name = name[:255]
	}
	dst = append(dst, byte(len(name)))
	dst = append(dst, name...)
	dst = binary.LittleEndian.AppendUint64(dst, b.tradeSeq)
	for _, sd := range []*bookSide{&b.bids, &b.asks} {
		var n uint32
		for _, l := range sd.lvls {
			n += uint32(l.count)
		}
		dst = binary.LittleEndian.AppendUint32(dst, n)
		for i := len(sd.lvls) - 1; i >= 0; i-- {
			for o := sd.lvls[i].head; o != nil; o = o.next {
				dst = binary.LittleEndian.AppendUint64(dst, o.id)
				dst = binary.LittleEndian.AppendUint64(dst, o.account)
				dst = binary.LittleEndian.AppendUint64(dst, uint64(o.price))
				dst = binary.LittleEndian.AppendUint64(dst, uint64(o.qty))
				var f byte
				if o.postOnly {
					f = 1
				}
				dst = append(dst, f)
			}
		}
	}
	dst = binary.LittleEndian.AppendUint32(dst, crc32.ChecksumIEEE(dst[start:]))
	return dst, nil
}

// MarshalBinary returns the book's snapshot.
func (b *Book) MarshalBinary() ([]byte, error) { return b.AppendBinary(nil) }

type reader struct {
	b   []byte
	bad bool
}

func (r *reader) n(k int) []byte {
	if r.bad || len(r.b) < k {
		r.bad = true
		return make([]byte, k)
	}
	v := r.b[:k]
	r.b = r.b[k:]
	return v
}
func (r *reader) u8() byte    { return r.n(1)[0] }
func (r *reader) u32() uint32 { return binary.LittleEndian.Uint32(r.n(4)) }
func (r *reader) u64() uint64 { return binary.LittleEndian.Uint64(r.n(8)) }

// UnmarshalBook restores a book from a snapshot produced by MarshalBinary.
// Malformed input yields ErrCorruptSnapshot (or ErrUnknownAlgorithm); it
// never panics.
func UnmarshalBook(data []byte, sink Sink) (*Book, error) {
	if len(data) < 4+1+1+8+4+4+4 {
		return nil, ErrCorruptSnapshot
	}
	body := data[:len(data)-4]
	if crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(data[len(data)-4:]) {
		return nil, ErrCorruptSnapshot
	}
	r := &reader{b: body}
	if string(r.n(4)) != "TSB1" {
		return nil, ErrCorruptSnapshot
	}
	sym := string(r.n(int(r.u8())))
	name := string(r.n(int(r.u8())))
	seq := r.u64()
	if r.bad || !validSymbol(sym) {
		return nil, ErrCorruptSnapshot
	}
	algo, err := AlgorithmByName(name)
	if err != nil {
		return nil, err
	}
	b := NewBook(sym, algo, sink)
	b.tradeSeq = seq
	for _, s := range []Side{Buy, Sell} {
		n := r.u32()
		if r.bad || uint64(n)*orderRecLen > uint64(len(r.b)) {
			return nil, ErrCorruptSnapshot
		}
		var prev int64
		for i := uint32(0); i < n; i++ {
			id, acct := r.u64(), r.u64()
			price, qty := int64(r.u64()), int64(r.u64())
			f := r.u8()
			if r.bad || id == 0 || !validPrice(price) || !validQty(qty) || f > 1 || b.index.get(id) != nil {
				return nil, ErrCorruptSnapshot
			}
			if i > 0 && ((s == Buy && price > prev) || (s == Sell && price < prev)) {
				return nil, ErrCorruptSnapshot
			}
			prev = price
			o := b.newOrder()
			o.id, o.account, o.side, o.price, o.qty, o.postOnly = id, acct, s, price, qty, f == 1
			b.link(o)
			b.index.put(id, o)
		}
	}
	if r.bad || len(r.b) != 0 {
		return nil, ErrCorruptSnapshot
	}
	if bb, ba := b.bids.best(), b.asks.best(); bb != nil && ba != nil && bb.price >= ba.price {
		return nil, ErrCorruptSnapshot
	}
	return b, nil
}

// MarshalBinary snapshots every book (sorted by symbol) atomically: all
// books are locked for the duration.
func (e *Engine) MarshalBinary() ([]byte, error) {
	syms, unlock := e.lockAll()
	defer unlock()
	dst := append([]byte(nil), "TSE1"...)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(syms)))
	for _, s := range syms {
		lenAt := len(dst)
		dst = append(dst, 0, 0, 0, 0)
		var err error
		dst, err = e.books[s].book.AppendBinary(dst)
		if err != nil {
			return nil, err
		}
		binary.LittleEndian.PutUint32(dst[lenAt:], uint32(len(dst)-lenAt-4))
	}
	dst = binary.LittleEndian.AppendUint32(dst, crc32.ChecksumIEEE(dst))
	return dst, nil
}

// Restore builds an engine from a snapshot produced by Engine.MarshalBinary.
func Restore(data []byte, cfg Config) (*Engine, error) {
	e, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if len(data) < 12 {
		return nil, ErrCorruptSnapshot
	}
	body := data[:len(data)-4]
	if crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(data[len(data)-4:]) {
		return nil, ErrCorruptSnapshot
	}
	r := &reader{b: body}
	if string(r.n(4)) != "TSE1" {
		return nil, ErrCorruptSnapshot
	}
	n := r.u32()
	for i := uint32(0); i < n && !r.bad; i++ {
		l := r.u32()
		if r.bad || uint64(l) > uint64(len(r.b)) {
			return nil, ErrCorruptSnapshot
		}
		b, err := UnmarshalBook(r.n(int(l)), cfg.Sink)
		if err != nil {
			return nil, err
		}
		if e.books[b.symbol] != nil {
			return nil, ErrCorruptSnapshot
		}
		e.books[b.symbol] = &entry{book: b}
	}
	if r.bad || len(r.b) != 0 {
		return nil, ErrCorruptSnapshot
	}
	return e, nil
}
