package candles

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Range limits.
const (
	DefaultRangeLimit = 1000
	MaxRangeLimit     = 10000
)

var (
	// ErrNotFound is returned by Latest when a series has no candle.
	ErrNotFound = errors.New("candle not found")
	// ErrInvalidPageToken is matched by errors for a bad page token.
	ErrInvalidPageToken = errors.New("invalid page token")
	// ErrInvalidRange is matched by errors for a bad range request.
	ErrInvalidRange = errors.New("invalid range")
	// ErrCorrupt is matched by errors for an undecodable stored value.
	ErrCorrupt = errors.New("corrupt stored candle")
)

// Page is one page of a Range answer. NextPageToken is empty on the last
// page; otherwise pass it back, with the same symbol, interval, start and
// end, to get the next page.
type Page struct {
	Candles       []Candle
	NextPageToken string
}

// RangeReader is what Store and CachedStore both serve.
type RangeReader interface {
	Range(symbol string, iv Interval, start, end time.Time, limit int, pageToken string) (Page, error)
}

// Store persists candles in a bbolt file: one bucket per symbol+interval
// (named "SYMBOL/1m"), keys are the big-endian Unix-millisecond open time,
// values a compact varint encoding (~25-40 bytes per candle). Safe for
// concurrent use (bbolt: one writer, many readers).
type Store struct {
	db *bolt.DB
}

// StoreOptions tunes OpenStore. The zero value is fine.
type StoreOptions struct {
	// Timeout waits for the file lock held by another process (default 1s).
	Timeout time.Duration
	// NoSync skips fsync on commit (tests/benchmarks only).
	NoSync bool
}

// OpenStore opens or creates the store file at path.
func OpenStore(path string, opts *StoreOptions) (*Store, error) {
	o := StoreOptions{}
	if opts != nil {
		o = *opts
	}
	if o.Timeout == 0 {
		o.Timeout = time.Second
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.Timeout, NoSync: o.NoSync})
	if err != nil {
		return nil, fmt.Errorf("open candle store %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

func bucketName(symbol string, iv Interval) []byte {
	b := make([]byte, 0, len(symbol)+4)
	b = append(b, symbol...)
	b = append(b, '/')
	return append(b, iv.String()...)
}

func timeKey(ms int64) [8]byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(ms))
	return k
}

const valueVersion = 1

// encodeCandle appends the compact value form of c:
// version, varint open, zigzag deltas high-open, low-open, close-open,
// uvarint volume, quote volume, trades.
func encodeCandle(dst []byte, c *Candle) []byte {
	dst = append(dst, valueVersion)
	dst = binary.AppendUvarint(dst, uint64(c.Open))
	dst = binary.AppendUvarint(dst, uint64(c.High-c.Open))
	dst = binary.AppendUvarint(dst, uint64(c.Open-c.Low))
	dst = binary.AppendVarint(dst, int64(c.Close-c.Open))
	dst = binary.AppendUvarint(dst, uint64(c.Volume))
	dst = binary.AppendUvarint(dst, uint64(c.QuoteVolume))
	return binary.AppendUvarint(dst, uint64(c.Trades))
}

func decodeCandle(v []byte, c *Candle) error {
	if len(v) == 0 || v[0] != valueVersion {
		return fmt.Errorf("%w: unknown value version", ErrCorrupt)
	}
	v = v[1:]
	var u [7]uint64
	for i := range u {
		var n int
		if i == 3 {
			var s int64
			s, n = binary.Varint(v)
			u[i] = uint64(s)
		} else {
			u[i], n = binary.Uvarint(v)
		}
		if n <= 0 {
			return fmt.Errorf("%w: field %d", ErrCorrupt, i)
		}
		v = v[n:]
	}
	if len(v) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(v))
	}
	c.Open = Fixed(u[0])
	c.High = c.Open + Fixed(u[1])
	c.Low = c.Open - Fixed(u[2])
	c.Close = c.Open + Fixed(int64(u[3]))
	c.Volume = Fixed(u[4])
	c.QuoteVolume = Fixed(u[5])
	c.Trades = int64(u[6])
	return nil
}

