package lazy_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/proctest"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	lifecyclev1 "github.com/tradsys/mesh/proto/tradsys/lifecycle/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

var testsvcBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lazytest")
	if err != nil {
		panic(err)
	}
	if testsvcBin, err = proctest.Build(dir, "lazytestsvc", "./lazytestsvc"); err != nil {
		panic("build lazytestsvc: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running lazytestsvc process.
type proc struct{ *proctest.Proc }

func startService(t *testing.T, coordinator string, args ...string) *proc {
	t.Helper()
	return &proc{proctest.Start(t, testsvcBin, coordinator, args...)}
}

func (p *proc) call(ctx context.Context, workMillis int32) (*testpb.SimpleResponse, error) {
	return testpb.NewTestServiceClient(p.Conn).UnaryCall(ctx, &testpb.SimpleRequest{ResponseSize: workMillis})
}

func (p *proc) state(t *testing.T, component string) *lifecyclev1.ComponentStatus {
	t.Helper()
	resp, err := lifecyclev1.NewLifecycleServiceClient(p.Conn).GetState(context.Background(), &lifecyclev1.GetStateRequest{Component: component})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetComponents()[0]
}

func (p *proc) metric(t *testing.T, name string) string {
	resp, err := http.Get("http://" + p.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), name) {
			lines = append(lines, sc.Text())
		}
	}
	return strings.Join(lines, "\n")
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	proctest.Eventually(t, timeout, what, cond)
}

func leases(t *testing.T, c coordinatorv1.CoordinatorServiceClient) []*coordinatorv1.MemoryLease {
	t.Helper()
	resp, err := c.ListLeases(context.Background(), &coordinatorv1.ListLeasesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetLeases()
}

const dormant, active = coordinatorv1.ComponentState_COMPONENT_STATE_DORMANT, coordinatorv1.ComponentState_COMPONENT_STATE_ACTIVE

func TestOneActivationUnderConcurrentFirstCalls(t *testing.T) {
	r, c := coordtest.Start(t, coordtest.Config{})
	p := startService(t, r.Addr(), "--component", "lazytest", "--init-delay", "300ms", "--memory", "10MiB")
	// Cheap calls and health do not activate anything.
	if _, err := testpb.NewTestServiceClient(p.Conn).EmptyCall(context.Background(), &testpb.Empty{}); err != nil {
		t.Fatal(err)
	}
	if st := p.state(t, "lazytest"); st.GetState() != dormant {
		t.Fatalf("after a cheap call: %v", st)
	}
	if len(leases(t, c)) != 0 {
		t.Fatal("a dormant service holds a lease")
	}
	const callers = 100
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	scopes := make(chan string, callers)
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := p.call(context.Background(), 0)
			if err != nil {
				errs <- err
				return
			}
			scopes <- resp.GetOauthScope()
		}()
	}
	wg.Wait()
	close(errs)
	close(scopes)
	for err := range errs {
		t.Fatalf("first call failed: %v", err)
	}
	for s := range scopes {
		if !strings.HasPrefix(s, "inits=1 ") {
			t.Fatalf("a call saw %q: want exactly one Init", s)
		}
	}
	if m := p.metric(t, `tradsys_lazy_activations_total{component="lazytest",outcome="ok"}`); !strings.HasSuffix(m, " 1") {
		t.Fatalf("activations metric %q, want 1", m)
	}
	ls := leases(t, c)
	if len(ls) != 1 || ls[0].GetComponent() != "lazytest" || ls[0].GetBytes() != 10<<20 {
		t.Fatalf("leases %v", ls)
	}
	if st := p.state(t, "lazytest"); st.GetState() != active || st.GetLeaseId() != ls[0].GetLeaseId() {
		t.Fatalf("state %v", st)
	}
	// The registry shows it too.
	eventually(t, 5*time.Second, "registry ACTIVE", func() bool {
		comps, err := c.ListComponents(context.Background(), &coordinatorv1.ListComponentsRequest{Name: "lazytest"})
		return err == nil && comps.GetComponents()[0].GetState() == active
	})
	// Health per component.
	h, err := healthpb.NewHealthClient(p.Conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: "lazytest"})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("component health %v %v", h, err)
	}
}

func TestInitTimeoutIsUnavailableWithCauseAndReleasesLease(t *testing.T) {
	r, c := coordtest.Start(t, coordtest.Config{})
	p := startService(t, r.Addr(), "--component", "slow", "--init-delay", "2s", "--init-timeout", "300ms")
	_, err := p.call(context.Background(), 0)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "slow") || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("want UNAVAILABLE naming the component and the timeout, got %v", err)
	}
	eventually(t, 5*time.Second, "lease released", func() bool { return len(leases(t, c)) == 0 })
	st := p.state(t, "slow")
	if st.GetState() != coordinatorv1.ComponentState_COMPONENT_STATE_FAILED || !strings.Contains(st.GetCause(), "init") {
		t.Fatalf("state %v", st)
	}
}

