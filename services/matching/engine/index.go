package engine

// orderIndex is an open-addressed hash table uint64 -> *order with linear
// probing and backward-shift deletion (no tombstones, so a churning table
// never degrades and never needs rehashing unless it grows). Key 0 marks an
// empty slot, which is why order id 0 is invalid. Load factor is kept <= 1/2.
type orderIndex struct {
	slots []slot
	mask  uint64
	shift uint
	n     int
}

type slot struct {
	key uint64
	val *order
}

const minIndexBits = 10

func (ix *orderIndex) init(bits uint) {
	if bits < minIndexBits {
		bits = minIndexBits
	}
	ix.slots = make([]slot, 1<<bits)
	ix.mask = 1<<bits - 1
	ix.shift = 64 - bits
	ix.n = 0
}

func (ix *orderIndex) home(k uint64) uint64 { return (k * 0x9E3779B97F4A7C15) >> ix.shift }

func (ix *orderIndex) get(k uint64) *order {
	if ix.slots == nil {
		return nil
	}
	i := ix.home(k)
	for {
		s := &ix.slots[i]
		if s.key == k {
			return s.val
		}
		if s.key == 0 {
			return nil
		}
		i = (i + 1) & ix.mask
	}
}

// put inserts k (which must not be present and must be non-zero).
func (ix *orderIndex) put(k uint64, v *order) {
	if ix.slots == nil {
		ix.init(minIndexBits)
	}
	if (ix.n+1)*2 > len(ix.slots) {
		ix.grow()
	}
	i := ix.home(k)
	for ix.slots[i].key != 0 {
		i = (i + 1) & ix.mask
	}
	ix.slots[i] = slot{k, v}
	ix.n++
}

func (ix *orderIndex) grow() {
	old := ix.slots
	ix.init(64 - ix.shift + 1)
	for _, s := range old {
		if s.key != 0 {
			i := ix.home(s.key)
			for ix.slots[i].key != 0 {
				i = (i + 1) & ix.mask
			}
			ix.slots[i] = s
			ix.n++
		}
	}
}

func (ix *orderIndex) del(k uint64) {
	if ix.slots == nil {
		return
	}
	i := ix.home(k)
	for {
		if ix.slots[i].key == k {
			break
		}
		if ix.slots[i].key == 0 {
			return
		}
		i = (i + 1) & ix.mask
	}
	// backward-shift deletion
	j := i
	for {
		j = (j + 1) & ix.mask
		kj := ix.slots[j].key
		if kj == 0 {
			break
		}
		h := ix.home(kj)
		// if h lies cyclically in (i, j], the entry at j may stay.
		if i <= j {
			if i < h && h <= j {
				continue
			}
		} else if i < h || h <= j {
			continue
		}
		ix.slots[i] = ix.slots[j]
		i = j
	}
	ix.slots[i] = slot{}
	ix.n--
}

func (ix *orderIndex) len() int { return ix.n }

func (ix *orderIndex) memBytes() int64 { return int64(len(ix.slots)) * 16 }
