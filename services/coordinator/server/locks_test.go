package server_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestLockMutualExclusionAndGrowingTokens(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{})
	const workers, rounds = 12, 15
	var holder atomic.Value // session id of the current holder, "" when free
	holder.Store("")
	var mu sync.Mutex
	var lastToken uint64
	var grants atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		sid := session(t, c, fmt.Sprintf("worker-%d", w), time.Minute) // outlives the test on a loaded machine: it never renews
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for i := 0; i < rounds; i++ {
				resp, err := lock(ctx, c, sid, "orders/book", 30*time.Second)
				if err != nil {
					errs <- err
					return
				}
				if !holder.CompareAndSwap("", sid) {
					errs <- fmt.Errorf("two holders: %s got the lock while %v held it", sid, holder.Load())
					return
				}
				mu.Lock()
				if resp.GetFencingToken() <= lastToken {
					errs <- fmt.Errorf("fencing token went from %d to %d", lastToken, resp.GetFencingToken())
				}
				lastToken = resp.GetFencingToken()
				mu.Unlock()
				grants.Add(1)
				time.Sleep(time.Duration(i%3) * time.Millisecond)
				holder.Store("")
				if err := unlock(ctx, c, sid, "orders/book"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if grants.Load() != workers*rounds {
		t.Fatalf("grants = %d, want %d", grants.Load(), workers*rounds)
	}
}

func TestLockFIFOOrder(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{})
	ctx := ctxT(t)
	holder := session(t, c, "holder", 10*time.Second)
	if _, err := lock(ctx, c, holder, "L", 0); err != nil {
		t.Fatal(err)
	}
	order := make(chan string, 3)
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		sid := session(t, c, fmt.Sprintf("w%d", i), 10*time.Second)
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			if _, err := lock(ctx, c, sid, "L", 20*time.Second); err != nil {
				t.Error(err)
				return
			}
			order <- name
			_ = unlock(ctx, c, sid, "L")
		}(fmt.Sprintf("w%d", i))
		// Each waiter is queued before the next one asks.
		eventually(t, 5*time.Second, "waiter queued", func() bool { return int(status_(t, c).GetLockWaiters()) == i+1 })
	}
	if err := unlock(ctx, c, holder, "L"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(order)
	var got []string
	for n := range order {
		got = append(got, n)
	}
	if fmt.Sprint(got) != "[w0 w1 w2]" {
		t.Fatalf("grant order %v, want FIFO [w0 w1 w2]", got)
	}
}

// waitQueued waits until n lock waiters are queued.
func waitQueued(t *testing.T, c client, n int) {
	eventually(t, 5*time.Second, fmt.Sprintf("%d lock waiters", n), func() bool { return int(status_(t, c).GetLockWaiters()) == n })
}

func TestDeadlockTwoCycleNamed(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{})
	ctx := ctxT(t)
	a, b := session(t, c, "alice", 10*time.Second), session(t, c, "bob", 10*time.Second)
	mustLock(t, c, a, "L1")
	mustLock(t, c, b, "L2")
	aWait := make(chan error, 1)
	go func() { _, err := lock(ctx, c, a, "L2", 20*time.Second); aWait <- err }()
	waitQueued(t, c, 1)
	_, err := lock(ctx, c, b, "L1", 20*time.Second)
	wantCode(t, err, codes.Aborted, "deadlock", a, b, `"alice"`, `"bob"`, `"L1"`, `"L2"`)
	// The victim's refusal leaves the other waiter intact: once b lets go
	// of L2, a gets it.
	if err := unlock(ctx, c, b, "L2"); err != nil {
		t.Fatal(err)
	}
	if err := <-aWait; err != nil {
		t.Fatalf("a should get L2 after b released it: %v", err)
	}
}

func TestDeadlockThreeCycleNamed(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{})
	ctx := ctxT(t)
	a, b, d := session(t, c, "a", 10*time.Second), session(t, c, "b", 10*time.Second), session(t, c, "c", 10*time.Second)
	mustLock(t, c, a, "X")
	mustLock(t, c, b, "Y")
	mustLock(t, c, d, "Z")
	go func() { _, _ = lock(ctx, c, a, "Y", 20*time.Second) }() // a waits for b
	waitQueued(t, c, 1)
	go func() { _, _ = lock(ctx, c, b, "Z", 20*time.Second) }() // b waits for c
	waitQueued(t, c, 2)
	_, err := lock(ctx, c, d, "X", 20*time.Second) // c waits for a: cycle
	wantCode(t, err, codes.Aborted, "deadlock", a, b, d, `"X"`, `"Y"`, `"Z"`)
}

func TestChainOfWaitersIsNotADeadlock(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{})
	ctx := ctxT(t)
	a, b, d := session(t, c, "a", 10*time.Second), session(t, c, "b", 10*time.Second), session(t, c, "c", 10*time.Second)
	mustLock(t, c, a, "L1")
	mustLock(t, c, b, "L2")
	bWait := make(chan error, 1)
	go func() { _, err := lock(ctx, c, b, "L1", 20*time.Second); bWait <- err }() // b waits for a
	waitQueued(t, c, 1)
	dWait := make(chan error, 1)
	go func() { _, err := lock(ctx, c, d, "L2", 20*time.Second); dWait <- err }() // c waits for b
	waitQueued(t, c, 2)
	// Another waiter on L1 queues behind b: still a chain.
	e := session(t, c, "e", 10*time.Second)
	eWait := make(chan error, 1)
	go func() { _, err := lock(ctx, c, e, "L1", 20*time.Second); eWait <- err }()
	waitQueued(t, c, 3)
	if err := unlock(ctx, c, a, "L1"); err != nil {
		t.Fatal(err)
	}
	if err := <-bWait; err != nil {
		t.Fatalf("b: %v", err)
	}
	if err := unlock(ctx, c, b, "L2"); err != nil {
		t.Fatal(err)
	}
	if err := <-dWait; err != nil {
		t.Fatalf("c: %v", err)
	}
	if err := unlock(ctx, c, b, "L1"); err != nil {
		t.Fatal(err)
	}
	if err := <-eWait; err != nil {
		t.Fatalf("e: %v", err)
	}
}

