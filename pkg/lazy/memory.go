package lazy

import (
	"context"
	"fmt"
	"math"
	"runtime/debug"
	runtimemetrics "runtime/metrics"
	"time"

	"github.com/tradsys/mesh/pkg/config"
	"go.uber.org/zap"
)

// A lease is the limit, not an estimate written down once:
//
//   - the process's Go soft memory limit (debug.SetMemoryLimit) is its base
//     footprint plus the leases its components hold, moved on every grant,
//     resize and release, so the GC works to stay within what the
//     coordinator granted;
//   - a component that reports its usage (Spec.Usage) has its lease grown
//     ahead of its growth (with headroom) and shrunk when usage falls; when
//     a growth is refused the component is told (Spec.OnMemory) and sheds
//     load its own way, and MemoryRefusal says so until it clears;
//   - a component that can live in a smaller lease (Spec.Fit: a cache) is
//     told every size its lease takes, and answers a revocation notice by
//     shrinking its lease by what the leases are over the budget (the
//     coordinator says how much) until the coordinator keeps it (a notice
//     for a lowered budget is withdrawn once the leases fit) instead of
//     unloading.

// Resizer is a Coordinator that can resize leases (the real one can); a
// component's usage is followed only with one.
type Resizer interface {
	// ResizeMemory sets l's size to bytes, waiting up to wait for a
	// growth, and reports used (< 0: unknown).
	ResizeMemory(ctx context.Context, l Lease, bytes, used int64, wait time.Duration) (Lease, error)
}

// Defaults of the usage policy.
const (
	DefaultUsageInterval = time.Second
	DefaultHeadroom      = 0.25
	leaseGranularity     = 1 << 20 // leases move in whole MiB
)

// Refusal is a growth the coordinator refused: the component uses more
// than, or nearly all of, what it leases.
type Refusal struct {
	Component, LeaseID string
	Used, Leased       int64
	Wanted             int64
	Err                error // the coordinator's answer (names the budget and its holders)
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("component %s uses %s of its %s memory lease %s and may not grow to %s: %v", r.Component,
		config.FormatBytes(r.Used), config.FormatBytes(r.Leased), r.LeaseID, config.FormatBytes(r.Wanted), r.Err)
}

func (r *Refusal) Unwrap() error { return r.Err }

// MemoryRefusal is the refusal the component is under, or nil: its last
// growth was refused and its usage has not fallen back within its lease.
func (c *Component) MemoryRefusal() *Refusal { return c.refusal.Load() }

// Leased is the size of the component's lease now (0 when it holds none).
func (c *Component) Leased() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lease.Bytes
}

// startUsageLocked starts following the component's usage while it is
// active; stopUsageLocked ends it.
func (c *Component) startUsageLocked() {
	if c.spec.Usage == nil {
		return
	}
	if _, ok := c.rt.coord.(Resizer); !ok {
		return
	}
	stop := make(chan struct{})
	c.usageStop = stop
	go c.followUsage(stop)
}

func (c *Component) stopUsageLocked() {
	if c.usageStop != nil {
		close(c.usageStop)
		c.usageStop = nil
	}
}