// Put upserts candles (any mix of symbols and intervals) in one
// transaction; each is validated first (Candle.Validate) and nothing is
// written if any is invalid.
func (s *Store) Put(cs ...Candle) error {
	for i := range cs {
		if err := cs[i].Validate(); err != nil {
			return fmt.Errorf("put candle %d: %w", i, err)
		}
	}
	if len(cs) == 0 {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		var b *bolt.Bucket
		var curSym string
		var curIv Interval
		var prevMs int64 = math.MinInt64
		// bbolt keeps key/value slices until commit: encode into an arena
		// whose earlier sub-slices are never overwritten.
		arena := make([]byte, 0, 40*len(cs))
		for i := range cs {
			c := &cs[i]
			if b == nil || c.Symbol != curSym || c.Interval != curIv {
				var err error
				b, err = tx.CreateBucketIfNotExists(bucketName(c.Symbol, c.Interval))
				if err != nil {
					return err
				}
				curSym, curIv, prevMs = c.Symbol, c.Interval, math.MinInt64
			}
			ms := c.OpenTime.UnixMilli()
			if ms > prevMs {
				b.FillPercent = 0.9 // appending in order: pack pages
			} else {
				b.FillPercent = bolt.DefaultFillPercent
			}
			prevMs = ms
			k := timeKey(ms)
			off := len(arena)
			arena = encodeCandle(arena, c)
			if err := b.Put(k[:], arena[off:len(arena):len(arena)]); err != nil {
				return err
			}
		}
		return nil
	})
}

// pageToken layout (base64url, no padding): version(1) | next open ms (8) |
// crc32 of the query and cursor (4). The checksum catches tokens reused
// with another query or mangled in transit; it is not a security boundary
// (a client can only ever read what Range would give it anyway).
const tokenVersion = 1

func tokenSum(symbol string, iv Interval, startMs, endMs, next int64) uint32 {
	var b [8 * 3]byte
	binary.BigEndian.PutUint64(b[0:], uint64(startMs))
	binary.BigEndian.PutUint64(b[8:], uint64(endMs))
	binary.BigEndian.PutUint64(b[16:], uint64(next))
	h := crc32.NewIEEE()
	h.Write([]byte(symbol))
	h.Write([]byte{0, byte(iv), tokenVersion})
	h.Write(b[:])
	return h.Sum32()
}

func encodeToken(symbol string, iv Interval, startMs, endMs, next int64) string {
	var b [13]byte
	b[0] = tokenVersion
	binary.BigEndian.PutUint64(b[1:], uint64(next))
	binary.BigEndian.PutUint32(b[9:], tokenSum(symbol, iv, startMs, endMs, next))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func decodeToken(tok, symbol string, iv Interval, startMs, endMs int64) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) != 13 || b[0] != tokenVersion {
		return 0, fmt.Errorf("%w: field page_token is malformed", ErrInvalidPageToken)
	}
	next := int64(binary.BigEndian.Uint64(b[1:]))
	if binary.BigEndian.Uint32(b[9:]) != tokenSum(symbol, iv, startMs, endMs, next) {
		return 0, fmt.Errorf("%w: field page_token does not belong to this symbol/interval/start/end", ErrInvalidPageToken)
	}
	if next < startMs || next >= endMs {
		return 0, fmt.Errorf("%w: field page_token cursor outside the range", ErrInvalidPageToken)
	}
	return next, nil
}

func ceilMs(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.Sub(time.UnixMilli(ms)) > 0 {
		ms++
	}
	return ms
}

