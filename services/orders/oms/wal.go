package oms

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// The store's write-ahead log. A commit appends its puts to the log as one
// record and syncs that one file: a sequential write and one fsync, where
// a bbolt transaction rewrites every B+tree page it touches and syncs
// twice. bbolt stays the store: the puts the log holds are written into it
// by a checkpoint (in the background, a key written many times written
// once) when the log has grown past its limit, and at open (a restart
// after kill -9) before the state is loaded. The log is a series of files
// orders.wal.<n>; a checkpoint starts a new file and deletes the ones it
// wrote into bbolt once bbolt has synced them.
//
// A record is [payload length u32][CRC-32C of the payload u32][payload],
// the payload a run of puts [bucket u8][key length uvarint][key][value
// length uvarint][value]. A torn or corrupt record ends the replay: it was
// not synced, so no operation it holds was acknowledged.

// walBuckets numbers the buckets in records.
var walBuckets = [][]byte{bInstruments, bOrders, bClientIDs, bPositions, bAccounts, bTrades, bUpdates, bMeta}

func walBucket(b []byte) byte {
	for i, w := range walBuckets {
		if string(w) == string(b) {
			return byte(i)
		}
	}
	panic(fmt.Sprintf("orders: bucket %q not in the log's table", b))
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

type put struct {
	b    byte // index in walBuckets
	k, v []byte
}

type putKey struct {
	b byte
	k string
}

const walPrefix = "orders.wal."

func walPath(dir string, n uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%s%020d", walPrefix, n))
}

// walFiles lists the log's file numbers in dir, oldest first.
func walFiles(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ns []uint64
	for _, e := range ents {
		if rest, ok := strings.CutPrefix(e.Name(), walPrefix); ok {
			if n, err := strconv.ParseUint(rest, 10, 64); err == nil {
				ns = append(ns, n)
			}
		}
	}
	slices.Sort(ns)
	return ns, nil
}

// wal is the log file being appended to.
type wal struct {
	dir    string
	noSync bool
	f      *os.File
	n      uint64 // its number
	size   int64
	buf    []byte
}

// openWAL starts log file n (new, empty).
func openWAL(dir string, n uint64, noSync bool) (*wal, error) {
	f, err := os.OpenFile(walPath(dir, n), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("order log: %w", err)
	}
	w := &wal{dir: dir, noSync: noSync, f: f, n: n}
	if !noSync {
		if err := syncDir(dir); err != nil {
			f.Close()
			return nil, err
		}
	}
	return w, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// write appends puts as one record. They are durable once a later sync
// returns nil.
func (w *wal) write(puts []put) error {
	b := append(w.buf[:0], 0, 0, 0, 0, 0, 0, 0, 0)
	for _, p := range puts {
		b = append(b, p.b)
		b = binary.AppendUvarint(b, uint64(len(p.k)))
		b = append(b, p.k...)
		b = binary.AppendUvarint(b, uint64(len(p.v)))
		b = append(b, p.v...)
	}
	payload := b[8:]
	binary.LittleEndian.PutUint32(b[0:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(payload, crcTable))
	w.buf = b
	if _, err := w.f.Write(b); err != nil {
		return err
	}
	w.size += int64(len(b))
	return nil
}

// sync makes every record written so far durable.
func (w *wal) sync() error {
	if w.noSync {
		return nil
	}
	return w.f.Sync()
}

func (w *wal) close() error { return w.f.Close() }

// readWAL calls fn for each put of log file path, in order; it stops at
// the first torn or corrupt record (reporting it in torn).
func readWAL(path string, fn func(put) error) (torn bool, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	for len(data) > 0 {
		if len(data) < 8 {
			return true, nil
		}
		n := binary.LittleEndian.Uint32(data[0:])
		if uint64(n) > uint64(len(data)-8) {
			return true, nil
		}
		payload := data[8 : 8+n]
		if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(data[4:]) {
			return true, nil
		}
		data = data[8+n:]
		for len(payload) > 0 {
			var p put
			p.b = payload[0]
			if int(p.b) >= len(walBuckets) {
				return true, nil
			}
			payload = payload[1:]
			for _, dst := range []*[]byte{&p.k, &p.v} {
				l, m := binary.Uvarint(payload)
				if m <= 0 || l > uint64(len(payload)-m) {
					return true, nil
				}
				*dst = payload[m : m+int(l)]
				payload = payload[m+int(l):]
			}
			if err := fn(p); err != nil {
				return false, err
			}
		}
	}
	return false, nil
}

// replayWAL writes every log file in dir into db (checkpointWAL) and
// answers the number for the next log file.
func replayWAL(db *bolt.DB, dir string, keep int) (next uint64, err error) {
	ns, err := walFiles(dir)
	if err != nil || len(ns) == 0 {
		return 1, err
	}
	if err := checkpointWAL(db, dir, ns[len(ns)-1], keep); err != nil {
		return 0, fmt.Errorf("replay order log: %w", err)
	}
	return ns[len(ns)-1] + 1, nil
}

// checkpointWAL writes the puts of log files up to number upto into db
// (the last value of each key, one synced transaction), then deletes
// those files.
func checkpointWAL(db *bolt.DB, dir string, upto uint64, keep int) error {
	ns, err := walFiles(dir)
	if err != nil {
		return err
	}
	latest := map[putKey][]byte{}
	var done []uint64
	for _, n := range ns {
		if n > upto {
			break
		}
		done = append(done, n)
		torn, err := readWAL(walPath(dir, n), func(p put) error {
			latest[putKey{p.b, string(p.k)}] = p.v // the file's bytes live as long as the map
			return nil
		})
		if err != nil {
			return err
		}
		if torn {
			// An unsynced tail (the process died in the write): nothing
			// after it was acknowledged.
			break
		}
	}
	if err := checkpoint(db, latest, keep); err != nil {
		return err
	}
	for _, n := range done {
		if err := os.Remove(walPath(dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// checkpoint writes pending into db (one synced transaction), in key
// order: bbolt inserts into a node's sorted slice, so keys in map order
// would move the slice on nearly every put.
func checkpoint(db *bolt.DB, pending map[putKey][]byte, keep int) error {
	keys := make([]putKey, 0, len(pending))
	for k := range pending {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b putKey) int {
		if a.b != b.b {
			return int(a.b) - int(b.b)
		}
		return strings.Compare(a.k, b.k)
	})
	return db.Update(func(tx *bolt.Tx) error {
		var b *bolt.Bucket
		for i, k := range keys {
			if i == 0 || k.b != keys[i-1].b {
				b = tx.Bucket(walBuckets[k.b])
				b.FillPercent = 0.9 // keys mostly arrive in order (ids, sequences): fuller pages
			}
			if err := b.Put([]byte(k.k), pending[k]); err != nil {
				return err
			}
		}
		return trimUpdates(tx, keep)
	})
}

// trimUpdates keeps the newest keep updates of the log. (Counted, not
// computed from next_seq: sequences may skip after a crash.)
func trimUpdates(tx *bolt.Tx, keep int) error {
	c := tx.Bucket(bUpdates).Cursor()
	k, _ := c.Last()
	for n := 1; k != nil && n < keep; n++ {
		k, _ = c.Prev()
	}
	if k == nil {
		return nil
	}
	oldestKept := slices.Clone(k)
	for k, _ := c.First(); k != nil && string(k) < string(oldestKept); k, _ = c.First() {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}
