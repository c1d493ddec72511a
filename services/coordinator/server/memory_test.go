package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// budgetAuditor replays etcd's own history of memory lease keys and of the
// stored budget and checks, at every revision where a lease was granted or
// grew, that the bytes granted do not exceed the budget then in force. (A
// lowered budget may be below what is leased, until preemption brings the
// leases under it; no grant may happen meanwhile.)
type budgetAuditor struct {
	t       *testing.T
	budget  int64
	mu      sync.Mutex
	leases  map[string]int64
	sum     int64
	maxSeen int64
	revs    int
	grew    bool // a lease was created or grew in the revision being read
	resized int  // revisions in which an existing lease changed size
	cancel  context.CancelFunc
	done    chan struct{}
}

func auditBudget(t *testing.T, etcdEndpoint string, budget int64) *budgetAuditor {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcdEndpoint}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &budgetAuditor{t: t, budget: budget, leases: map[string]int64{}, cancel: cancel, done: make(chan struct{})}
	wch := cli.Watch(ctx, "/tradsys/mem/", clientv3.WithPrefix(), clientv3.WithRev(1))
	go func() {
		defer close(a.done)
		defer cli.Close()
		for wr := range wch {
			a.mu.Lock()
			rev := int64(-1)
			for _, ev := range wr.Events {
				if ev.Kv.ModRevision != rev && rev != -1 {
					a.check(rev)
				}
				rev = ev.Kv.ModRevision
				k := string(ev.Kv.Key)
				switch {
				case k == "/tradsys/mem/budget":
					var rec struct{ Bytes int64 }
					if err := json.Unmarshal(ev.Kv.Value, &rec); err != nil || rec.Bytes <= 0 {
						t.Errorf("budget record %q: %v", ev.Kv.Value, err)
					}
					a.budget = rec.Bytes
					continue
				case !strings.HasPrefix(k, "/tradsys/mem/leases/"):
					continue
				}
				if ev.Type == clientv3.EventTypeDelete {
					a.sum -= a.leases[k]
					delete(a.leases, k)
					continue
				}
				var rec struct{ Bytes int64 }
				if err := json.Unmarshal(ev.Kv.Value, &rec); err != nil {
					t.Errorf("lease record %s: %v", k, err)
				}
				old, existed := a.leases[k]
				if existed && rec.Bytes != old {
					a.resized++
				}
				a.grew = a.grew || rec.Bytes > old
				a.sum += rec.Bytes - old
				a.leases[k] = rec.Bytes
			}
			if rev != -1 {
				a.check(rev)
			}
			a.mu.Unlock()
		}
	}()
	return a
}

func (a *budgetAuditor) check(rev int64) {
	a.revs++
	if a.sum > a.maxSeen {
		a.maxSeen = a.sum
	}
	grew := a.grew
	a.grew = false
	if grew && a.sum > a.budget {
		a.t.Errorf("budget overrun at etcd revision %d: %d bytes granted of %d", rev, a.sum, a.budget)
	}
}

func (a *budgetAuditor) stop() (maxSeen int64, revs int) {
	time.Sleep(200 * time.Millisecond) // let the watch catch up
	a.cancel()
	<-a.done
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.maxSeen, a.revs
}

