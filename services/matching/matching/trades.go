package matching

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"sort"
	"sync"
	"unsafe"

	"github.com/tradsys/mesh/services/matching/engine"
)

// tradeLog keeps the last N trades of every symbol in memory, so trade
// streams can resume from a sequence number. A trade becomes visible to
// readers only once the journal record that produced it is durable.
type tradeLog struct {
	capN int
	mu   sync.Mutex
	syms map[string]*symRing
}

type symRing struct {
	buf     []engine.Trade // circular once len(buf) == capN
	head    int            // index of the oldest trade
	first   uint64         // sequence of the oldest trade kept
	n       int
	durable uint64        // last sequence readers may see
	wake    chan struct{} // closed (and replaced) when durable advances
}

func newTradeLog(capN int) *tradeLog {
	if capN <= 0 {
		capN = 1
	}
	return &tradeLog{capN: capN, syms: map[string]*symRing{}}
}

func (l *tradeLog) ringLocked(sym string) *symRing {
	r := l.syms[sym]
	if r == nil {
		r = &symRing{first: 1, wake: make(chan struct{})}
		l.syms[sym] = r
	}
	return r
}

func (r *symRing) last() uint64 { return r.first + uint64(r.n) - 1 }

func (r *symRing) at(seq uint64) engine.Trade {
	return r.buf[(r.head+int(seq-r.first))%len(r.buf)]
}

func (r *symRing) reset(next uint64) {
	r.buf, r.head, r.n, r.first = r.buf[:0], 0, 0, next
}

// push appends a trade (called from the engine sink, in sequence order).
func (l *tradeLog) push(t engine.Trade) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pushLocked(t)
}

// markDurable lets readers see sym's trades up to seq.
func (l *tradeLog) markDurable(sym string, seq uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.ringLocked(sym)
	if seq > r.durable {
		r.durable = seq
		close(r.wake)
		r.wake = make(chan struct{})
	}
}

// ensure makes sym's ring continue after lastSeq (the book's last trade)
// and marks everything up to it durable (recovery).
func (l *tradeLog) ensure(sym string, lastSeq uint64) {
	l.mu.Lock()
	r := l.ringLocked(sym)
	if r.last() != lastSeq {
		r.reset(lastSeq + 1)
	}
	l.mu.Unlock()
	l.markDurable(sym, lastSeq)
}

// read appends durable trades of sym from seq on (at most max) to dst. It
// returns the next sequence to read and a channel closed when more become
// durable.
func (l *tradeLog) read(sym string, from uint64, max int, dst []engine.Trade) ([]engine.Trade, uint64, <-chan struct{}, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.ringLocked(sym)
	if from == 0 {
		from = r.durable + 1
	}
	if from < r.first {
		return dst, from, nil, &OutOfRangeError{Symbol: sym, Requested: from, Oldest: r.first}
	}
	for ; from <= r.durable && from <= r.last() && max > 0; from, max = from+1, max-1 {
		dst = append(dst, r.at(from))
	}
	return dst, from, r.wake, nil
}

func (l *tradeLog) durableSeq(sym string) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := l.syms[sym]; r != nil {
		return r.durable
	}
	return 0
}

// File: "TST2" | u64 journal offset | u32 symbols | per symbol (sorted):
// u8 len, symbol, u64 first, u32 n, n * (i64 price, i64 qty, u64 taker,
// u64 maker, u64 taker account, u64 maker account, u8 side, i64 maker left,
// i64 time) | u32 CRC32-C. Files of the first layout, "TSTR" (records
// without the time), still load, with time 0.

const (
	tradeRecLenV1 = 8*7 + 1
	tradeRecLen   = tradeRecLenV1 + 8
)

// newestTime is the newest trade time in the rings (Unix ns, 0: none).
func (l *tradeLog) newestTime() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var t int64
	for _, r := range l.syms {
		if r.n > 0 {
			t = max(t, r.at(r.last()).Time)
		}
	}
	return t
}

