package candles

import "math/bits"

// dedupSet remembers the last `capacity` distinct trade ids (FIFO) in a
// fixed-size open-addressing hash table with linear probing and
// backward-shift deletion. It never allocates after construction.
type dedupSet struct {
	ring    []uint64 // insertion order, oldest at head
	head    int
	n       int
	table   []uint64 // 0 = empty slot; id 0 is tracked by hasZero
	mask    uint64
	shift   uint8
	hasZero bool
}

func newDedupSet(capacity int) *dedupSet {
	if capacity < 1 {
		capacity = 1
	}
	size := 1
	for size < 2*capacity {
		size <<= 1
	}
	if size < 2 {
		size = 2
	}
	return &dedupSet{
		ring:  make([]uint64, capacity),
		table: make([]uint64, size),
		mask:  uint64(size - 1),
		shift: uint8(64 - bits.TrailingZeros(uint(size))),
	}
}

func (d *dedupSet) slot(id uint64) uint64 {
	return (id * 0x9E3779B97F4A7C15) >> d.shift & d.mask
}

// insert adds id and reports true if it was not already present.
func (d *dedupSet) insert(id uint64) bool {
	var i uint64
	if id == 0 {
		if d.hasZero {
			return false
		}
	} else {
		i = d.slot(id)
		for d.table[i] != 0 {
			if d.table[i] == id {
				return false
			}
			i = (i + 1) & d.mask
		}
	}
	if d.n == len(d.ring) { // full: forget the oldest id
		d.remove(d.ring[d.head])
		d.n--
		if id != 0 { // the removal may have shifted entries: find the slot again
			i = d.slot(id)
			for d.table[i] != 0 {
				i = (i + 1) & d.mask
			}
		}
	}
	if id == 0 {
		d.hasZero = true
	} else {
		d.table[i] = id
	}
	tail := d.head + d.n
	if tail >= len(d.ring) {
		tail -= len(d.ring)
	}
	d.ring[tail] = id
	d.n++
	return true
}

// remove deletes id (which must be the oldest, at head) from the table and
// advances head.
func (d *dedupSet) remove(id uint64) {
	d.head++
	if d.head == len(d.ring) {
		d.head = 0
	}
	if id == 0 {
		d.hasZero = false
		return
	}
	i := d.slot(id)
	for d.table[i] != id {
		if d.table[i] == 0 {
			return // not present (cannot happen)
		}
		i = (i + 1) & d.mask
	}
	// Backward-shift deletion.
	j := i
	for {
		j = (j + 1) & d.mask
		v := d.table[j]
		if v == 0 {
			break
		}
		k := d.slot(v)
		// Move v into the hole at i if its home k is not cyclically in (i, j].
		if (j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j)) {
			d.table[i] = v
			i = j
		}
	}
	d.table[i] = 0
}
