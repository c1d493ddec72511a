package latency

import (
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	for _, v := range []int64{0, 1, 127, 128, 129, 255, 256, 1000, 123456, 1 << 40, 1<<62 + 12345} {
		i := bucket(v)
		if up := upper(i); up < v || (i > 0 && upper(i-1) >= v) {
			t.Fatalf("v=%d bucket %d upper %d prev %d", v, i, up, upper(i-1))
		}
		if v > 128 && float64(upper(i)-v)/float64(v) > 1.0/64 {
			t.Fatalf("v=%d error too large", v)
		}
	}
}

func TestQuantiles(t *testing.T) {
	var h, other Histogram
	if h.Quantile(0.5) != 0 {
		t.Fatal("empty histogram has a quantile")
	}
	batch := make([]int64, 0, 5000)
	for v := int64(1); v <= 5000; v++ {
		batch = append(batch, v)
		other.Record(time.Duration(v + 5000))
	}
	h.RecordAll(batch)
	h.Merge(&other)
	for _, c := range []struct {
		q    float64
		want int64
	}{{0.5, 5000}, {0.99, 9900}, {0.999, 9990}, {1, 10000}} {
		got := int64(h.Quantile(c.q))
		if got < c.want || float64(got-c.want)/float64(c.want) > 0.02 {
			t.Fatalf("q%.3f = %d, want ~%d", c.q, got, c.want)
		}
	}
	if h.Count() != 10000 || h.Max() != 10000 {
		t.Fatalf("count %d max %v", h.Count(), h.Max())
	}
}