func TestInitFailureAndMemoryNotGrantedNameTheCause(t *testing.T) {
	r, c := coordtest.Start(t, coordtest.Config{Budget: 50 << 20})
	failing := startService(t, r.Addr(), "--component", "broken", "--fail-init")
	_, err := failing.call(context.Background(), 0)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "simulated init failure") {
		t.Fatalf("got %v", err)
	}
	big := startService(t, r.Addr(), "--component", "big", "--memory", "60MiB", "--init-timeout", "300ms")
	_, err = big.call(context.Background(), 0)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "memory lease not granted") || !strings.Contains(err.Error(), "budget") {
		t.Fatalf("got %v", err)
	}
	if n := len(leases(t, c)); n != 0 {
		t.Fatalf("%d leases left", n)
	}
}

func TestIdleDeactivationReleasesLease(t *testing.T) {
	r, c := coordtest.Start(t, coordtest.Config{})
	p := startService(t, r.Addr(), "--component", "idler", "--idle-timeout", "400ms")
	if _, err := p.call(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if len(leases(t, c)) != 1 {
		t.Fatal("no lease while active")
	}
	eventually(t, 5*time.Second, "idle deactivation", func() bool { return p.state(t, "idler").GetState() == dormant })
	eventually(t, 5*time.Second, "lease released", func() bool { return len(leases(t, c)) == 0 })
	if m := p.metric(t, `tradsys_lazy_deactivations_total{component="idler",reason="idle"}`); !strings.HasSuffix(m, " 1") {
		t.Fatalf("deactivation metric %q", m)
	}
	// The next call activates it again.
	resp, err := p.call(context.Background(), 0)
	if err != nil || !strings.HasPrefix(resp.GetOauthScope(), "inits=2 shutdowns=1") {
		t.Fatalf("re-activation: %v %v", resp, err)
	}
}

func TestPreemptionDrainsWithoutFailingInFlightCalls(t *testing.T) {
	r, c := coordtest.Start(t, coordtest.Config{Budget: 100 << 20, PreemptGrace: 5 * time.Second})
	p := startService(t, r.Addr(), "--component", "strategy/algo/mm", "--memory", "80MiB", "--priority", "30")
	if _, err := p.call(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	// Calls in flight when the notice comes: each works 800ms.
	var wg sync.WaitGroup
	inflight := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); _, err := p.call(context.Background(), 800); inflight <- err }()
	}
	eventually(t, 5*time.Second, "calls in flight", func() bool { return p.state(t, "strategy/algo/mm").GetInFlight() == 8 })
	sess, err := c.CreateSession(context.Background(), &coordinatorv1.CreateSessionRequest{Owner: "gateway"})
	if err != nil {
		t.Fatal(err)
	}
	prio := int32(10)
	start := time.Now()
	got, err := c.AcquireMemory(context.Background(), &coordinatorv1.AcquireMemoryRequest{SessionId: sess.GetSessionId(),
		Component: "gateway", Bytes: 50 << 20, Priority: &prio, WaitTimeout: durationpb.New(10 * time.Second)})
	if err != nil {
		t.Fatalf("high-priority request: %v", err)
	}
	wg.Wait()
	close(inflight)
	for err := range inflight {
		if err != nil {
			t.Fatalf("an in-flight call failed during preemption: %v", err)
		}
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("granted after %s: the holder did not release on its own before the grace ran out", d)
	}
	if got.GetBytes() != 50<<20 {
		t.Fatal(got)
	}
	eventually(t, 5*time.Second, "preempted component dormant", func() bool { return p.state(t, "strategy/algo/mm").GetState() == dormant })
	if m := p.metric(t, `tradsys_lazy_deactivations_total{component="strategy/algo/mm",reason="preempted"}`); !strings.HasSuffix(m, " 1") {
		t.Fatalf("metric %q", m)
	}
}

