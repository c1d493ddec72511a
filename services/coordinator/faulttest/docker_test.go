package faulttest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/tradsys/mesh/pkg/coordclient"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// dockerMesh is the docker-compose mesh deploy/fault-test.sh started: its
// project and the published addresses (TRADSYS_DOCKER_FAULTS_*).
type dockerMesh struct {
	project      string
	coordinators []string // coordinator1, coordinator2
	etcd         []string // etcd1..3
	admin        []string // coordinator1, coordinator2 admin (/metrics)
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
		admin:        strings.Split(os.Getenv("TRADSYS_DOCKER_FAULTS_ADMIN"), ","),
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

// dockerSessionTTL is the load's session TTL: the services' own
// (coordclient's default), which a failover must stay within.
const dockerSessionTTL = 10 * time.Second

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
// coordinator leader paused past its election TTL, a lock holder paused
// until its session expired (matching refuses its stale token). Each
// prints its figure.
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
		c, err := coordclient.Dial(coordclient.Options{Addresses: m.coordinators, Owner: owner, TTL: dockerSessionTTL,
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
			memoryLoad(ctx, c, fmt.Sprint("fault/mem", i), func() int64 { return history.budget/3 + rand.Int64N(history.budget/6) },
				func(bool) { mu.Lock(); granted++; mu.Unlock() })
		})
	}
	t0 := time.Now()
	for i := range 3 {
		c := newClient(fmt.Sprint("docker-lock", i))
		wg.Go(func() {
			lockLoad(ctx, c, i, t0, func(op porcupine.Operation) { mu.Lock(); ops = append(ops, op); mu.Unlock() })
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
	waitFor(t, dockerSessionTTL, "a new coordinator leader", func() bool { l := m.leaderService(); return l != "" && l != old })
	fmt.Printf("FIGURE coordinator leader %s killed: %s leads after %s (session TTL %s)\n", old, m.leaderService(), time.Since(killed).Round(time.Millisecond), dockerSessionTTL)
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
	// Released when etcd expires the session's lease: TTL after the last
	// keep-alive, plus etcd's expiry check and the coordinator's watch; the
	// bound allows 3s for those and this poll on a loaded machine.
	waitFor(t, dockerSessionTTL+10*time.Second, "the killed matching's leases to be released", func() bool { return len(matchingLeases()) == 0 })
	delay := time.Since(killed)
	fmt.Printf("FIGURE matching killed holding %d memory leases: all released after %s (its session TTL %s)\n", len(held), delay.Round(time.Millisecond), dockerSessionTTL)
	if delay > dockerSessionTTL+3*time.Second {
		t.Errorf("matching's leases released after %s, beyond its session TTL %s (+3s)", delay, dockerSessionTTL)
	}
	m.compose(t, "start", "matching")

	// 3b. A process holding a memory lease and a lock killed (SIGKILL):
	// both released within its session TTL.
	killedTTL := 3 * time.Second
	victim := startLockHolder(t, killedTTL, "fault/killed-holder", true)
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed = time.Now()
	var memFreed, lockFreed time.Duration
	waitFor(t, killedTTL+10*time.Second, "the killed holder's lease and lock to be released", func() bool {
		lctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if memFreed == 0 {
			if resp, err := coord.ListLeases(lctx, &coordinatorv1.ListLeasesRequest{}); err == nil &&
				!slices.ContainsFunc(resp.GetLeases(), func(l *coordinatorv1.MemoryLease) bool { return l.GetComponent() == "fault/killed-holder" }) {
				memFreed = time.Since(killed)
			}
		}
		if lockFreed == 0 {
			if resp, err := coord.ListLocks(lctx, &coordinatorv1.ListLocksRequest{}); err == nil &&
				!slices.ContainsFunc(resp.GetLocks(), func(l *coordinatorv1.Lock) bool { return l.GetName() == "fault/killed-holder" }) {
				lockFreed = time.Since(killed)
			}
		}
		return memFreed > 0 && lockFreed > 0
	})
	fmt.Printf("FIGURE a process holding memory and a lock killed: memory released after %s, lock after %s (session TTL %s)\n",
		memFreed.Round(time.Millisecond), lockFreed.Round(time.Millisecond), killedTTL)
	if max(memFreed, lockFreed) > killedTTL+3*time.Second {
		t.Errorf("the killed holder's lease and lock were released after %s and %s, beyond its session TTL %s (+3s)", memFreed, lockFreed, killedTTL)
	}

	// 4. The coordinator leader paused past its election TTL, then resumed:
	// it knows its term is over (is_leader 0) and, every write being a
	// transaction on its election key, wrote nothing after it (the budget
	// and lock histories below cover the whole pause).
	old = m.leaderService()
	paused := time.Now()
	m.compose(t, "pause", old)
	waitFor(t, dockerSessionTTL, "a leader other than the paused one", func() bool { l := m.leaderService(); return l != "" && l != old })
	fmt.Printf("FIGURE coordinator leader %s paused: %s leads after %s\n", old, m.leaderService(), time.Since(paused).Round(time.Millisecond))
	time.Sleep(time.Duration(electionTTL)*time.Second + time.Second)
	m.compose(t, "unpause", old)
	oldAdmin := m.admin[0]
	if old == "coordinator2" {
		oldAdmin = m.admin[1]
	}
	waitFor(t, 10*time.Second, "the resumed "+old+" to report is_leader 0", func() bool {
		return strings.Contains(scrape(oldAdmin), "\ntradsys_coordinator_is_leader 0")
	})
	time.Sleep(2 * time.Second)

	// 5. A lock holder paused until its session expires, then resumed: its
	// fencing token is stale and matching refuses its algorithm switch.
	holderTTL := 3 * time.Second
	holder := startLockHolder(t, holderTTL, "matching/algorithms", false)
	holderPaused := time.Now()
	holder.signal(t, syscall.SIGSTOP)
	waitFor(t, holderTTL+10*time.Second, "the paused holder's lock to be released", func() bool {
		lctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := coord.ListLocks(lctx, &coordinatorv1.ListLocksRequest{})
		if err != nil {
			return false
		}
		for _, l := range resp.GetLocks() {
			if l.GetName() == "matching/algorithms" && l.GetFencingToken() == holder.token {
				return false
			}
		}
		return true
	})
	expired := time.Since(holderPaused)
	switcher := newClient("docker-switch")
	lctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	newer, err := switcher.AcquireLock(lctx, "matching/algorithms", 5*time.Second)
	cancel()
	if err != nil {
		t.Fatalf("lock after the holder's session expired: %v", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	_, err = matchingv1.NewMatchingServiceClient(conn).SetSymbolAlgorithm(sctx, &matchingv1.SetSymbolAlgorithmRequest{Symbol: "FAULT", Algorithm: "pro-rata", FencingToken: newer})
	cancel()
	if err != nil {
		t.Fatalf("switch with the current token %d: %v", newer, err)
	}
	rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_ = switcher.ReleaseLock(rctx, "matching/algorithms")
	cancel()
	holder.signal(t, syscall.SIGCONT)
	refusal := holder.switchAlgorithm(t)
	fmt.Printf("FIGURE lock holder paused: its session (TTL %s) ended %s later; resumed, its token %d (newest %d) was refused: %s\n",
		holderTTL, expired.Round(time.Millisecond), holder.token, newer, refusal)
	if !strings.Contains(refusal, "FailedPrecondition") || !strings.Contains(refusal, "STALE_FENCING_TOKEN") {
		t.Errorf("matching did not refuse the stale token %d as STALE_FENCING_TOKEN: %s", holder.token, refusal)
	}

	stopLoad()
	wg.Wait()
	for _, c := range clients {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = c.Close(cctx)
		cancel()
	}
	mu.Lock()
	for _, l := range lost {
		t.Errorf("session lost under faults (TTL %s): %s", dockerSessionTTL, l)
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

// scrape is a /metrics page ("" when it does not answer).
func scrape(addr string) string {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// lockHolder is a separate process (this test binary, running
// TestDockerLockHolderHelper) holding the lock matching/algorithms, so that
// it can be paused with SIGSTOP like a real holder.
type lockHolder struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Scanner
	token uint64
}

// startLockHolder starts a holder of lock (and of a 1 MiB memory lease
// when withMemory) with a session of ttl.
func startLockHolder(t *testing.T, ttl time.Duration, lock string, withMemory bool) *lockHolder {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDockerLockHolderHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), "TRADSYS_LOCK_HOLDER=1", "TRADSYS_LOCK_HOLDER_TTL="+ttl.String(), "TRADSYS_LOCK_HOLDER_LOCK="+lock)
	if withMemory {
		cmd.Env = append(cmd.Env, "TRADSYS_LOCK_HOLDER_MEMORY=1")
	}
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	h := &lockHolder{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	line := h.line(t, "TOKEN ")
	if h.token, err = strconv.ParseUint(line, 10, 64); err != nil {
		t.Fatalf("lock holder: %q", line)
	}
	return h
}

func (h *lockHolder) signal(t *testing.T, sig syscall.Signal) {
	if err := h.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// line is the next line of the holder's output that starts with prefix.
func (h *lockHolder) line(t *testing.T, prefix string) string {
	for h.out.Scan() {
		if rest, ok := strings.CutPrefix(h.out.Text(), prefix); ok {
			return rest
		}
	}
	t.Fatalf("lock holder ended before printing %q", prefix)
	return ""
}

// switchAlgorithm has the holder switch FAULT to fifo with its token and
// returns what matching answered ("OK" or the gRPC code, reason and message).
func (h *lockHolder) switchAlgorithm(t *testing.T) string {
	fmt.Fprintln(h.in, "switch")
	return h.line(t, "RESULT ")
}

// TestDockerLockHolderHelper is the lock holder process of
// TestDockerMeshFaults (it runs only as that test's child).
func TestDockerLockHolderHelper(t *testing.T) {
	if os.Getenv("TRADSYS_LOCK_HOLDER") != "1" {
		t.Skip("the lock holder child of TestDockerMeshFaults")
	}
	m := dockerMeshFromEnv(t)
	ttl, err := time.ParseDuration(os.Getenv("TRADSYS_LOCK_HOLDER_TTL"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := coordclient.Dial(coordclient.Options{Addresses: m.coordinators, Owner: "docker-paused-holder", TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	lock := os.Getenv("TRADSYS_LOCK_HOLDER_LOCK")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if os.Getenv("TRADSYS_LOCK_HOLDER_MEMORY") != "" {
		if _, err := c.AcquireMemory(ctx, "fault/killed-holder", 1<<20, 50, false, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := c.AcquireLock(ctx, lock, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("TOKEN %d\n", tok)
	bufio.NewScanner(os.Stdin).Scan() // paused and resumed meanwhile
	conn, err := grpc.NewClient(m.matching, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = matchingv1.NewMatchingServiceClient(conn).SetSymbolAlgorithm(ctx, &matchingv1.SetSymbolAlgorithmRequest{Symbol: "FAULT", Algorithm: "fifo", FencingToken: tok})
	result := "OK"
	if err != nil {
		st := status.Convert(err)
		reason := ""
		for _, d := range st.Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok {
				reason = info.GetReason()
			}
		}
		result = fmt.Sprintf("%s %s %s", st.Code(), reason, st.Message())
	}
	fmt.Printf("RESULT %s\n", result)
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
