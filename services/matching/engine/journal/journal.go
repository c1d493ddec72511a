// Package journal makes an engine.Engine durable: an append-only journal of
// accepted inputs with group-committed fsync, engine snapshots, and replay.
//
// File format: a sequence of frames
//
//	u32 payload length | u32 CRC32-C(payload) | payload
//
// (little endian). A torn or corrupt tail (short header, impossible length,
// short payload, CRC mismatch, undecodable payload) is detected on Open,
// counted, and truncated away; it never panics.
//
// Because the engine is deterministic and rejected inputs have no effect,
// replaying the accepted inputs in journal order rebuilds the exact state
// (books, queues, trade sequence numbers) and re-emits the same trades.
package journal

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"sync"

	"github.com/tradsys/mesh/services/matching/engine"
)

// Op is a journaled input kind.
type Op uint8

const (
	OpSubmit       Op = 1
	OpCancel       Op = 2
	OpReplace      Op = 3
	OpSetAlgorithm Op = 4
)

// Record is one accepted input.
type Record struct {
	Op        Op
	Symbol    string
	Order     engine.Order // OpSubmit
	ID        uint64       // OpCancel, OpReplace
	Price     int64        // OpReplace
	Qty       int64        // OpReplace
	Algorithm string       // OpSetAlgorithm
	// Time is when the input was accepted, Unix nanoseconds (OpSubmit,
	// OpReplace: the execution time of the trades it produces). 0 means not
	// recorded: it is then not encoded, so records without it keep the
	// original layout and journals written before it existed still load.
	Time int64
}

// Errors.
var (
	ErrCorruptRecord = errors.New("journal: corrupt record")
	ErrClosed        = errors.New("journal: closed")
	ErrCorrupt       = errors.New("journal: corrupt snapshot file")
	ErrSnapshotAhead = errors.New("journal: snapshot offset is past the end of the journal")
)