// rangeArgs validates Range arguments and returns [startMs, endMs) and the limit.
func rangeArgs(symbol string, iv Interval, start, end time.Time, limit int) (int64, int64, int, error) {
	if err := ValidateSymbol(symbol); err != nil {
		return 0, 0, 0, fmt.Errorf("%w: field symbol: %w", ErrInvalidRange, err)
	}
	if !iv.Valid() {
		return 0, 0, 0, fmt.Errorf("%w: field interval: %v", ErrInvalidRange, iv)
	}
	if !end.After(start) {
		return 0, 0, 0, fmt.Errorf("%w: field end %v must be after start %v", ErrInvalidRange, end, start)
	}
	if start.Before(time.Unix(0, 0)) {
		start = time.Unix(0, 0)
	}
	if limit < 0 {
		return 0, 0, 0, fmt.Errorf("%w: field limit %d is negative", ErrInvalidRange, limit)
	}
	if limit == 0 {
		limit = DefaultRangeLimit
	}
	if limit > MaxRangeLimit {
		limit = MaxRangeLimit
	}
	sMs, eMs := ceilMs(start), ceilMs(end)
	if eMs <= sMs {
		return 0, 0, 0, fmt.Errorf("%w: field end %v must be after start %v", ErrInvalidRange, end, start)
	}
	return sMs, eMs, limit, nil
}

// Range returns candles of symbol/iv with start <= OpenTime < end, oldest
// first, at most limit per page (0 means DefaultRangeLimit; capped at
// MaxRangeLimit). pageToken is "" for the first page, else the previous
// page's NextPageToken (opaque, bound to the same symbol/iv/start/end).
// Walking all pages yields every candle in the range exactly once, and
// reflects writes made between pages. Unknown series give an empty page.
func (s *Store) Range(symbol string, iv Interval, start, end time.Time, limit int, pageToken string) (Page, error) {
	sMs, eMs, limit, err := rangeArgs(symbol, iv, start, end, limit)
	if err != nil {
		return Page{}, err
	}
	from := sMs
	if pageToken != "" {
		if from, err = decodeToken(pageToken, symbol, iv, sMs, eMs); err != nil {
			return Page{}, err
		}
	}
	var page Page
	err = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName(symbol, iv))
		if b == nil {
			return nil
		}
		cur := b.Cursor()
		fk := timeKey(from)
		n := 0
		for k, v := cur.Seek(fk[:]); k != nil; k, v = cur.Next() {
			if len(k) != 8 {
				return fmt.Errorf("%w: key length %d", ErrCorrupt, len(k))
			}
			ms := int64(binary.BigEndian.Uint64(k))
			if ms >= eMs {
				break
			}
			if n == limit {
				page.NextPageToken = encodeToken(symbol, iv, sMs, eMs, ms)
				break
			}
			if page.Candles == nil {
				page.Candles = make([]Candle, 0, min(limit, estimateCount(iv, from, eMs)))
			}
			c := Candle{Symbol: symbol, Interval: iv, OpenTime: time.UnixMilli(ms).UTC()}
			if err := decodeCandle(v, &c); err != nil {
				return fmt.Errorf("%s %s at %v: %w", symbol, iv, c.OpenTime, err)
			}
			page.Candles = append(page.Candles, c)
			n++
		}
		return nil
	})
	if err != nil {
		return Page{}, err
	}
	return page, nil
}

func estimateCount(iv Interval, fromMs, endMs int64) int {
	w := iv.nanos() / int64(time.Millisecond)
	n := (endMs - fromMs + w - 1) / w
	if n < 1 {
		return 1
	}
	if n > MaxRangeLimit {
		return MaxRangeLimit
	}
	return int(n)
}

// Latest returns the newest candle of symbol/iv, or ErrNotFound.
func (s *Store) Latest(symbol string, iv Interval) (Candle, error) {
	if err := ValidateSymbol(symbol); err != nil {
		return Candle{}, err
	}
	if !iv.Valid() {
		return Candle{}, fmt.Errorf("%w: field interval: %v", ErrInvalidRange, iv)
	}
	var c Candle
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName(symbol, iv))
		if b == nil {
			return nil
		}
		k, v := b.Cursor().Last()
		if k == nil {
			return nil
		}
		if len(k) != 8 {
			return fmt.Errorf("%w: key length %d", ErrCorrupt, len(k))
		}
		c = Candle{Symbol: symbol, Interval: iv, OpenTime: time.UnixMilli(int64(binary.BigEndian.Uint64(k))).UTC()}
		found = true
		return decodeCandle(v, &c)
	})
	if err != nil {
		return Candle{}, err
	}
	if !found {
		return Candle{}, fmt.Errorf("%w: %s %s", ErrNotFound, symbol, iv)
	}
	return c, nil
}