func mustLock(t *testing.T, c client, sid, name string) uint64 {
	t.Helper()
	resp, err := lock(ctxT(t), c, sid, name, 0)
	if err != nil {
		t.Fatalf("lock %s: %v", name, err)
	}
	return resp.GetFencingToken()
}

func TestLockRanks(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{LockRanks: map[string]int32{"books": 20}})
	ctx := ctxT(t)
	s := session(t, c, "ranked", 10*time.Second)
	mustLock(t, c, s, "books") // rank 20 from configuration
	_, err := c.AcquireLock(ctx, &coordinatorv1.AcquireLockRequest{SessionId: s, Name: "accounts", Rank: 10})
	wantCode(t, err, codes.FailedPrecondition, "rank", `"books"`, `"accounts"`)
	// A higher rank is fine.
	if _, err := c.AcquireLock(ctx, &coordinatorv1.AcquireLockRequest{SessionId: s, Name: "journal", Rank: 30}); err != nil {
		t.Fatal(err)
	}
}

func TestLockTimeoutAndReleaseRules(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{})
	ctx := ctxT(t)
	a, b := session(t, c, "a", 10*time.Second), session(t, c, "b", 10*time.Second)
	tok := mustLock(t, c, a, "L")
	if again := mustLock(t, c, a, "L"); again != tok {
		t.Fatalf("re-acquire by the holder: token %d, want %d", again, tok)
	}
	start := time.Now()
	_, err := lock(ctx, c, b, "L", 300*time.Millisecond)
	wantCode(t, err, codes.DeadlineExceeded, `"L"`, a)
	if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
		t.Fatalf("lock wait took %s, want about 300ms", d)
	}
	wantCode(t, unlock(ctx, c, b, "L"), codes.FailedPrecondition, "not held")
	wantCode(t, unlock(ctx, c, b, "nope"), codes.FailedPrecondition, "not held")
	if err := unlock(ctx, c, a, "L"); err != nil {
		t.Fatal(err)
	}
	tok2 := mustLock(t, c, b, "L")
	if tok2 <= tok {
		t.Fatalf("token after hand-over %d is not above %d", tok2, tok)
	}
}

func TestLockExclusionAcrossLeaderKill(t *testing.T) {
	etcd := coordtest.Etcd(t)
	r1 := coordtest.Replica(t, etcd, coordtest.Config{ElectionTTL: 1})
	r2 := coordtest.Replica(t, etcd, coordtest.Config{ElectionTTL: 1})
	leader, follower := r1, r2
	if !r1.Coord.IsLeader() {
		leader, follower = r2, r1
	}
	c := coordtest.Client(t, follower.Addr())
	var holder atomic.Value
	holder.Store("")
	var mu sync.Mutex
	var lastToken uint64
	var grants atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		sid := session(t, c, fmt.Sprintf("w%d", w), 30*time.Second)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				resp, err := lock(ctx, c, sid, "ha/lock", 3*time.Second)
				cancel()
				if err != nil {
					time.Sleep(20 * time.Millisecond) // failover in progress
					continue
				}
				if !holder.CompareAndSwap("", sid) {
					t.Errorf("two holders: %s while %v", sid, holder.Load())
					return
				}
				mu.Lock()
				if resp.GetFencingToken() <= lastToken {
					t.Errorf("token went from %d to %d", lastToken, resp.GetFencingToken())
				}
				lastToken = resp.GetFencingToken()
				mu.Unlock()
				grants.Add(1)
				time.Sleep(time.Millisecond)
				holder.Store("")
				// A release may fail while leadership moves; the lock is
				// then released again (or handed on) by the new leader.
				for i := 0; i < 50; i++ {
					err := unlock(context.Background(), c, sid, "ha/lock")
					if err == nil || status.Code(err) == codes.FailedPrecondition {
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(time.Second)
	before := grants.Load()
	leader.Kill()
	eventually(t, 15*time.Second, "follower to take over", follower.Coord.IsLeader)
	eventually(t, 15*time.Second, "grants to resume", func() bool { return grants.Load() > before+10 })
	close(stop)
	wg.Wait()
	t.Logf("%d grants, %d before the kill", grants.Load(), before)
}

func TestDeadlockThroughAHotLockQueue(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{})
	ctx := ctxT(t)
	holder := session(t, c, "holder", 30*time.Second)
	mustLock(t, c, holder, "hot")
	// A long queue on the hot lock: none of these is a deadlock.
	const queued = 100
	var last string
	for i := 0; i < queued; i++ {
		sid := session(t, c, fmt.Sprintf("q%d", i), 30*time.Second)
		if i == queued-1 {
			mustLock(t, c, sid, "other") // the last waiter holds "other"
			last = sid
		}
		go func() { _, _ = lock(ctx, c, sid, "hot", 30*time.Second) }()
		waitQueued(t, c, i+1)
	}
	// The holder asking for "other" closes a cycle through the queue:
	// holder -> last (holds "other") -> holder (holds "hot").
	_, err := lock(ctx, c, holder, "other", 10*time.Second)
	wantCode(t, err, codes.Aborted, "deadlock", holder, last, `"hot"`, `"other"`)
	if st := status_(t, c); st.GetLockWaiters() != queued {
		t.Fatalf("the refused request disturbed the queue: %d waiters", st.GetLockWaiters())
	}
}