const (
	headerLen  = 8
	maxPayload = 1 << 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// AppendRecord encodes r as a payload (no frame) onto dst.
func AppendRecord(dst []byte, r *Record) []byte {
	dst = append(dst, byte(r.Op), byte(len(r.Symbol)))
	dst = append(dst, r.Symbol...)
	le := binary.LittleEndian
	switch r.Op {
	case OpSubmit:
		o := &r.Order
		dst = le.AppendUint64(dst, o.ID)
		dst = le.AppendUint64(dst, o.Account)
		dst = append(dst, byte(o.Side), byte(o.Type))
		dst = le.AppendUint64(dst, uint64(o.Price))
		dst = le.AppendUint64(dst, uint64(o.Qty))
		if r.Time != 0 {
			dst = le.AppendUint64(dst, uint64(r.Time))
		}
	case OpCancel:
		dst = le.AppendUint64(dst, r.ID)
	case OpReplace:
		dst = le.AppendUint64(dst, r.ID)
		dst = le.AppendUint64(dst, uint64(r.Price))
		dst = le.AppendUint64(dst, uint64(r.Qty))
		if r.Time != 0 {
			dst = le.AppendUint64(dst, uint64(r.Time))
		}
	case OpSetAlgorithm:
		dst = append(dst, byte(len(r.Algorithm)))
		dst = append(dst, r.Algorithm...)
	}
	return dst
}

// DecodeRecord decodes a payload.
func DecodeRecord(p []byte) (Record, error) {
	var r Record
	if len(p) < 2 {
		return r, ErrCorruptRecord
	}
	r.Op = Op(p[0])
	sl := int(p[1])
	p = p[2:]
	if len(p) < sl {
		return r, ErrCorruptRecord
	}
	r.Symbol = string(p[:sl])
	p = p[sl:]
	le := binary.LittleEndian
	switch r.Op {
	case OpSubmit:
		if len(p) != 34 && len(p) != 42 {
			return r, ErrCorruptRecord
		}
		r.Order = engine.Order{ID: le.Uint64(p), Account: le.Uint64(p[8:]), Side: engine.Side(p[16]),
			Type: engine.OrderType(p[17]), Price: int64(le.Uint64(p[18:])), Qty: int64(le.Uint64(p[26:]))}
		if len(p) == 42 {
			r.Time = int64(le.Uint64(p[34:]))
		}
	case OpCancel:
		if len(p) != 8 {
			return r, ErrCorruptRecord
		}
		r.ID = le.Uint64(p)
	case OpReplace:
		if len(p) != 24 && len(p) != 32 {
			return r, ErrCorruptRecord
		}
		r.ID, r.Price, r.Qty = le.Uint64(p), int64(le.Uint64(p[8:])), int64(le.Uint64(p[16:]))
		if len(p) == 32 {
			r.Time = int64(le.Uint64(p[24:]))
		}
	case OpSetAlgorithm:
		if len(p) < 1 || len(p) != 1+int(p[0]) {
			return r, ErrCorruptRecord
		}
		r.Algorithm = string(p[1:])
	default:
		return r, ErrCorruptRecord
	}
	return r, nil
}

func appendFrame(dst []byte, r *Record) []byte {
	at := len(dst)
	dst = append(dst, make([]byte, headerLen)...)
	dst = AppendRecord(dst, r)
	p := dst[at+headerLen:]
	binary.LittleEndian.PutUint32(dst[at:], uint32(len(p)))
	binary.LittleEndian.PutUint32(dst[at+4:], crc32.Checksum(p, castagnoli))
	return dst
}

// Stats describes a scan of a journal.
type Stats struct {
	Records        int   // valid records
	Applied        int   // records applied to an engine (Replay)
	Rejected       int   // applied records the engine rejected (should be 0)
	CorruptRecords int   // corrupt/torn tail records found (0 or 1: scanning stops there)
	TruncatedBytes int64 // bytes after the last valid record
	ValidBytes     int64 // offset just past the last valid record
}

// Scan reads frames from r, calling fn(offset, record) for each valid one
// (offset is where the frame starts). It stops at EOF or at the first
// corrupt frame, which is counted in Stats.CorruptRecords; the bytes from
// there on are counted in TruncatedBytes. Only an error from fn or a read
// error other than EOF is returned.
func Scan(r io.Reader, fn func(off int64, rec Record) error) (Stats, error) {
	var st Stats
	var hdr [headerLen]byte
	buf := make([]byte, 0, 256)
	var off int64
	for {
		n, err := io.ReadFull(r, hdr[:])
		if err == io.EOF {
			break
		}
		if err == io.ErrUnexpectedEOF {
			st.CorruptRecords++
			st.TruncatedBytes += int64(n)
			break
		}
		if err != nil {
			return st, err
		}
		l := binary.LittleEndian.Uint32(hdr[:])
		if l == 0 || l > maxPayload {
			st.CorruptRecords++
			st.TruncatedBytes += headerLen + drain(r)
			break
		}
		if cap(buf) < int(l) {
			buf = make([]byte, l)
		}
		buf = buf[:l]
		m, err := io.ReadFull(r, buf)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			st.CorruptRecords++
			st.TruncatedBytes += headerLen + int64(m)
			break
		}
		if err != nil {
			return st, err
		}
		rec, derr := DecodeRecord(buf)
		if crc32.Checksum(buf, castagnoli) != binary.LittleEndian.Uint32(hdr[4:]) || derr != nil {
			st.CorruptRecords++
			st.TruncatedBytes += headerLen + int64(l) + drain(r)
			break
		}
		if fn != nil {
			if err := fn(off, rec); err != nil {
				return st, err
			}
		}
		st.Records++
		off += headerLen + int64(l)
		st.ValidBytes = off
	}
	return st, nil
}

func drain(r io.Reader) int64 {
	n, _ := io.Copy(io.Discard, r)
	return n
}

// Options configure a Writer.
type Options struct {
	// NoSync skips fsync (tests, benchmarks). Group commit still applies.
	NoSync bool
}

// Writer appends records to a journal file with group commit: concurrent
// Append calls that arrive while an fsync is in progress are written and
// fsynced together by the next leader; every Append returns only after the
// batch containing its record has been fsynced.
type Writer struct {
	mu       sync.Mutex
	cond     *sync.Cond
	f        *os.File
	opts     Options
	buf      []byte // batch being accumulated
	spare    []byte
	batch    uint64 // number of the batch being accumulated (starts at 1)
	synced   uint64 // last batch durably written
	flushing bool
	end      int64 // logical end offset, including pending records
	err      error // sticky write/sync error
	closed   bool
	open     Stats // what Open found
	batches  uint64
}

// Batches returns how many write+fsync batches have been issued; with
// concurrent appenders it is smaller than the number of records.
func (w *Writer) Batches() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.batches
}

