package engine

import "math/bits"

// Algorithm decides how an incoming quantity is shared among the resting
// orders of one price level. It is selected per book (Book.SetAlgorithm).
//
// Allocate is called with 0 < qty < sum(sizes); sizes are the open
// quantities of the level's orders in time priority (oldest first), with
// self-trade-prevented orders already removed. It must write into alloc
// (len(alloc) == len(sizes), zeroed) how much each order receives, with
// 0 <= alloc[i] <= sizes[i] and sum(alloc) == qty. The book enforces these
// bounds anyway (clamping, then topping up or trimming in time priority), so
// a faulty algorithm cannot corrupt the book. Allocate must be deterministic
// and must not retain the slices.
//
// When qty >= sum(sizes) every order is filled completely and Allocate is
// not called.
type Algorithm interface {
	Name() string
	Allocate(qty int64, sizes []int64, alloc []int64)
}

// FIFO is price-time priority: the oldest order at the best price is filled
// first. The book recognises FIFO and walks the level's queue directly
// (no scratch arrays), so FIFO matching is O(orders touched).
type FIFO struct{}

func (FIFO) Name() string { return "fifo" }

func (FIFO) Allocate(qty int64, sizes []int64, alloc []int64) {
	for i, s := range sizes {
		if qty <= 0 {
			return
		}
		a := min(s, qty)
		alloc[i] = a
		qty -= a
	}
}

// ProRata is CME-style pro-rata allocation (without CME's optional
// top-order and minimum-allocation refinements): each resting order at the
// level receives floor(qty * size / levelTotal), computed exactly with
// 128-bit intermediate arithmetic; the residual left by rounding down is
// then allocated FIFO by time priority (oldest first, each order up to its
// remaining size).
type ProRata struct{}

func (ProRata) Name() string { return "pro-rata" }

func (ProRata) Allocate(qty int64, sizes []int64, alloc []int64) {
	var total int64
	for _, s := range sizes {
		total += s
	}
	if total <= 0 || qty <= 0 {
		return
	}
	if qty >= total {
		copy(alloc, sizes)
		return
	}
	rem := qty
	for i, s := range sizes {
		if s <= 0 {
			continue
		}
		// qty < total and s <= total, so hi < total and Div64 cannot panic.
		hi, lo := bits.Mul64(uint64(qty), uint64(s))
		q, _ := bits.Div64(hi, lo, uint64(total))
		alloc[i] = int64(q)
		rem -= int64(q)
	}
	for i, s := range sizes {
		if rem <= 0 {
			break
		}
		add := min(s-alloc[i], rem)
		if add > 0 {
			alloc[i] += add
			rem -= add
		}
	}
}

// AlgorithmByName returns the built-in algorithm called name ("fifo" or
// "pro-rata").
func AlgorithmByName(name string) (Algorithm, error) {
	switch name {
	case "fifo", "FIFO", "":
		return FIFO{}, nil
	case "pro-rata", "prorata", "pro_rata", "PRO_RATA":
		return ProRata{}, nil
	}
	return nil, ErrUnknownAlgorithm
}

// sanitizeAlloc forces alloc to satisfy the Algorithm contract.
func sanitizeAlloc(qty int64, sizes, alloc []int64) {
	var sum int64
	for i, s := range sizes {
		a := alloc[i]
		if a < 0 {
			a = 0
		} else if a > s {
			a = s
		}
		alloc[i] = a
		sum += a
	}
	if sum < qty {
		rem := qty - sum
		for i, s := range sizes {
			if rem == 0 {
				break
			}
			add := min(s-alloc[i], rem)
			alloc[i] += add
			rem -= add
		}
	} else if sum > qty {
		over := sum - qty
		for i := len(alloc) - 1; i >= 0 && over > 0; i-- {
			d := min(alloc[i], over)
			alloc[i] -= d
			over -= d
		}
	}
}
