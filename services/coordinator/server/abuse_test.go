package server_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coord"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Issue 9, item 7: sessions (per owner and in total), waiting requests
// (memory and locks, per owner) and watchers (per owner and in total) are
// bounded; past a limit the answer is RESOURCE_EXHAUSTED naming it, and
// what is given back can be had again.
func TestLimitsRefuseNamingTheLimit(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{Budget: 100,
		Limits:      coord.Limits{Sessions: 5, SessionsPerOwner: 3, WaitersPerOwner: 2},
		MaxWatchers: 3, MaxWatchersPerOwner: 2})
	ctx := ctxT(t)
	create := func(owner string) (string, error) {
		resp, err := c.CreateSession(ctx, &coordinatorv1.CreateSessionRequest{Owner: owner, Ttl: durationpb.New(30 * time.Second)})
		return resp.GetSessionId(), err
	}
	var xs []string
	for range 3 {
		s, err := create("x")
		if err != nil {
			t.Fatal(err)
		}
		xs = append(xs, s)
	}
	_, err := create("x")
	wantCode(t, err, codes.ResourceExhausted, "max-sessions-per-owner", `"x"`)
	for range 2 {
		if _, err := create("y"); err != nil {
			t.Fatal(err)
		}
	}
	_, err = create("z")
	wantCode(t, err, codes.ResourceExhausted, "max-sessions")
	if _, err := c.CloseSession(ctx, &coordinatorv1.CloseSessionRequest{SessionId: xs[2]}); err != nil {
		t.Fatal(err)
	}
	if _, err := create("z"); err != nil {
		t.Fatalf("after a session closed: %v", err)
	}

	// Waiters: x holds the budget and the lock; two requests of x wait, a
	// third is refused, whichever kind.
	if _, err := acquire(ctx, c, xs[0], "all", 100, 50, false, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := lock(ctx, c, xs[0], "L", 0); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _, _ = acquire(wctx, c, xs[1], "m", 10, 50, false, time.Minute) }()
	go func() { defer wg.Done(); _, _ = lock(wctx, c, xs[1], "L", time.Minute) }()
	eventually(t, 10*time.Second, "two waiters", func() bool { return status_(t, c).GetWaiters() == 2 })
	_, err = acquire(ctx, c, xs[1], "m2", 10, 50, false, time.Minute)
	wantCode(t, err, codes.ResourceExhausted, "max-waiters-per-owner")
	_, err = lock(ctx, c, xs[0], "L2", time.Minute) // free: granted, not waiting
	if err != nil {
		t.Fatal(err)
	}
	_, err = lock(ctx, c, xs[1], "L2", time.Minute)
	wantCode(t, err, codes.ResourceExhausted, "max-waiters-per-owner")
	cancel()
	wg.Wait()
	eventually(t, 10*time.Second, "the waiters gone", func() bool { return status_(t, c).GetWaiters() == 0 })
	if _, err := acquire(ctx, c, xs[1], "m3", 10, 50, false, 50*time.Millisecond); status.Code(err) != codes.ResourceExhausted || !containsReason(err, "MEMORY_NOT_GRANTED") {
		t.Fatalf("a waiter after the others left: %v, want a plain MEMORY_NOT_GRANTED", err)
	}

	// Watchers: two per owner (this client's address), three in all.
	watch := func() error {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		t.Cleanup(cancel)
		stream, err := c.Watch(wctx, &coordinatorv1.WatchRequest{Types: []coordinatorv1.EventType{coordinatorv1.EventType_EVENT_TYPE_LOCK_DEADLOCK}})
		if err != nil {
			return err
		}
		_, err = stream.Recv()
		if status.Code(err) == codes.DeadlineExceeded {
			return nil // accepted, nothing to see
		}
		return err
	}
	// Two watchers held open, each confirmed by the event it sees.
	var held []context.CancelFunc
	for len(held) < 2 {
		wctx, cancel := context.WithCancel(ctx)
		stream, err := c.Watch(wctx, &coordinatorv1.WatchRequest{Types: []coordinatorv1.EventType{coordinatorv1.EventType_EVENT_TYPE_MEMORY_DENIED}})
		if err != nil {
			t.Fatal(err)
		}
		seen := make(chan error, 1)
		go func() { _, err := stream.Recv(); seen <- err }()
		time.Sleep(100 * time.Millisecond)
		_, _ = acquire(ctx, c, xs[1], "probe", 10, 50, false, 0) // denied: an event
		if err := <-seen; err != nil {
			t.Logf("a watcher to hold: %v; again", err)
			cancel()
			continue
		}
		held = append(held, cancel)
	}
	eventually(t, 30*time.Second, "a third watcher refused", func() bool {
		err := watch()
		return status.Code(err) == codes.ResourceExhausted && containsReason(err, "LIMIT_REACHED")
	})
	wantCode(t, watch(), codes.ResourceExhausted, "max-watchers-per-owner")
	held[0]()
	eventually(t, 30*time.Second, "a watcher accepted again", func() bool { return watch() == nil })
	held[1]()
}

