package faulttest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/tradsys/mesh/pkg/coordclient"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// faultDuration is how long the load runs under faults: 20s by default (CI),
// TRADSYS_FAULT_DURATION (a Go duration) for longer runs.
func faultDuration(t *testing.T) time.Duration {
	if v := os.Getenv("TRADSYS_FAULT_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("TRADSYS_FAULT_DURATION=%q: %v", v, err)
		}
		return d
	}
	if testing.Short() {
		return 8 * time.Second
	}
	return 20 * time.Second
}

const (
	budget      = 1000
	electionTTL = 2
	sessionTTL  = 6 * time.Second // above the election TTL: must survive every fault
	lockName    = "fault/L"
)

// Issue 9, "Done when": a 3-member etcd and two coordinator replicas as
// real processes; under load, every 2s one fault: kill -9 of the
// coordinator leader, kill -9 of etcd's raft leader, SIGSTOP of the
// coordinator leader (longer than the election TTL), SIGSTOP of etcd's raft
// leader; each undone a moment later. The client histories and etcd's own
// history are then checked: the budget is never exceeded at any etcd
// revision, the lock history is linearizable (porcupine), no bytes are left
// leased after the load, and no session (TTL above the election TTL) was lost.
func TestFaultsUnderLoadKeepEveryPromise(t *testing.T) {
	dur := faultDuration(t)
	etcd := coordtest.StartEtcdCluster(t, 3)
	cli := etcd.Client(t)
	start, err := cli.Get(context.Background(), "/tradsys/mem/leases/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	flags := []string{"--election-ttl", strconv.Itoa(electionTTL), "--memory-budget", strconv.Itoa(budget), "--preempt-grace", "1s",
		"--compact-retain", "-1"} // the history is replayed from the start
	coords := []*coordtest.CoordinatorProc{
		coordtest.StartCoordinatorProc(t, etcd.Endpoints(), flags...),
		coordtest.StartCoordinatorProc(t, etcd.Endpoints(), flags...),
	}
	addrs := []string{coords[0].Addr, coords[1].Addr}
	waitFor(t, 60*time.Second, "a coordinator leader", func() bool { return coordtest.Leader(addrs) != "" })

	// etcd's history of the memory leases, from before the load.
	history := recordLeaseHistory(t, cli, start.Header.Revision+1)

	ctx, stopLoad := context.WithCancel(context.Background())
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		lost     []string
		ops      []porcupine.Operation
		clients  []*coordclient.Client
		granted  int
		released int
	)
	// Half the memory clients and one lock client send their requests on
	// a Session stream (issue 15): the same promises hold for them.
	newClient := func(owner string, stream bool) *coordclient.Client {
		c, err := coordclient.Dial(coordclient.Options{Addresses: addrs, Owner: owner, TTL: sessionTTL, SessionStream: stream,
			OnSessionLost: func(sid string) {
				mu.Lock()
				lost = append(lost, owner+" "+sid)
				mu.Unlock()
			}})
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		return c
	}
	for i := range 4 { // memory load
		c := newClient(fmt.Sprint("mem", i), i%2 == 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			memoryLoad(ctx, c, fmt.Sprint("fault/mem", i), func() int64 { return int64(100 + rand.IntN(300)) },
				func(releasedToo bool) {
					mu.Lock()
					granted++
					if releasedToo {
						released++
					}
					mu.Unlock()
				})
		}()
	}
	t0 := time.Now()
	for i := range 3 { // lock load, recorded for porcupine
		c := newClient(fmt.Sprint("lock", i), i == 2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			lockLoad(ctx, c, i, t0, func(op porcupine.Operation) { mu.Lock(); ops = append(ops, op); mu.Unlock() })
		}()
	}

	// The faults.
	faults := 0
	deadline := time.Now().Add(dur)
	for k := 0; time.Now().Before(deadline); k++ {
		time.Sleep(2 * time.Second)
		switch k % 4 {
		case 0: // kill -9 the coordinator leader, restart it on its address
			if p := leaderProc(coords, addrs); p != nil {
				p.Kill()
				time.Sleep(500 * time.Millisecond)
				p.Restart(t)
				faults++
			}
		case 1: // kill -9 etcd's raft leader, restart it
			if m := etcd.Leader(cli); m != nil {
				m.Kill()
				time.Sleep(time.Second)
				m.Restart(t)
				faults++
			}
		case 2: // SIGSTOP the coordinator leader past the election TTL
			if p := leaderProc(coords, addrs); p != nil {
				p.Pause()
				time.Sleep(electionTTL*time.Second + time.Second)
				p.Resume()
				faults++
			}
		case 3: // SIGSTOP etcd's raft leader
			if m := etcd.Leader(cli); m != nil {
				m.Pause()
				time.Sleep(2 * time.Second)
				m.Resume()
				faults++
			}
		}
	}
	stopLoad()
	wg.Wait()
	t.Logf("%s under %d faults: %d memory grants (%d released), %d lock operations", dur, faults, granted, released, len(ops))

	// No bytes left leased: every client released what it was granted, and
	// what a client was not told about was reconciled.
	var leftover []*coordinatorv1.MemoryLease
	waitFor(t, 30*time.Second, "the lease list", func() bool {
		c := coordtest.Client(t, addrs[0])
		lctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := c.ListLeases(lctx, &coordinatorv1.ListLeasesRequest{})
		leftover = resp.GetLeases()
		return err == nil
	})
	for _, l := range leftover {
		t.Errorf("orphan lease after the load: %s, %d bytes of %q (session %s)", l.GetLeaseId(), l.GetBytes(), l.GetComponent(), l.GetSessionId())
	}
	mu.Lock()
	for _, l := range lost {
		t.Errorf("session lost under faults (TTL %s, election TTL %ds): %s", sessionTTL, electionTTL, l)
	}
	mu.Unlock()
	for _, c := range clients {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = c.Close(cctx)
		cancel()
	}

	// The budget at every etcd revision.
	revs, max := history.check(t)
	t.Logf("budget held at each of %d lease revisions (max %d of %d bytes)", revs, max, budget)
	if revs == 0 && granted > 0 {
		t.Fatal("etcd's lease history is empty although grants were made")
	}

	// The lock history.
	res, info := porcupine.CheckOperationsVerbose(lockModel(), ops, 30*time.Second)
	if res == porcupine.Illegal {
		if f, err := os.CreateTemp("", "tradsys-lock-history-*.html"); err == nil {
			_ = porcupine.Visualize(lockModel(), info, f)
			f.Close()
			t.Logf("porcupine visualization: %s", f.Name())
		}
		t.Fatalf("lock history of %d operations is not linearizable", len(ops))
	}
	t.Logf("lock history of %d operations: %s", len(ops), res)
}