func (c *Component) followUsage(stop <-chan struct{}) {
	t := time.NewTicker(c.spec.UsageInterval)
	defer t.Stop()
	for {
		c.checkUsage(stop)
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// checkUsage resizes the lease to the usage when it left its band: grow
// when usage reaches the lease less half the headroom, shrink (never below
// Spec.MemoryBytes) when it is under half the lease with its headroom.
func (c *Component) checkUsage(stop <-chan struct{}) {
	c.resizeMu.Lock()
	defer c.resizeMu.Unlock()
	used := c.spec.Usage()
	name := c.spec.Name
	c.rt.m.used.WithLabelValues(name).Set(float64(used))
	c.mu.Lock()
	l := c.lease
	c.mu.Unlock()
	if l.ID == "" {
		return
	}
	h := c.spec.Headroom
	withHeadroom := roundUp(float64(used) * (1 + h))
	want := l.Bytes
	switch {
	case float64(used)*(1+h/2) > float64(l.Bytes):
		want = withHeadroom
	case withHeadroom*2 < l.Bytes && l.Bytes > c.spec.MinBytes:
		want = max(withHeadroom, c.spec.MinBytes)
	}
	if want == l.Bytes && !c.reportDue(used) {
		if r := c.refusal.Load(); r != nil && float64(used)*(1+h/2) <= float64(l.Bytes) {
			c.clearRefusal(used)
		}
		return
	}
	// A growth may wait a tick for room, unless the last one was refused:
	// then it only asks, so it never sits at the head of the coordinator's
	// queue tick after tick.
	wait := time.Duration(0)
	if want > l.Bytes && c.refusal.Load() == nil {
		wait = c.spec.UsageInterval
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait+5*time.Second)
	go func() {
		select {
		case <-stop: // deactivating: the lease is on its way back
			cancel()
		case <-ctx.Done():
		}
	}()
	nl, err := c.rt.coord.(Resizer).ResizeMemory(ctx, l, want, used, wait)
	stopped := ctx.Err() != nil // deactivating, or the coordinator did not answer
	cancel()
	if err != nil {
		if want <= l.Bytes || stopped {
			c.rt.log.Debug("resize of memory lease failed", zap.String("component", name), zap.Error(err))
			return
		}
		c.refused(l, used, want, err)
		return
	}
	c.resized(l, nl, used)
}

// Reserve makes room in the component's lease for extra bytes it is about
// to take on top of its usage (a connector's ring for a new symbol), so a
// component that reports its usage can refuse the work when its lease may
// not hold it, rather than learn so at the next usage check. If the usage
// and extra do not fit the lease less half the headroom, it grows the lease
// now (waiting up to UsageInterval for room); a refused growth is the
// component's refusal (MemoryRefusal, OnMemory) and is returned, and so is
// the refusal the component is already under. A component without Usage,
// or holding no lease, answers nil.
func (c *Component) Reserve(ctx context.Context, extra int64) error {
	rs, ok := c.rt.coord.(Resizer)
	if c.spec.Usage == nil || !ok {
		return nil
	}
	if r := c.refusal.Load(); r != nil {
		return r
	}
	c.resizeMu.Lock()
	defer c.resizeMu.Unlock()
	used := c.spec.Usage()
	c.mu.Lock()
	l := c.lease
	c.mu.Unlock()
	h := c.spec.Headroom
	if l.ID == "" || float64(used+extra)*(1+h/2) <= float64(l.Bytes) {
		return nil
	}
	want := roundUp(float64(used+extra) * (1 + h))
	wait := c.spec.UsageInterval
	rctx, cancel := context.WithTimeout(ctx, wait+5*time.Second)
	nl, err := rs.ResizeMemory(rctx, l, want, used, wait)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if c.leaseID() != l.ID { // unloaded meanwhile: no refusal to record
			return err
		}
		return c.refused(l, used, want, err)
	}
	c.resized(l, nl, used)
	return nil
}

// refused records a refused growth of l to want: the component sheds load
// (OnMemory) until its usage fits again.
func (c *Component) refused(l Lease, used, want int64, err error) *Refusal {
	name := c.spec.Name
	c.rt.m.refusals.WithLabelValues(name).Inc()
	r := &Refusal{Component: name, LeaseID: l.ID, Used: used, Leased: l.Bytes, Wanted: want, Err: err}
	if c.refusal.Swap(r) == nil {
		c.rt.log.Warn("memory lease may not grow: shedding load", zap.String("component", name),
			zap.Int64("used_bytes", used), zap.Int64("leased_bytes", l.Bytes), zap.Int64("wanted_bytes", want), zap.Error(err))
	}
	if c.spec.OnMemory != nil {
		c.spec.OnMemory(r)
	}
	return r
}

// resized applies a resize of l to nl the coordinator granted, with used
// reported.
func (c *Component) resized(l, nl Lease, used int64) {
	name := c.spec.Name
	c.lastReported.Store(used)
	if nl.Bytes == l.Bytes {
		return
	}
	c.mu.Lock()
	if c.lease.ID == l.ID {
		c.lease = nl
	}
	c.mu.Unlock()
	dir := "grow"
	if nl.Bytes < l.Bytes {
		dir = "shrink"
	}
	c.rt.m.resizes.WithLabelValues(name, dir).Inc()
	c.rt.m.leased.WithLabelValues(name).Set(float64(nl.Bytes))
	c.rt.updateMemoryLimit()
	if c.spec.Fit != nil {
		c.spec.Fit(nl.Bytes)
	}
	if float64(used)*(1+c.spec.Headroom/2) <= float64(nl.Bytes) {
		c.clearRefusal(used)
	}
}

// shrinkToKeep answers a revocation notice of a component that can fit a
// smaller lease (Spec.Fit): it asks the coordinator how far the leases are
// over the budget (a resize to the same size answers that, Lease.Over) and
// shrinks by that much and a MiB of headroom, never below MinBytes, making
// the component fit the size before asking for it, until the coordinator
// withdraws the notice (a lease revoked for a lowered budget is kept once
// the leases fit). When the coordinator does not say (Over < 0: a notice
// to make room for a waiter, which no shrink withdraws, or an older
// coordinator) it halves the lease instead. It says whether the lease was
// kept; if not, the caller deactivates the component as usual.
func (c *Component) shrinkToKeep(leaseID string, deadline time.Time) bool {
	rs, ok := c.rt.coord.(Resizer)
	if c.spec.Fit == nil || !ok {
		return false
	}
	c.resizeMu.Lock()
	defer c.resizeMu.Unlock()
	name := c.spec.Name
	over, asked := int64(-1), false
	for time.Until(deadline) > 0 {
		c.mu.Lock()
		l, st := c.lease, c.state
		c.mu.Unlock()
		if l.ID != leaseID || st != Active {
			return false
		}
		target := l.Bytes // first only ask how far over the leases are
		if asked {
			if over >= 0 {
				target = l.Bytes - roundUp(float64(over)) - leaseGranularity
			} else {
				target = roundUp(float64(l.Bytes) / 2)
			}
			target = max(target, c.spec.MinBytes)
			if target >= l.Bytes {
				return false
			}
			c.spec.Fit(target)
		}
		used := int64(-1)
		if c.spec.Usage != nil {
			used = c.spec.Usage()
			c.rt.m.used.WithLabelValues(name).Set(float64(used))
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		nl, err := rs.ResizeMemory(ctx, l, target, used, 0)
		cancel()
		if err != nil {
			c.rt.log.Warn("shrinking a revoked memory lease failed: unloading", zap.String("component", name), zap.Error(err))
			return false
		}
		asked, over = true, nl.Over
		c.lastReported.Store(used)
		if nl.Bytes != l.Bytes {
			c.mu.Lock()
			if c.lease.ID == l.ID {
				c.lease = nl
			}
			c.mu.Unlock()
			c.rt.m.resizes.WithLabelValues(name, "shrink").Inc()
			c.rt.m.leased.WithLabelValues(name).Set(float64(nl.Bytes))
			c.rt.updateMemoryLimit()
		}
		if nl.RevokeAt.IsZero() {
			c.rt.log.Info("memory lease shrunk to fit a lowered budget: kept", zap.String("component", name),
				zap.Int64("leased_bytes", nl.Bytes), zap.Int64("used_bytes", used))
			return true
		}
		c.rt.log.Debug("revoked memory lease: shrinking", zap.String("component", name),
			zap.Int64("leased_bytes", nl.Bytes), zap.Int64("over_bytes", nl.Over))
	}
	return false
}

// reportDue says whether used moved enough since it was last told to the
// coordinator (a tenth, or a MiB) to be worth a call.
func (c *Component) reportDue(used int64) bool {
	last := c.lastReported.Load()
	d := used - last
	if d < 0 {
		d = -d
	}
	return last < 0 || d*10 > last && d > leaseGranularity
}

func (c *Component) clearRefusal(used int64) {
	if c.refusal.Swap(nil) == nil {
		return
	}
	c.rt.log.Info("memory lease fits again", zap.String("component", c.spec.Name), zap.Int64("used_bytes", used))
	if c.spec.OnMemory != nil {
		c.spec.OnMemory(nil)
	}
}

func roundUp(b float64) int64 {
	return int64(math.Ceil(b/leaseGranularity)) * leaseGranularity
}

// updateMemoryLimit sets the Go soft memory limit to the base footprint
// plus every lease the components hold.
func (r *Runtime) updateMemoryLimit() {
	if !r.goLimit {
		return
	}
	sum := r.base
	for _, c := range r.Components() {
		sum += c.Leased()
	}
	r.limitMu.Lock()
	debug.SetMemoryLimit(sum)
	r.limitMu.Unlock()
	r.m.goLimit.Set(float64(sum))
}

// baseFootprint is what the process uses before any component loads: the
// Go runtime's total memory now, doubled for the gRPC server's buffers and
// garbage, and at least 64 MiB.
func baseFootprint() int64 {
	s := []runtimemetrics.Sample{{Name: "/memory/classes/total:bytes"}}
	runtimemetrics.Read(s)
	var total int64
	if s[0].Value.Kind() == runtimemetrics.KindUint64 {
		total = int64(s[0].Value.Uint64())
	}
	return max(2*total, 64<<20)
}