func containsReason(err error, reason string) bool {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(interface{ GetReason() string }); ok && info.GetReason() == reason {
			return true
		}
	}
	return false
}

// Issue 9, item 6: watchers that never read cost the leader a bounded
// amount of memory (their event buffer), and one that fell behind is cut
// off with RESOURCE_EXHAUSTED once it reads.
func TestUnreadWatchersCostBoundedMemory(t *testing.T) {
	// A buffer far smaller than the events sent, so that a bounded watcher
	// (about buffer events) and an unbounded one (all 2,000 events, ~1 MB)
	// are far apart whatever else the process's heap holds (the embedded
	// etcd's history grows with the load too).
	const watchers, pairs, buffer = 100, 1000, 256
	r, c := coordtest.Start(t, coordtest.Config{Budget: 1 << 30, MaxWatchersPerOwner: watchers, WatchBuffer: buffer})
	ctx := ctxT(t)
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	wconn := coordtest.Client(t, r.Addr()) // its own connection: unread streams hold its flow-control window
	before := heap()
	var streams []coordinatorv1.CoordinatorService_WatchClient
	for range watchers {
		s, err := wconn.Watch(ctx, &coordinatorv1.WatchRequest{})
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	s := session(t, c, "load", time.Minute)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range pairs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			l, err := acquire(ctx, c, s, fmt.Sprint("c", i%10), 1000, 50, false, 0)
			if err == nil {
				_, _ = c.ReleaseMemory(ctx, &coordinatorv1.ReleaseMemoryRequest{SessionId: s, LeaseId: l.GetLeaseId()})
			}
		}()
	}
	wg.Wait()
	grown := int64(heap()) - int64(before)
	perWatcher := grown / watchers
	t.Logf("%d unread watchers over %d events: heap grew %.1f MB, %.0f KB per watcher", watchers, 2*pairs, float64(grown)/1e6, float64(perWatcher)/1e3)
	if perWatcher > 450_000 {
		t.Fatalf("an unread watcher costs %d bytes; want its bounded buffer (%d events)", perWatcher, buffer)
	}
	// The first watcher reads now: what was buffered, then the cut-off.
	var err error
	for err == nil {
		_, err = streams[0].Recv()
	}
	wantCode(t, err, codes.ResourceExhausted, "behind")
}

// A watch that says it was forwarded by a replica (without TLS anyone can
// say so) is not counted per owner on the replica that serves it, but it is
// counted in that replica's total: claiming to forward does not unbound
// watchers.
func TestForwardedWatchesCountInTheTotal(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{MaxWatchers: 3, MaxWatchersPerOwner: 1})
	ctx := metadata.AppendToOutgoingContext(ctxT(t), "x-tradsys-forwarded", "1")
	watch := func() error {
		wctx, cancel := context.WithCancel(ctx)
		stream, err := c.Watch(wctx, &coordinatorv1.WatchRequest{})
		if err != nil {
			cancel()
			return err
		}
		got := make(chan error, 1)
		go func() { _, err := stream.Recv(); got <- err }()
		select {
		case err := <-got:
			if err == nil { // an event: live
				t.Cleanup(cancel)
				return nil
			}
			cancel()
			return err
		case <-time.After(500 * time.Millisecond):
			t.Cleanup(cancel)
			return nil
		}
	}
	for i := range 3 {
		if err := watch(); err != nil {
			t.Fatalf("forwarded watch %d of 3: %v", i+1, err)
		}
	}
	wantCode(t, watch(), codes.ResourceExhausted, "max-watchers")
}