// churn runs clients that acquire random sizes at random priorities, hold
// briefly and release, until stop closes. wait waits for them and returns
// the grants made; granted is the count so far.
func churn(t *testing.T, c client, clients int, budget int64, stop <-chan struct{}) (wait func() int, granted func() int) {
	var wg sync.WaitGroup
	var grants atomic.Int64
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(i)))
			var sid string
			for sid == "" {
				resp, err := c.CreateSession(context.Background(), &coordinatorv1.CreateSessionRequest{Owner: fmt.Sprintf("client-%d", i)})
				if err == nil {
					sid = resp.GetSessionId()
				} else {
					time.Sleep(50 * time.Millisecond) // failover in progress
				}
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				size := 1 + rng.Int63n(budget/3)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				resp, err := acquire(ctx, c, sid, fmt.Sprintf("comp-%d", i), size, int32(rng.Intn(60)), rng.Intn(2) == 0,
					time.Duration(rng.Intn(200))*time.Millisecond)
				cancel()
				switch status.Code(err) {
				case codes.OK:
					grants.Add(1)
					time.Sleep(time.Duration(rng.Intn(5)) * time.Millisecond)
					if rng.Intn(2) == 0 {
						// Grow or shrink it; a refused growth leaves it be.
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						_, err := resize(ctx, c, sid, resp.GetLeaseId(), 1+rng.Int63n(budget/3), time.Duration(rng.Intn(20))*time.Millisecond)
						cancel()
						switch status.Code(err) {
						case codes.OK, codes.ResourceExhausted, codes.Unavailable, codes.DeadlineExceeded, codes.NotFound,
							codes.FailedPrecondition, codes.InvalidArgument: // preempted meanwhile; larger than a lowered budget
						default:
							t.Errorf("ResizeMemory: %v", err)
							return
						}
					}
					_, _ = c.ReleaseMemory(context.Background(), &coordinatorv1.ReleaseMemoryRequest{SessionId: sid, LeaseId: resp.GetLeaseId()})
				case codes.ResourceExhausted, codes.Unavailable, codes.DeadlineExceeded:
				case codes.NotFound:
					// Session expired during a failover: open another.
					if r, err := c.CreateSession(context.Background(), &coordinatorv1.CreateSessionRequest{Owner: "again"}); err == nil {
						sid = r.GetSessionId()
					}
				default:
					t.Errorf("AcquireMemory: %v", err)
					return
				}
			}
		}(i)
	}
	return func() int { wg.Wait(); return int(grants.Load()) }, func() int { return int(grants.Load()) }
}

func TestBudgetNeverExceededUnderConcurrency(t *testing.T) {
	const budget = 1000
	etcd := coordtest.Etcd(t)
	r := coordtest.Replica(t, etcd, coordtest.Config{Budget: budget, PreemptGrace: 50 * time.Millisecond})
	c := coordtest.Client(t, r.Addr())
	audit := auditBudget(t, etcd, budget)
	stop := make(chan struct{})
	wait, _ := churn(t, c, 24, budget, stop)
	// The budget is lowered under the churn and raised again: grants and
	// growths must respect whichever budget is in force.
	for _, b := range []int64{600, budget, 400, budget} {
		time.Sleep(600 * time.Millisecond)
		if _, err := c.SetBudget(ctxT(t), &coordinatorv1.SetBudgetRequest{BudgetBytes: b}); err != nil {
			t.Fatalf("SetBudget(%d): %v", b, err)
		}
	}
	time.Sleep(600 * time.Millisecond)
	close(stop)
	grants := wait()
	maxSeen, revs := audit.stop()
	t.Logf("%d grants, %d etcd revisions audited (%d resizes), peak %d of %d bytes", grants, revs, audit.resized, maxSeen, budget)
	if grants < 50 || maxSeen < budget/2 || audit.resized < 3 {
		t.Fatalf("too little contention to mean anything: %d grants, %d resizes, peak %d", grants, audit.resized, maxSeen)
	}
}

