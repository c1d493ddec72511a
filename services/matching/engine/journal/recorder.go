package journal

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"

	"github.com/tradsys/mesh/services/matching/engine"
)

// Recorder fronts an engine with a journal: each input is applied to the
// engine and, if accepted, enqueued in the journal in the same critical
// section (so journal order == apply order); the call then waits, outside
// the critical section, until its record is fsynced, so concurrent callers
// share fsyncs (group commit). A call's result is only returned (acknowledged)
// once durable.
type Recorder struct {
	mu  sync.Mutex
	eng *engine.Engine
	w   *Writer
}

// NewRecorder returns a Recorder over eng and w.
func NewRecorder(eng *engine.Engine, w *Writer) *Recorder { return &Recorder{eng: eng, w: w} }

// Engine returns the underlying engine.
func (r *Recorder) Engine() *engine.Engine { return r.eng }

func (r *Recorder) commit(rec *Record, err error) error {
	if err != nil {
		r.mu.Unlock()
		return err
	}
	t, jerr := r.w.Enqueue(rec)
	r.mu.Unlock()
	if jerr != nil {
		return jerr
	}
	return r.w.Wait(t)
}

// Submit applies and journals a new order.
func (r *Recorder) Submit(symbol string, o engine.Order) (engine.Result, error) {
	r.mu.Lock()
	res, err := r.eng.Submit(symbol, o)
	return res, r.commit(&Record{Op: OpSubmit, Symbol: symbol, Order: o}, err)
}

// Cancel applies and journals a cancel.
func (r *Recorder) Cancel(symbol string, id uint64) error {
	r.mu.Lock()
	err := r.eng.Cancel(symbol, id)
	return r.commit(&Record{Op: OpCancel, Symbol: symbol, ID: id}, err)
}

// Replace applies and journals a replace.
func (r *Recorder) Replace(symbol string, id uint64, price, qty int64) (engine.Result, error) {
	r.mu.Lock()
	res, err := r.eng.Replace(symbol, id, price, qty)
	return res, r.commit(&Record{Op: OpReplace, Symbol: symbol, ID: id, Price: price, Qty: qty}, err)
}

// SetAlgorithm applies and journals an algorithm change.
func (r *Recorder) SetAlgorithm(symbol, name string) error {
	r.mu.Lock()
	err := r.eng.SetAlgorithm(symbol, name)
	return r.commit(&Record{Op: OpSetAlgorithm, Symbol: symbol, Algorithm: name}, err)
}

// Snapshot writes an engine snapshot consistent with the journal offset it
// records (no input can slip between the two) to path, atomically
// (temporary file, fsync, rename). It returns that offset.
func (r *Recorder) Snapshot(path string) (int64, error) {
	r.mu.Lock()
	data, err := r.eng.MarshalBinary()
	off := r.w.Offset()
	r.mu.Unlock()
	if err != nil {
		return 0, err
	}
	// The snapshot must never point past the durable end of the journal.
	if err := r.w.Sync(); err != nil {
		return 0, err
	}
	return off, WriteSnapshot(path, data, off)
}

// Snapshot file: "TSJS" | u64 journal offset | u32 len | engine snapshot | u32 CRC32-C of all before.

// WriteSnapshot atomically writes an engine snapshot and the journal offset
// it corresponds to.
func WriteSnapshot(path string, engineSnap []byte, journalOffset int64) error {
	buf := make([]byte, 0, len(engineSnap)+24)
	buf = append(buf, "TSJS"...)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(journalOffset))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(engineSnap)))
	buf = append(buf, engineSnap...)
	buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, castagnoli))
	return WriteFileAtomic(path, buf)
}

// WriteFileAtomic replaces path with data so a crash leaves either the old
// file or the new one, never a torn one: write a temporary file, fsync it,
// rename it over path, fsync the directory.
func WriteFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// LoadSnapshot reads a snapshot file and restores the engine; it returns
// the journal offset to replay from.
func LoadSnapshot(path string, cfg engine.Config) (*engine.Engine, int64, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	if len(buf) < 20 || string(buf[:4]) != "TSJS" {
		return nil, 0, ErrCorrupt
	}
	body := buf[:len(buf)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(buf[len(buf)-4:]) {
		return nil, 0, ErrCorrupt
	}
	off := int64(binary.LittleEndian.Uint64(buf[4:]))
	l := binary.LittleEndian.Uint32(buf[12:])
	if uint64(l) != uint64(len(body)-16) || off < 0 {
		return nil, 0, ErrCorrupt
	}
	e, err := engine.Restore(body[16:], cfg)
	if err != nil {
		return nil, 0, err
	}
	return e, off, nil
}

// Recover rebuilds an engine from an optional snapshot (empty path or a
// missing file means start empty) plus the journal.
func Recover(snapshotPath, journalPath string, cfg engine.Config) (*engine.Engine, Stats, error) {
	var e *engine.Engine
	var from int64
	var err error
	if snapshotPath != "" {
		e, from, err = LoadSnapshot(snapshotPath, cfg)
		if err != nil && !os.IsNotExist(err) {
			return nil, Stats{}, err
		}
	}
	if e == nil {
		if e, err = engine.New(cfg); err != nil {
			return nil, Stats{}, err
		}
		from = 0
	}
	st, err := Replay(journalPath, from, e)
	if err != nil && !os.IsNotExist(err) {
		return nil, st, err
	}
	if from > st.ValidBytes {
		return nil, st, ErrSnapshotAhead
	}
	return e, st, nil
}