// Open opens (creating if needed) the journal at path for appending. An
// existing file is scanned; a corrupt or torn tail is truncated and reported
// in OpenStats.
func Open(path string, opts Options) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	st, err := Scan(f, nil)
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.CorruptRecords > 0 {
		if err := f.Truncate(st.ValidBytes); err != nil {
			f.Close()
			return nil, err
		}
		if !opts.NoSync {
			if err := f.Sync(); err != nil {
				f.Close()
				return nil, err
			}
		}
	}
	if _, err := f.Seek(st.ValidBytes, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	w := &Writer{f: f, opts: opts, batch: 1, end: st.ValidBytes, open: st}
	w.cond = sync.NewCond(&w.mu)
	return w, nil
}

// OpenStats returns what Open found in the existing file.
func (w *Writer) OpenStats() Stats { return w.open }

// Offset returns the logical end of the journal, including records enqueued
// but not yet fsynced. Replay from an offset returned here skips everything
// enqueued before the call.
func (w *Writer) Offset() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.end
}

// Enqueue adds r to the current batch without waiting and returns a ticket
// for Wait.
func (w *Writer) Enqueue(r *Record) (uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, ErrClosed
	}
	if w.err != nil {
		return 0, w.err
	}
	n := len(w.buf)
	w.buf = appendFrame(w.buf, r)
	w.end += int64(len(w.buf) - n)
	return w.batch, nil
}

// Wait blocks until the batch with the given ticket is durable.
func (w *Writer) Wait(ticket uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.waitLocked(ticket)
}

// Append enqueues r and waits until it is durable (group commit).
func (w *Writer) Append(r *Record) error {
	t, err := w.Enqueue(r)
	if err != nil {
		return err
	}
	return w.Wait(t)
}

// Sync makes everything enqueued so far durable.
func (w *Writer) Sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.batch
	if len(w.buf) == 0 {
		t--
	}
	return w.waitLocked(t)
}

// Flush is an alias of Sync.
func (w *Writer) Flush() error { return w.Sync() }

func (w *Writer) waitLocked(target uint64) error {
	for w.synced < target && w.err == nil {
		if w.flushing {
			w.cond.Wait()
			continue
		}
		// become the leader for the current batch
		w.flushing = true
		data := w.buf
		w.buf = w.spare[:0]
		b := w.batch
		w.batch++
		if len(data) > 0 {
			w.batches++
		}
		w.mu.Unlock()
		var err error
		if len(data) > 0 {
			_, err = w.f.Write(data)
			if err == nil && !w.opts.NoSync {
				err = w.f.Sync()
			}
		}
		w.mu.Lock()
		w.spare = data[:0]
		if err != nil && w.err == nil {
			w.err = err
		}
		w.synced = b
		w.flushing = false
		w.cond.Broadcast()
	}
	return w.err
}

// Close syncs and closes the file.
func (w *Writer) Close() error {
	err := w.Sync()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Apply applies one record to an engine.
func Apply(e *engine.Engine, r *Record) error {
	switch r.Op {
	case OpSubmit:
		_, err := e.Submit(r.Symbol, r.Order)
		return err
	case OpCancel:
		return e.Cancel(r.Symbol, r.ID)
	case OpReplace:
		_, err := e.Replace(r.Symbol, r.ID, r.Price, r.Qty)
		return err
	case OpSetAlgorithm:
		return e.SetAlgorithm(r.Symbol, r.Algorithm)
	}
	return ErrCorruptRecord
}

// Replay applies every valid record at or after offset from (a frame start,
// normally 0 or a snapshot's offset) of the journal at path to e. Tail
// corruption is reported in Stats, not as an error; the file is not
// modified.
func Replay(path string, from int64, e *engine.Engine) (Stats, error) {
	return ReplayFunc(path, from, e, nil)
}

// ReplayFunc is Replay calling before (when not nil) with each record just
// before it is applied, so the caller can restore per-record context the
// engine does not keep (the acceptance time of the trades it re-emits).
func ReplayFunc(path string, from int64, e *engine.Engine, before func(*Record)) (Stats, error) {
	f, err := os.Open(path)
	if err != nil {
		return Stats{}, err
	}
	defer f.Close()
	var applied, rejected int
	st, err := Scan(f, func(off int64, rec Record) error {
		if off < from {
			return nil
		}
		applied++
		if before != nil {
			before(&rec)
		}
		if Apply(e, &rec) != nil {
			rejected++
		}
		return nil
	})
	st.Applied, st.Rejected = applied, rejected
	return st, err
}