func TestDependenciesActivateFirst(t *testing.T) {
	r, c := coordtest.Start(t, coordtest.Config{})
	dep := startService(t, r.Addr(), "--component", "risk", "--init-delay", "200ms")
	// The dependent must wait until the dependency is registered.
	eventually(t, 5*time.Second, "risk registered", func() bool {
		_, err := c.ListComponents(context.Background(), &coordinatorv1.ListComponentsRequest{Name: "risk"})
		return err == nil
	})
	top := startService(t, r.Addr(), "--component", "orders", "--deps", "risk", "--init-delay", "10ms")
	resp, err := top.call(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if dep.state(t, "risk").GetState() != active {
		t.Fatal("dependency not active")
	}
	depResp, err := dep.call(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	depSince, topSince := activeSince(t, depResp.GetOauthScope()), activeSince(t, resp.GetOauthScope())
	if !(depSince > 0 && depSince < topSince) {
		t.Fatalf("dependency active at %d, dependent at %d: dependency must be first", depSince, topSince)
	}
}

func activeSince(t *testing.T, scope string) int64 {
	var inits, shutdowns, since int64
	if _, err := fmt.Sscanf(scope, "inits=%d shutdowns=%d active_since=%d", &inits, &shutdowns, &since); err != nil {
		t.Fatalf("scope %q: %v", scope, err)
	}
	return since
}

func TestCoordinatorRestartWhileActive(t *testing.T) {
	etcd := coordtest.Etcd(t)
	r1 := coordtest.Replica(t, etcd, coordtest.Config{})
	addr := r1.Addr()
	p := startService(t, addr, "--component", "books", "--session-ttl", "8s")
	if _, err := p.call(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	r1.Kill() // a crash: no resignation, leadership passes when its election lease expires
	// Coordinator down: the active component keeps serving.
	for i := 0; i < 5; i++ {
		if _, err := p.call(context.Background(), 0); err != nil {
			t.Fatalf("active component failed while the coordinator was down: %v", err)
		}
	}
	r2 := coordtest.Replica(t, etcd, coordtest.Config{Listen: addr})
	c := coordtest.Client(t, r2.Addr())
	// The session lived in etcd: same lease, still active, no re-activation.
	ls := leases(t, c)
	if len(ls) != 1 || ls[0].GetLeaseId() != p.state(t, "books").GetLeaseId() {
		t.Fatalf("leases after restart %v, component %v", ls, p.state(t, "books"))
	}
	time.Sleep(3 * time.Second) // keep-alives resumed on the new replica
	resp, err := p.call(context.Background(), 0)
	if err != nil || !strings.HasPrefix(resp.GetOauthScope(), "inits=1 ") {
		t.Fatalf("after restart: %v %v", resp, err)
	}
}

func TestSessionLostDeactivates(t *testing.T) {
	etcd := coordtest.Etcd(t)
	r1 := coordtest.Replica(t, etcd, coordtest.Config{})
	addr := r1.Addr()
	p := startService(t, addr, "--component", "feed")
	if _, err := p.call(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	r1.Stop()
	// No keep-alive can succeed for longer than the TTL: the session is gone
	// in etcd, so the component must give up its memory.
	eventually(t, 10*time.Second, "deactivated after session loss", func() bool { return p.state(t, "feed").GetState() == dormant })
	// A dormant component with no coordinator says so.
	_, err := p.call(context.Background(), 0)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "coordinator") {
		t.Fatalf("dormant call without coordinator: %v", err)
	}
}

func TestMutualTLSAcrossTheMesh(t *testing.T) {
	certs := proctest.PKI(t, t.TempDir(), "coordinator", "risk", "orders")
	tlsArgs := func(c proctest.Cert) []string {
		return []string{"--tls-cert", c.Cert, "--tls-key", c.Key, "--tls-ca", c.CA}
	}
	cc := certs["coordinator"]
	r := coordtest.Replica(t, coordtest.Etcd(t), coordtest.Config{TLSCert: cc.Cert, TLSKey: cc.Key, TLSCA: cc.CA})
	dep := startService(t, r.Addr(), append([]string{"--component", "risk"}, tlsArgs(certs["risk"])...)...)
	top := startService(t, r.Addr(), append([]string{"--component", "orders", "--deps", "risk"}, tlsArgs(certs["orders"])...)...)
	// orders -> coordinator (mTLS) -> risk's LifecycleService (mTLS) -> risk
	// -> coordinator (mTLS): every hop of an activation, authenticated.
	if _, err := top.call(context.Background(), 0); err != nil {
		t.Fatalf("activation over mTLS: %v", err)
	}
	if st := dep.state(t, "risk"); st.GetState() != active {
		t.Fatalf("dependency over mTLS: %v", st)
	}
	// Without a certificate nobody gets in.
	plain, err := grpc.NewClient(top.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := testpb.NewTestServiceClient(plain).UnaryCall(ctx, &testpb.SimpleRequest{}); err == nil {
		t.Fatal("a plaintext client was served by an mTLS service")
	}
}