func (l *tradeLog) marshal(offset int64) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	le := binary.LittleEndian
	syms := make([]string, 0, len(l.syms))
	for s := range l.syms {
		syms = append(syms, s)
	}
	sort.Strings(syms)
	b := append([]byte(nil), "TST2"...)
	b = le.AppendUint64(b, uint64(offset))
	b = le.AppendUint32(b, uint32(len(syms)))
	for _, s := range syms {
		r := l.syms[s]
		// Only durable trades are written (all are, when the journal is synced).
		n := r.n
		for n > 0 && r.first+uint64(n)-1 > r.durable {
			n--
		}
		b = append(b, byte(len(s)))
		b = append(b, s...)
		b = le.AppendUint64(b, r.first)
		b = le.AppendUint32(b, uint32(n))
		for i := 0; i < n; i++ {
			t := r.at(r.first + uint64(i))
			b = le.AppendUint64(b, uint64(t.Price))
			b = le.AppendUint64(b, uint64(t.Qty))
			b = le.AppendUint64(b, t.TakerID)
			b = le.AppendUint64(b, t.MakerID)
			b = le.AppendUint64(b, t.TakerAccount)
			b = le.AppendUint64(b, t.MakerAccount)
			b = append(b, byte(t.TakerSide))
			b = le.AppendUint64(b, uint64(t.MakerLeft))
			b = le.AppendUint64(b, uint64(t.Time))
		}
	}
	return le.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// loadTradeLog reads a trade log file written for journal offset want; a
// missing, corrupt or mismatched file yields an empty log (trades before
// the snapshot are then reported OUT_OF_RANGE, never invented).
func loadTradeLog(path string, want int64, capN int) *tradeLog {
	l := newTradeLog(capN)
	l.mu.Lock()
	defer l.mu.Unlock()
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 20 {
		return l
	}
	recLen := uint64(tradeRecLen)
	switch string(b[:4]) {
	case "TST2":
	case "TSTR":
		recLen = tradeRecLenV1
	default:
		return l
	}
	le := binary.LittleEndian
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != le.Uint32(b[len(b)-4:]) || int64(le.Uint64(body[4:])) != want {
		return l
	}
	p := body[16:]
	nsyms := le.Uint32(body[12:])
	for i := uint32(0); i < nsyms; i++ {
		if len(p) < 1 || len(p) < 1+int(p[0])+12 {
			return l.clearLocked()
		}
		sym := string(p[1 : 1+p[0]])
		p = p[1+int(p[0]):]
		first, n := le.Uint64(p), le.Uint32(p[8:])
		p = p[12:]
		if uint64(len(p)) < uint64(n)*recLen {
			return l.clearLocked()
		}
		r := l.ringLocked(sym)
		r.reset(first)
		for j := uint32(0); j < n; j++ {
			t := engine.Trade{Symbol: sym, Seq: first + uint64(j), Price: int64(le.Uint64(p)), Qty: int64(le.Uint64(p[8:])),
				TakerID: le.Uint64(p[16:]), MakerID: le.Uint64(p[24:]), TakerAccount: le.Uint64(p[32:]),
				MakerAccount: le.Uint64(p[40:]), TakerSide: engine.Side(p[48]), MakerLeft: int64(le.Uint64(p[49:]))}
			if recLen == tradeRecLen {
				t.Time = int64(le.Uint64(p[57:]))
			}
			p = p[recLen:]
			l.pushLocked(t)
		}
		r.durable = r.last()
	}
	return l
}

// pushLocked is push with l.mu held.
func (l *tradeLog) pushLocked(t engine.Trade) {
	r := l.ringLocked(t.Symbol)
	if t.Seq != r.last()+1 {
		r.reset(t.Seq) // a gap (should not happen): keep what is contiguous
	}
	if len(r.buf) < l.capN {
		r.buf = append(r.buf, t)
		r.n++
		return
	}
	r.buf[r.head] = t
	r.head = (r.head + 1) % len(r.buf)
	r.first++
}

func (l *tradeLog) clearLocked() *tradeLog {
	l.syms = map[string]*symRing{}
	return l
}

// memBytes is what the rings hold: every symbol's ring of trades.
func (l *tradeLog) memBytes() int64 {
	const tradeBytes = int64(unsafe.Sizeof(engine.Trade{}))
	l.mu.Lock()
	defer l.mu.Unlock()
	var m int64
	for sym, r := range l.syms {
		// A trade's symbol is its book's string, not a copy.
		m += int64(unsafe.Sizeof(symRing{})) + int64(cap(r.buf))*tradeBytes + stringBytes(sym) + 48
	}
	return m
}