// memoryLoad acquires and releases memory leases of size() bytes until ctx
// ends; counted is told of each grant (and whether its release succeeded).
func memoryLoad(ctx context.Context, c *coordclient.Client, component string, size func() int64, counted func(releasedToo bool)) {
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		l, err := c.AcquireMemory(cctx, component, size(), 50, false, time.Second)
		cancel()
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		time.Sleep(time.Duration(rand.IntN(30)) * time.Millisecond)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		err = c.ReleaseMemory(rctx, l)
		cancel()
		counted(err == nil)
	}
}

// lockLoad acquires and releases lockName as client until ctx ends,
// recording each call as a porcupine operation (times from t0).
func lockLoad(ctx context.Context, c *coordclient.Client, client int, t0 time.Time, record func(porcupine.Operation)) {
	op := func(in lockInput, call time.Time, out lockOutput) {
		record(porcupine.Operation{ClientId: client, Input: in, Call: int64(call.Sub(t0)), Output: out, Return: int64(time.Since(t0))})
	}
	for ctx.Err() == nil {
		call := time.Now()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
		tok, err := c.AcquireLock(cctx, lockName, time.Second)
		cancel()
		op(lockInput{acquire: true, client: client}, call, outcome(err, tok))
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		time.Sleep(time.Duration(rand.IntN(10)) * time.Millisecond)
		call = time.Now()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		err = c.ReleaseLock(rctx, lockName)
		cancel()
		op(lockInput{client: client}, call, outcome(err, 0))
	}
}

func leaderProc(coords []*coordtest.CoordinatorProc, addrs []string) *coordtest.CoordinatorProc {
	l := coordtest.Leader(addrs)
	for _, p := range coords {
		if p.Addr == l {
			return p
		}
	}
	return nil
}

// leaseHistory is every change etcd made to the memory lease keys.
type leaseHistory struct {
	budget int64 // what check holds the sum to (the coordinators' --memory-budget)
	mu     sync.Mutex
	events []*clientv3.Event
	cancel context.CancelFunc
	done   chan struct{}
}

