// Package latency is the latency histogram every benchmark shares: a small
// HdrHistogram-style log-linear histogram of nanoseconds. Values below 128
// are exact; above, each power of two is split into 64 linear sub-buckets,
// so a recorded value is known to within 1/64 (1.6%). Safe for concurrent
// use; record a batch at a time (RecordAll) to keep the lock off the
// measured path.
package latency

import (
	"math/bits"
	"sync"
	"time"
)

// Histogram counts durations.
type Histogram struct {
	mu     sync.Mutex
	counts [4096]uint64
	total  uint64
	max    int64
}

func bucket(v int64) int {
	if v < 128 {
		return int(max(v, 0))
	}
	e := bits.Len64(uint64(v)) - 7 // v>>e in [64,128)
	return e*64 + int(v>>e)
}

// upper is the largest value that maps to bucket i.
func upper(i int) int64 {
	if i < 128 {
		return int64(i)
	}
	e := i/64 - 1
	return (int64(i-e*64)+1)<<e - 1
}

// Record counts one duration.
func (h *Histogram) Record(d time.Duration) {
	h.mu.Lock()
	h.record(int64(d))
	h.mu.Unlock()
}

func (h *Histogram) record(v int64) {
	h.counts[bucket(v)]++
	h.total++
	h.max = max(h.max, v)
}

// RecordAll counts a batch of nanosecond durations under one lock.
func (h *Histogram) RecordAll(ns []int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, v := range ns {
		h.record(v)
	}
}

// Merge adds o's counts.
func (h *Histogram) Merge(o *Histogram) {
	o.mu.Lock()
	counts, total, mx := o.counts, o.total, o.max
	o.mu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, c := range counts {
		h.counts[i] += c
	}
	h.total += total
	h.max = max(h.max, mx)
}

// Count is how many durations were recorded.
func (h *Histogram) Count() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.total
}

// Max is the largest duration recorded.
func (h *Histogram) Max() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Duration(h.max)
}

// Quantile is the upper bound of the bucket holding the q-quantile (never
// above the largest value recorded); 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.total == 0 {
		return 0
	}
	rank := max(uint64(q*float64(h.total)+0.5), 1)
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			return time.Duration(min(upper(i), h.max))
		}
	}
	return time.Duration(h.max)
}