// The budget holds at every etcd revision across a leader's kill -9 under
// churn through a follower; a lease granted before the kill survives it
// unchanged, and the new leader grants with larger fencing tokens.
//
// Robust on a loaded machine without asserting less: the churn's phases wait
// for grants to happen (before the kill, and again under the new leader)
// instead of sleeping a fixed time; the surviving session is kept alive (a
// slow failover must not expire it: that is not what is tested); setup calls
// retry while leadership settles (with a request id, so a retried grant is
// the same grant); and the last grant may wait for leases orphaned by the
// kill to go with their sessions.
func TestBudgetHeldAcrossLeaderKill(t *testing.T) {
	const budget = 1000
	etcd := coordtest.Etcd(t)
	r1 := coordtest.Replica(t, etcd, coordtest.Config{Budget: budget, ElectionTTL: 1})
	eventually(t, 30*time.Second, "a leader", func() bool { return r1.Coord.IsLeader() })
	r2 := coordtest.Replica(t, etcd, coordtest.Config{Budget: budget, ElectionTTL: 1})
	// Clients talk to a follower, which forwards to the leader.
	c1, c2 := coordtest.Client(t, r1.Addr()), coordtest.Client(t, r2.Addr())
	settled := func(call func(context.Context) error) {
		t.Helper()
		var err error
		eventually(t, 30*time.Second, "the call to pass while leadership settles", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = call(ctx)
			return status.Code(err) != codes.Unavailable
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var sid string
	settled(func(ctx context.Context) error {
		resp, err := c2.CreateSession(ctx, &coordinatorv1.CreateSessionRequest{Owner: "survivor", Ttl: durationpb.New(10 * time.Second)})
		sid = resp.GetSessionId()
		return err
	})
	var kept *coordinatorv1.AcquireMemoryResponse
	settled(func(ctx context.Context) (err error) {
		kept, err = c2.AcquireMemory(ctx, &coordinatorv1.AcquireMemoryRequest{SessionId: sid, Component: "survivor", Bytes: 100,
			Priority: prio(10), RequestId: "survivor-1"})
		return err
	})
	alive := make(chan struct{})
	keepAlive := keepSessionAlive(t, []client{c1, c2}, sid, alive)

	leader, follower, c := r1, r2, c2
	if !r1.Coord.IsLeader() {
		leader, follower, c = r2, r1, c1
	}
	audit := auditBudget(t, etcd, budget)
	stop := make(chan struct{})
	wait, granted := churn(t, c, 16, budget, stop)
	eventually(t, 60*time.Second, "grants under churn before the kill", func() bool { return granted() >= 30 })
	leader.Kill()
	eventually(t, 30*time.Second, "the follower to take over", follower.Coord.IsLeader)
	atTakeover := granted()
	eventually(t, 60*time.Second, "grants under churn by the new leader", func() bool { return granted() >= atTakeover+30 })
	close(stop)
	grants := wait()
	maxSeen, revs := audit.stop()
	t.Logf("%d grants (%d before the takeover), %d revisions audited (%d resizes), peak %d", grants, atTakeover, revs, audit.resized, maxSeen)
	if audit.resized == 0 {
		t.Fatal("no resize audited")
	}
	leases, err := c.ListLeases(ctxT(t), &coordinatorv1.ListLeasesRequest{SessionId: sid})
	if err != nil {
		t.Fatal(err)
	}
	if len(leases.GetLeases()) != 1 || leases.GetLeases()[0].GetLeaseId() != kept.GetLeaseId() ||
		leases.GetLeases()[0].GetFencingToken() != kept.GetFencingToken() {
		t.Fatalf("lease lost or changed across failover: %v", leases.GetLeases())
	}
	// The new leader still grants, with larger fencing tokens. Leases the
	// kill orphaned (granted, answer lost) go with their sessions' TTL.
	after, err := acquire(ctxT(t), c, sid, "after", 10, 10, false, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if after.GetFencingToken() <= kept.GetFencingToken() {
		t.Fatalf("token after failover %d not above %d", after.GetFencingToken(), kept.GetFencingToken())
	}
	close(alive)
	if err := <-keepAlive; err != nil {
		t.Fatalf("the surviving session was not renewed across the failover: %v", err)
	}
}

// keepSessionAlive renews sid every 300 ms through whichever of cs answers
// until done closes, and then reports the first time no renewal succeeded
// for its whole TTL (nil if none).
func keepSessionAlive(t *testing.T, cs []client, sid string, done <-chan struct{}) <-chan error {
	out := make(chan error, 1)
	go func() {
		var lost error
		last := time.Now()
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-done:
				out <- lost
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := cs[i%len(cs)].KeepAlive(ctx, &coordinatorv1.KeepAliveRequest{SessionId: sid})
			cancel()
			if err == nil {
				last = time.Now()
			} else if lost == nil && (status.Code(err) == codes.NotFound || time.Since(last) > 10*time.Second) {
				lost = fmt.Errorf("after %s without a renewal: %w", time.Since(last).Round(time.Millisecond), err)
			}
		}
	}()
	return out
}

func TestWaitersServedByPriorityThenArrival(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{Budget: 100})
	ctx := ctxT(t)
	holder := session(t, c, "holder", 10*time.Second)
	full, err := acquire(ctx, c, holder, "all", 100, 50, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	order := make(chan string, 3)
	var wg sync.WaitGroup
	for _, w := range []struct {
		name string
		prio int32
	}{{"late-less-important", 40}, {"important", 10}, {"same-priority-later", 40}} {
		sid := session(t, c, w.name, 10*time.Second)
		wg.Add(1)
		go func(name string, p int32) {
			defer wg.Done()
			resp, err := acquire(ctx, c, sid, name, 100, p, false, 20*time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			order <- name
			_, _ = c.ReleaseMemory(ctx, &coordinatorv1.ReleaseMemoryRequest{SessionId: sid, LeaseId: resp.GetLeaseId()})
		}(w.name, w.prio)
		n := len(order) // wait until this one is queued
		_ = n
		eventually(t, 5*time.Second, "queued", func() bool { return status_(t, c).GetMemoryWaiters() >= 1 })
		time.Sleep(50 * time.Millisecond)
	}
	eventually(t, 5*time.Second, "3 queued", func() bool { return status_(t, c).GetMemoryWaiters() == 3 })
	if _, err := c.ReleaseMemory(ctx, &coordinatorv1.ReleaseMemoryRequest{SessionId: holder, LeaseId: full.GetLeaseId()}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(order)
	var got []string
	for n := range order {
		got = append(got, n)
	}
	if strings.Join(got, ",") != "important,late-less-important,same-priority-later" {
		t.Fatalf("served %v", got)
	}
}

func TestNotGrantedInTimeNamesSizes(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{Budget: 1000})
	ctx := ctxT(t)
	s := session(t, c, "s", 10*time.Second)
	if _, err := acquire(ctx, c, s, "big", 700, 50, false, 0); err != nil {
		t.Fatal(err)
	}
	_, err := acquire(ctx, c, s, "more", 400, 50, false, 200*time.Millisecond)
	wantCode(t, err, codes.ResourceExhausted, "requested 400", "free 300", "budget 1000")
	_, err = acquire(ctx, c, s, "huge", 1001, 50, false, time.Second)
	wantCode(t, err, codes.InvalidArgument, "bytes", "budget")
}

func TestPreemptionNoticeGraceAndForcedRelease(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{Budget: 1000, PreemptGrace: 300 * time.Millisecond})
	ctx := ctxT(t)
	low := session(t, c, "strategy", 10*time.Second)
	watch, err := c.Watch(ctx, &coordinatorv1.WatchRequest{SessionId: low, Types: []coordinatorv1.EventType{
		coordinatorv1.EventType_EVENT_TYPE_MEMORY_PREEMPTING, coordinatorv1.EventType_EVENT_TYPE_MEMORY_FORCE_RELEASED}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the watch is registered
	lowLease, err := acquire(ctx, c, low, "strategy/mm", 800, 60, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Not preemptible, or not strictly lower priority: never taken.
	other := session(t, c, "other", 10*time.Second)
	if _, err := acquire(ctx, c, other, "pinned", 150, 60, false, 0); err != nil {
		t.Fatal(err)
	}
	high := session(t, c, "gateway", 10*time.Second)
	start := time.Now()
	got, err := acquire(ctx, c, high, "gateway", 500, 10, false, 5*time.Second)
	if err != nil {
		t.Fatalf("high-priority request: %v", err)
	}
	waited := time.Since(start)
	notice, err := watch.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if notice.GetEvent().GetType() != coordinatorv1.EventType_EVENT_TYPE_MEMORY_PREEMPTING || notice.GetEvent().GetLeaseId() != lowLease.GetLeaseId() {
		t.Fatalf("first event %v, want a preemption notice for %s", notice.GetEvent(), lowLease.GetLeaseId())
	}
	forced, err := watch.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if forced.GetEvent().GetType() != coordinatorv1.EventType_EVENT_TYPE_MEMORY_FORCE_RELEASED {
		t.Fatalf("second event %v, want the forced release", forced.GetEvent())
	}
	if waited < 250*time.Millisecond {
		t.Fatalf("granted after %s: the holder did not get its grace period", waited)
	}
	if got.GetBytes() != 500 {
		t.Fatalf("granted %d bytes", got.GetBytes())
	}
	_, err = c.ReleaseMemory(ctx, &coordinatorv1.ReleaseMemoryRequest{SessionId: low, LeaseId: lowLease.GetLeaseId()})
	wantCode(t, err, codes.NotFound)
}

func TestPreemptedHolderReleasingEarlyIsNotForced(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{Budget: 1000, PreemptGrace: 10 * time.Second})
	ctx := ctxT(t)
	low := session(t, c, "risk", 10*time.Second)
	watch, err := c.Watch(ctx, &coordinatorv1.WatchRequest{SessionId: low})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	lowLease, err := acquire(ctx, c, low, "risk/validator/limits", 900, 35, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			ev, err := watch.Recv()
			if err != nil {
				return
			}
			if ev.GetEvent().GetType() == coordinatorv1.EventType_EVENT_TYPE_MEMORY_PREEMPTING {
				_, _ = c.ReleaseMemory(ctx, &coordinatorv1.ReleaseMemoryRequest{SessionId: low, LeaseId: lowLease.GetLeaseId()})
			}
		}
	}()
	high := session(t, c, "orders", 10*time.Second)
	start := time.Now()
	if _, err := acquire(ctx, c, high, "orders", 500, 20, false, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("grant took %s: the early release was not used", d)
	}
}

func TestExpiredSessionFreesMemoryAndLocksWithinTTL(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{Budget: 1000})
	ctx := ctxT(t)
	dying := session(t, c, "dying", 2*time.Second)
	if _, err := acquire(ctx, c, dying, "cache", 1000, 50, false, 0); err != nil {
		t.Fatal(err)
	}
	mustLock(t, c, dying, "feed")
	other := session(t, c, "other", 30*time.Second)
	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if _, err := acquire(ctx, c, other, "next", 1000, 50, false, 10*time.Second); err != nil {
			t.Errorf("memory after expiry: %v", err)
		}
	}()
	go func() {
		defer wg.Done()
		if _, err := lock(ctx, c, other, "feed", 10*time.Second); err != nil {
			t.Errorf("lock after expiry: %v", err)
		}
	}()
	wg.Wait()
	// The TTL is 2s; etcd checks expiry about every 500ms.
	if d := time.Since(start); d > 3500*time.Millisecond {
		t.Fatalf("freed after %s, want within the 2s TTL (plus etcd's expiry tick)", d)
	}
	_, err := c.KeepAlive(ctx, &coordinatorv1.KeepAliveRequest{SessionId: dying})
	wantCode(t, err, codes.NotFound, dying)
}

func TestCloseSessionReleasesEverything(t *testing.T) {
	_, c := coordtest.Start(t, coordtest.Config{Budget: 1000})
	ctx := ctxT(t)
	s := session(t, c, "s", 10*time.Second)
	for i := 0; i < 3; i++ {
		if _, err := acquire(ctx, c, s, "x", 100, 50, false, 0); err != nil {
			t.Fatal(err)
		}
	}
	mustLock(t, c, s, "a")
	mustLock(t, c, s, "b")
	resp, err := c.CloseSession(ctx, &coordinatorv1.CloseSessionRequest{SessionId: s})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetReleasedLeases() != 3 || resp.GetReleasedLocks() != 2 {
		t.Fatalf("released %d leases, %d locks", resp.GetReleasedLeases(), resp.GetReleasedLocks())
	}
	st := status_(t, c)
	if st.GetUsedBytes() != 0 || st.GetLocks() != 0 || st.GetSessions() != 0 {
		t.Fatalf("after close: %v", st)
	}
}