func recordLeaseHistory(t *testing.T, cli *clientv3.Client, rev int64) *leaseHistory {
	ctx, cancel := context.WithCancel(context.Background())
	h := &leaseHistory{budget: budget, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		next := rev
		for ctx.Err() == nil {
			for wr := range cli.Watch(clientv3.WithRequireLeader(ctx), "/tradsys/mem/leases/", clientv3.WithPrefix(), clientv3.WithRev(next), clientv3.WithPrevKV()) {
				if wr.Err() != nil {
					break
				}
				h.mu.Lock()
				h.events = append(h.events, wr.Events...)
				h.mu.Unlock()
				if n := len(wr.Events); n > 0 {
					next = wr.Events[n-1].Kv.ModRevision + 1
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { cancel(); <-h.done })
	return h
}

// check replays the history revision by revision and fails the test if
// the granted bytes ever exceed the budget; it returns how many revisions
// changed the leases and the largest sum seen.
func (h *leaseHistory) check(t *testing.T) (revs int, most int64) {
	time.Sleep(500 * time.Millisecond) // let the watch catch up
	h.cancel()
	<-h.done
	h.mu.Lock()
	defer h.mu.Unlock()
	sort.SliceStable(h.events, func(i, j int) bool { return h.events[i].Kv.ModRevision < h.events[j].Kv.ModRevision })
	held := map[string]int64{}
	var sum int64
	for i := 0; i < len(h.events); {
		rev := h.events[i].Kv.ModRevision
		for ; i < len(h.events) && h.events[i].Kv.ModRevision == rev; i++ {
			ev := h.events[i]
			k := string(ev.Kv.Key)
			sum -= held[k]
			delete(held, k)
			if ev.Type == mvccpb.PUT {
				var r struct{ Bytes int64 }
				if err := json.Unmarshal(ev.Kv.Value, &r); err != nil {
					t.Fatalf("lease record at revision %d: %v", rev, err)
				}
				held[k] = r.Bytes
				sum += r.Bytes
			}
		}
		revs++
		most = max(most, sum)
		if sum > h.budget {
			t.Errorf("budget exceeded at etcd revision %d: %d of %d bytes granted", rev, sum, h.budget)
		}
	}
	return revs, most
}

// The lock model: who holds the lock and the last fencing token granted.
type lockInput struct {
	acquire bool
	client  int
}

type lockOutput struct {
	ok, open bool // open: the outcome is not known (the call ended undecided)
	token    uint64
}

type lockState struct {
	holder int // -1: free
	token  uint64
}

func outcome(err error, tok uint64) lockOutput {
	switch {
	case err == nil:
		return lockOutput{ok: true, token: tok}
	case status.Code(err) == codes.Unavailable || status.Code(err) == codes.DeadlineExceeded && !strings.Contains(err.Error(), "not acquired within"),
		status.Code(err) == codes.Canceled:
		return lockOutput{open: true}
	}
	return lockOutput{}
}

func lockModel() porcupine.Model {
	return (&porcupine.NondeterministicModel{
		Init: func() []interface{} { return []interface{}{lockState{holder: -1}} },
		Step: func(s, in, out interface{}) []interface{} {
			st, i, o := s.(lockState), in.(lockInput), out.(lockOutput)
			if i.acquire {
				switch {
				case o.ok: // granted: free before, or already ours (idempotent), with a token that only grows
					if (st.holder == -1 && o.token > st.token) || (st.holder == i.client && o.token >= st.token) {
						return []interface{}{lockState{holder: i.client, token: o.token}}
					}
					return nil
				case o.open: // maybe nothing, maybe granted (and maybe released again by the client's reconciliation)
					if st.holder == -1 {
						return []interface{}{st, lockState{holder: i.client, token: st.token}}
					}
					return []interface{}{st}
				default: // refused (timeout, deadlock): nothing changed
					return []interface{}{st}
				}
			}
			switch {
			case o.ok: // released (now or by an earlier attempt of this call)
				if st.holder == i.client {
					return []interface{}{lockState{holder: -1, token: st.token}}
				}
				return nil
			case o.open:
				if st.holder == i.client {
					return []interface{}{st, lockState{holder: -1, token: st.token}}
				}
				return []interface{}{st}
			default: // "not held": true only if it was not ours
				if st.holder != i.client {
					return []interface{}{st}
				}
				return nil
			}
		},
		DescribeOperation: func(in, out interface{}) string {
			i, o := in.(lockInput), out.(lockOutput)
			verb := "release"
			if i.acquire {
				verb = "acquire"
			}
			return fmt.Sprintf("%s(c%d) -> ok=%v open=%v token=%d", verb, i.client, o.ok, o.open, o.token)
		},
	}).ToModel()
}
