package faulttest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/tradsys/mesh/pkg/coordclient"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// dockerMesh is the docker-compose mesh deploy/fault-test.sh started: its
// project and the published addresses (TRADSYS_DOCKER_FAULTS_*).
type dockerMesh struct {
	project      string
	coordinators []string // coordinator1, coordinator2
	etcd         []string // etcd1..3
	matching     string
	artifacts    string // where a failing run's histories go
}

func dockerMeshFromEnv(t *testing.T) dockerMesh {
	p := os.Getenv("TRADSYS_DOCKER_FAULTS_PROJECT")
	if p == "" {
		t.Skip("the containerised fault test runs from deploy/fault-test.sh (make fault-test), which sets TRADSYS_DOCKER_FAULTS_*")
	}
	return dockerMesh{
		project:      p,
		coordinators: strings.Split(os.Getenv("TRADSYS_DOCKER_FAULTS_COORDINATORS"), ","),
		etcd:         strings.Split(os.Getenv("TRADSYS_DOCKER_FAULTS_ETCD"), ","),
		matching:     os.Getenv("TRADSYS_DOCKER_FAULTS_MATCHING"),
		artifacts:    os.Getenv("TRADSYS_DOCKER_FAULTS_ARTIFACTS"),
	}
}

// compose runs docker-compose on the mesh's project.
func (m dockerMesh) compose(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("docker-compose", append([]string{"-p", m.project}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// leaderService is the compose service of the coordinator leader
// ("coordinator1"), as its advertised address names it.
func (m dockerMesh) leaderService() string {
	l, _, _ := strings.Cut(coordtest.Leader(m.coordinators), ":")
	return l
}

// The faults of issue 14 on the whole containerised mesh (3 etcd members,
// 2 coordinators, matching), under a memory and lock load whose histories
// are checked afterwards: the coordinator leader killed, an etcd member
// killed and restarted, a service holding memory leases killed, the
// coordinator leader paused past its election TTL. Each prints its figure.
// The checks: no session of the load lost, the budget held at every etcd
// revision, the lock history linearizable (porcupine). A failing run's
// histories are written to TRADSYS_DOCKER_FAULTS_ARTIFACTS.
func TestDockerMeshFaults(t *testing.T) {
	m := dockerMeshFromEnv(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: m.etcd, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	coord := coordtest.Client(t, m.coordinators[0])
	var st *coordinatorv1.GetStatusResponse
	waitFor(t, 60*time.Second, "the coordinators' status", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st, err = coord.GetStatus(ctx, &coordinatorv1.GetStatusRequest{})
		return err == nil && st.GetLeader() != ""
	})
	start, err := cli.Get(context.Background(), "/tradsys/mem/leases/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	history := recordLeaseHistory(t, cli, start.Header.Revision+1)
	history.budget = st.GetBudgetBytes()

	// The load: memory requests of a third to a half of the budget (so
	// they contend), and lock acquire/release recorded for porcupine.
	ctx, stopLoad := context.WithCancel(context.Background())
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		lost    []string
		ops     []porcupine.Operation
		clients []*coordclient.Client
		granted int
	)
	newClient := func(owner string) *coordclient.Client {
		c, err := coordclient.Dial(coordclient.Options{Addresses: m.coordinators, Owner: owner, TTL: sessionTTL,
			OnSessionLost: func(sid string) { mu.Lock(); lost = append(lost, owner+" "+sid); mu.Unlock() }})
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		return c
	}
	for i := range 3 {
		c := newClient(fmt.Sprint("docker-mem", i))
		wg.Go(func() {
			for ctx.Err() == nil {
				cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				l, err := c.AcquireMemory(cctx, fmt.Sprint("fault/mem", i), history.budget/3+rand.Int64N(history.budget/6), 50, false, time.Second)
				cancel()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				mu.Lock()
				granted++
				mu.Unlock()
				time.Sleep(time.Duration(rand.IntN(30)) * time.Millisecond)
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
				_ = c.ReleaseMemory(rctx, l)
				cancel()
			}
		})
	}
	t0 := time.Now()
	for i := range 3 {
		c := newClient(fmt.Sprint("docker-lock", i))
		wg.Go(func() {
			record := func(in lockInput, call time.Time, out lockOutput) {
				mu.Lock()
				ops = append(ops, porcupine.Operation{ClientId: i, Input: in, Call: int64(call.Sub(t0)), Output: out, Return: int64(time.Since(t0))})
				mu.Unlock()
			}
			for ctx.Err() == nil {
				call := time.Now()
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
				tok, err := c.AcquireLock(cctx, lockName, time.Second)
				cancel()
				record(lockInput{acquire: true, client: i}, call, outcome(err, tok))
				if err != nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				time.Sleep(time.Duration(rand.IntN(10)) * time.Millisecond)
				call = time.Now()
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
				err = c.ReleaseLock(rctx, lockName)
				cancel()
				record(lockInput{client: i}, call, outcome(err, 0))
			}
		})
	}
	time.Sleep(2 * time.Second)

	// 1. The coordinator leader killed: the other replica leads within the TTL.
	old := m.leaderService()
	if old == "" {
		t.Fatal("no coordinator leader")
	}
	killed := time.Now()
	m.compose(t, "kill", old)
	waitFor(t, sessionTTL, "a new coordinator leader", func() bool { l := m.leaderService(); return l != "" && l != old })
	fmt.Printf("FIGURE coordinator leader %s killed: %s leads after %s (session TTL %s)\n", old, m.leaderService(), time.Since(killed).Round(time.Millisecond), sessionTTL)
	m.compose(t, "start", old)
	time.Sleep(2 * time.Second)

	// 2. An etcd member killed: the load goes on; restarted, it rejoins.
	before := granted
	m.compose(t, "kill", "etcd2")
	time.Sleep(3 * time.Second)
	mu.Lock()
	during := granted - before
	mu.Unlock()
	if during == 0 {
		t.Errorf("no memory grant in the 3s without etcd2")
	}
	restarted := time.Now()
	m.compose(t, "start", "etcd2")
	waitFor(t, 60*time.Second, "etcd2 to rejoin (a status through it)", func() bool {
		one, err := clientv3.New(clientv3.Config{Endpoints: m.etcd[1:2], DialTimeout: time.Second})
		if err != nil {
			return false
		}
		defer one.Close()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s, err := one.Status(sctx, m.etcd[1])
		return err == nil && s.Leader != 0 && s.RaftIndex > 0
	})
	fmt.Printf("FIGURE etcd2 killed: %d memory grants in the 3s without it; restarted, it rejoined after %s\n", during, time.Since(restarted).Round(time.Millisecond))

	// 3. A service holding memory leases killed: released within its TTL.
	conn, err := grpc.NewClient(m.matching, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitFor(t, 30*time.Second, "matching to activate on an order", func() bool {
		octx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := matchingv1.NewMatchingServiceClient(conn).SubmitOrder(octx, &matchingv1.SubmitOrderRequest{Symbol: "FAULT", OrderId: uint64(time.Now().UnixNano()),
			Account: 1, Side: matchingv1.Side_SIDE_BUY, Type: matchingv1.OrderType_ORDER_TYPE_LIMIT, Price: 100, Quantity: 1})
		return err == nil
	})
	matchingLeases := func() (ids []string) {
		lctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := coord.ListLeases(lctx, &coordinatorv1.ListLeasesRequest{})
		if err != nil {
			return []string{"(unknown: " + err.Error() + ")"}
		}
		for _, l := range resp.GetLeases() {
			if strings.HasPrefix(l.GetComponent(), "matching") {
				ids = append(ids, l.GetLeaseId())
			}
		}
		return ids
	}
	held := matchingLeases()
	if len(held) == 0 {
		t.Fatal("matching holds no memory lease after an order")
	}
	killed = time.Now()
	m.compose(t, "kill", "matching")
	const serviceTTL = 10 * time.Second // coordclient's default session TTL
	waitFor(t, serviceTTL+5*time.Second, "the killed matching's leases to be released", func() bool { return len(matchingLeases()) == 0 })
	delay := time.Since(killed)
	fmt.Printf("FIGURE matching killed holding %d memory leases: all released after %s (its session TTL %s)\n", len(held), delay.Round(time.Millisecond), serviceTTL)
	if delay > serviceTTL+time.Second {
		t.Errorf("matching's leases released after %s, beyond its session TTL %s", delay, serviceTTL)
	}
	m.compose(t, "start", "matching")

	// 4. The coordinator leader paused past its election TTL, then resumed.
	old = m.leaderService()
	paused := time.Now()
	m.compose(t, "pause", old)
	waitFor(t, sessionTTL, "a leader other than the paused one", func() bool { l := m.leaderService(); return l != "" && l != old })
	fmt.Printf("FIGURE coordinator leader %s paused: %s leads after %s\n", old, m.leaderService(), time.Since(paused).Round(time.Millisecond))
	time.Sleep(time.Duration(electionTTL)*time.Second + time.Second)
	m.compose(t, "unpause", old)
	time.Sleep(3 * time.Second)

	stopLoad()
	wg.Wait()
	for _, c := range clients {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = c.Close(cctx)
		cancel()
	}
	mu.Lock()
	for _, l := range lost {
		t.Errorf("session lost under faults (TTL %s): %s", sessionTTL, l)
	}
	mu.Unlock()

	revs, most := history.check(t)
	fmt.Printf("FIGURE budget held at each of %d lease revisions (max %d of %d bytes); %d grants\n", revs, most, history.budget, granted)
	res, info := porcupine.CheckOperationsVerbose(lockModel(), ops, 30*time.Second)
	fmt.Printf("FIGURE lock history of %d operations: %s\n", len(ops), res)
	if res == porcupine.Illegal {
		t.Errorf("lock history of %d operations is not linearizable: two holders or a token that went back", len(ops))
	}
	if t.Failed() && m.artifacts != "" {
		writeArtifacts(t, m.artifacts, ops, info, history)
	}
}

// writeArtifacts keeps a failing run's histories: the lock operations
// (JSON), porcupine's visualization, and etcd's lease events.
func writeArtifacts(t *testing.T, dir string, ops []porcupine.Operation, info porcupine.LinearizationInfo, h *leaseHistory) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Log(err)
		return
	}
	type op struct {
		Client            int
		Acquire, OK, Open bool
		Token             uint64
		CallNs, ReturnNs  int64
	}
	var out []op
	for _, o := range ops {
		in, res := o.Input.(lockInput), o.Output.(lockOutput)
		out = append(out, op{o.ClientId, in.acquire, res.ok, res.open, res.token, o.Call, o.Return})
	}
	b, _ := json.MarshalIndent(out, "", " ")
	_ = os.WriteFile(filepath.Join(dir, "lock-history.json"), b, 0o644)
	if f, err := os.Create(filepath.Join(dir, "lock-history.html")); err == nil {
		_ = porcupine.Visualize(lockModel(), info, f)
		f.Close()
	}
	h.mu.Lock()
	var evs []string
	for _, e := range h.events {
		evs = append(evs, fmt.Sprintf("%d %s %s %s", e.Kv.ModRevision, e.Type, e.Kv.Key, e.Kv.Value))
	}
	h.mu.Unlock()
	_ = os.WriteFile(filepath.Join(dir, "lease-events.txt"), []byte(strings.Join(evs, "\n")+"\n"), 0o644)
	t.Logf("histories kept in %s", dir)
}
