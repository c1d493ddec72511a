package engine

import (
	"math/bits"
	"testing"
)

// histogram is a small HdrHistogram-style log-linear histogram: values below
// 128 are exact; above, each power of two is split into 64 linear
// sub-buckets, so a recorded value is known to within 1/64 (1.6%).
type histogram struct {
	counts [4096]uint64
	total  uint64
	max    int64
	min    int64
}

func histBucket(v int64) int {
	if v < 128 {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	e := bits.Len64(uint64(v)) - 7 // v>>e in [64,128)
	return e*64 + int(v>>e)
}

// histUpper is the largest value that maps to bucket i.
func histUpper(i int) int64 {
	if i < 128 {
		return int64(i)
	}
	e := i/64 - 1
	m := int64(i - e*64)
	return (m+1)<<e - 1
}

func (h *histogram) record(v int64) {
	h.counts[histBucket(v)]++
	if h.total == 0 || v < h.min {
		h.min = v
	}
	h.total++
	if v > h.max {
		h.max = v
	}
}

// quantile returns the upper bound of the bucket holding the q-quantile.
func (h *histogram) quantile(q float64) int64 {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q*float64(h.total) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(histUpper(i), h.max)
		}
	}
	return h.max
}

func TestHistogram(t *testing.T) {
	for _, v := range []int64{0, 1, 127, 128, 129, 255, 256, 1000, 123456, 1 << 40, 1<<62 + 12345} {
		i := histBucket(v)
		if up := histUpper(i); up < v || (i > 0 && histUpper(i-1) >= v) {
			t.Fatalf("v=%d bucket %d upper %d prev %d", v, i, up, histUpper(i-1))
		}
		if v > 128 && float64(histUpper(i)-v)/float64(v) > 1.0/64 {
			t.Fatalf("v=%d error too large", v)
		}
	}
	var h histogram
	for v := int64(1); v <= 10000; v++ {
		h.record(v)
	}
	for _, c := range []struct {
		q    float64
		want int64
	}{{0.5, 5000}, {0.99, 9900}, {0.999, 9990}} {
		got := h.quantile(c.q)
		if got < c.want || float64(got-c.want)/float64(c.want) > 0.02 {
			t.Fatalf("q%.3f = %d, want ~%d", c.q, got, c.want)
		}
	}
}
