package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/proctest"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"google.golang.org/protobuf/types/known/durationpb"
)

// syncBuffer is safe for a writer and a reader goroutine.
type syncBuffer = proctest.Buffer

// tradsys runs the CLI in-process against the coordinator at addr.
func tradsys(t *testing.T, addr string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	if addr != "" {
		args = append([]string{"--coordinator", addr}, args...)
	}
	code = Run(context.Background(), args, &out, &errOut)
	t.Logf("tradsys %s -> %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return out.String(), errOut.String(), code
}

func mustRun(t *testing.T, addr string, args ...string) string {
	t.Helper()
	out, errOut, code := tradsys(t, addr, args...)
	if code != 0 {
		t.Fatalf("tradsys %v: exit %d: %s", args, code, errOut)
	}
	return out
}

// tableRow finds the table line whose first column is first and splits it.
func tableRow(t *testing.T, table, first string) []string {
	t.Helper()
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == first {
			return f
		}
	}
	t.Fatalf("no row %q in\n%s", first, table)
	return nil
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("not one JSON document: %v\n%s", err, s)
	}
	return m
}

func TestStatusLeasesLocks(t *testing.T) {
	r, client := coordtest.Start(t, coordtest.Config{Budget: 1 << 30})
	addr := r.Addr()
	ctx := context.Background()

	out := mustRun(t, addr, "status")
	if got := tableRow(t, out, "USED"); strings.Join(got[1:], " ") != "0B (0.0%)" {
		t.Errorf("idle USED row %v", got)
	}
	if got := tableRow(t, out, "BUDGET"); got[1] != "1.0GiB" {
		t.Errorf("BUDGET row %v", got)
	}

	sess, err := client.CreateSession(ctx, &coordinatorv1.CreateSessionRequest{Owner: "cli-test", Ttl: durationpb.New(30 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	prio := int32(30)
	lease, err := client.AcquireMemory(ctx, &coordinatorv1.AcquireMemoryRequest{
		SessionId: sess.GetSessionId(), Component: "matching/algorithm/fifo", Bytes: 100 << 20, Priority: &prio, Preemptible: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.AcquireLock(ctx, &coordinatorv1.AcquireLockRequest{SessionId: sess.GetSessionId(), Name: "matching/algorithms"}); err != nil {
		t.Fatal(err)
	}

	// status, as a table and as JSON (the global flag after the command).
	out = mustRun(t, addr, "status")
	for first, want := range map[string]string{
		"USED": "100.0MiB (9.8%)", "FREE": "924.0MiB", "SESSIONS": "1", "LEASES": "1", "LOCKS": "1", "WAITERS": "0 (memory 0, locks 0)",
	} {
		if got := strings.Join(tableRow(t, out, first)[1:], " "); got != want {
			t.Errorf("status %s = %q, want %q", first, got, want)
		}
	}
	if got := tableRow(t, out, "LEADER"); len(got) != 2 || got[1] == "-" {
		t.Errorf("LEADER row %v", got)
	}
	st := decode(t, mustRun(t, addr, "status", "-o", "json"))
	if st["usedBytes"] != "104857600" || st["budgetBytes"] != "1073741824" || st["leases"] != float64(1) || st["waiters"] != float64(0) {
		t.Errorf("status json %v", st)
	}

	// leases
	out = mustRun(t, addr, "leases")
	if !strings.HasPrefix(out, "LEASE ") {
		t.Errorf("leases header missing:\n%s", out)
	}
	row := tableRow(t, out, lease.GetLeaseId())
	want := []string{lease.GetLeaseId(), sess.GetPublicId(), "cli-test", "matching/algorithm/fifo", "100.0MiB", "-", "30", "yes"}
	if len(row) < len(want) || strings.Join(row[:len(want)], " ") != strings.Join(want, " ") {
		t.Errorf("lease row %v, want prefix %v", row, want)
	}
	lj := decode(t, mustRun(t, addr, "-o", "json", "leases", "--session", sess.GetSessionId()))
	ls, _ := lj["leases"].([]any)
	if len(ls) != 1 || ls[0].(map[string]any)["leaseId"] != lease.GetLeaseId() || ls[0].(map[string]any)["bytes"] != "104857600" {
		t.Errorf("leases json %v", lj)
	}

	// locks
	out = mustRun(t, addr, "locks")
	row = tableRow(t, out, "matching/algorithms")
	if row[1] != sess.GetPublicId() || row[2] != "cli-test" {
		t.Errorf("lock row %v", row)
	}
	lk := decode(t, mustRun(t, addr, "locks", "--output=json"))
	if locks, _ := lk["locks"].([]any); len(locks) != 1 || locks[0].(map[string]any)["name"] != "matching/algorithms" {
		t.Errorf("locks json %v", lk)
	}

	// Closing the session frees everything; the CLI sees it.
	if _, err := client.CloseSession(ctx, &coordinatorv1.CloseSessionRequest{SessionId: sess.GetSessionId()}); err != nil {
		t.Fatal(err)
	}
	out = mustRun(t, addr, "leases")
	if strings.Contains(out, lease.GetLeaseId()) {
		t.Errorf("lease still listed after CloseSession:\n%s", out)
	}
	out = mustRun(t, addr, "status")
	if got := strings.Join(tableRow(t, out, "USED")[1:], " "); got != "0B (0.0%)" {
		t.Errorf("USED after close %q", got)
	}

	// The environment names the coordinator; an explicit flag beats it.
	t.Setenv("TRADSYS_COORDINATOR", addr)
	mustRun(t, "", "status")
	t.Setenv("TRADSYS_COORDINATOR", "127.0.0.1:1")
	mustRun(t, addr, "status")
}

func TestComponentsActivate(t *testing.T) {
	r, client := coordtest.Start(t, coordtest.Config{})
	addr := r.Addr()
	ctx := context.Background()
	for _, c := range []*coordinatorv1.RegisterComponentRequest{
		// No endpoint: activation only records the intent (with one, the
		// coordinator would call the component's LifecycleService).
		{Name: "orders", MemoryBytes: 100 << 20, Priority: ptr[int32](20)},
		{Name: "risk/validator/limits", Endpoint: "127.0.0.1:7106", MemoryBytes: 30 << 20, Priority: ptr[int32](35), Dependencies: []string{"orders"}},
	} {
		if _, err := client.RegisterComponent(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	out := mustRun(t, addr, "components")
	header := strings.Fields(strings.SplitN(out, "\n", 2)[0])
	if strings.Join(header, " ") != "NAME STATE SINCE DESIRED MEMORY PRIORITY DEPENDENCIES ENDPOINT CAUSE" {
		t.Errorf("header %v", header)
	}
	row := tableRow(t, out, "risk/validator/limits")
	if row[4] != "30.0MiB" || row[5] != "35" || row[6] != "orders" || row[7] != "127.0.0.1:7106" {
		t.Errorf("risk row %v", row)
	}
	if row := tableRow(t, out, "orders"); row[4] != "100.0MiB" || row[5] != "20" || row[6] != "-" {
		t.Errorf("orders row %v", row)
	}

	out = mustRun(t, addr, "activate", "orders")
	if row := tableRow(t, out, "orders"); row[3] != "ACTIVE" {
		t.Errorf("after activate DESIRED = %v", row)
	}
	cj := decode(t, mustRun(t, addr, "components", "orders", "-o", "json"))
	comps, _ := cj["components"].([]any)
	if len(comps) != 1 || comps[0].(map[string]any)["desiredState"] != "COMPONENT_STATE_ACTIVE" {
		t.Errorf("components json %v", cj)
	}
	dj := decode(t, mustRun(t, addr, "-o", "json", "deactivate", "orders"))
	if dj["component"].(map[string]any)["desiredState"] != "COMPONENT_STATE_DORMANT" {
		t.Errorf("deactivate json %v", dj)
	}

	// activate --wait returns once the component reports ACTIVE ...
	go func() {
		time.Sleep(300 * time.Millisecond)
		client.ReportComponentState(ctx, &coordinatorv1.ReportComponentStateRequest{Name: "orders", State: coordinatorv1.ComponentState_COMPONENT_STATE_ACTIVE})
	}()
	out = mustRun(t, addr, "activate", "orders", "--wait", "10s")
	// Reached: the request is done, DESIRED no longer holds it.
	if row := tableRow(t, out, "orders"); row[1] != "ACTIVE" || row[3] != "-" {
		t.Errorf("activate --wait: %v", row)
	}
	// ... and fails, with the cause, when it reports FAILED.
	if _, err := client.RegisterComponent(ctx, &coordinatorv1.RegisterComponentRequest{Name: "feeds", MemoryBytes: 1}); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		client.ReportComponentState(ctx, &coordinatorv1.ReportComponentStateRequest{Name: "feeds", State: coordinatorv1.ComponentState_COMPONENT_STATE_FAILED, Cause: "init timed out"})
	}()
	if _, stderr, code := tradsys(t, addr, "activate", "--wait=10s", "feeds"); code != ExitError || !strings.Contains(stderr, "FAILED: init timed out") {
		t.Errorf("activate --wait on a failing component: exit %d %q", code, stderr)
	}
	// A component whose service is down: UNAVAILABLE naming it, no
	// coordinator hint.
	if _, stderr, code := tradsys(t, addr, "activate", "risk/validator/limits"); code != ExitError ||
		!strings.Contains(stderr, "component risk/validator/limits at 127.0.0.1:7106") || strings.Contains(stderr, "is a coordinator running") {
		t.Errorf("activate with the service down: exit %d %q", code, stderr)
	}

	// A component that does not exist: the NOT_FOUND message, exit 1.
	stdout, stderr, code := tradsys(t, addr, "activate", "no-such-component")
	if code != ExitError || stdout != "" {
		t.Errorf("activate unknown: exit %d, stdout %q", code, stdout)
	}
	if !strings.Contains(stderr, `component "no-such-component" not found`) || !strings.Contains(stderr, "NOT_FOUND") {
		t.Errorf("activate unknown: stderr %q", stderr)
	}
	if _, stderr, code := tradsys(t, addr, "components", "nope"); code != ExitError || !strings.Contains(stderr, "NOT_FOUND") {
		t.Errorf("components nope: exit %d %q", code, stderr)
	}
}

func ptr[T any](v T) *T { return &v }

func TestWatch(t *testing.T) {
	r, client := coordtest.Start(t, coordtest.Config{})
	addr := r.Addr()
	bg := context.Background()

	watch := func(args ...string) (*syncBuffer, func() (int, string)) {
		ctx, cancel := context.WithCancel(bg)
		out, errOut := &syncBuffer{}, &syncBuffer{}
		done := make(chan int, 1)
		go func() { done <- Run(ctx, append([]string{"--coordinator", addr, "watch"}, args...), out, errOut) }()
		return out, func() (int, string) { cancel(); return <-done, errOut.String() }
	}
	// Until the stream is established events may be missed, so keep making
	// sessions until one shows up.
	waitFor := func(out *syncBuffer, re *regexp.Regexp, owner string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !re.MatchString(out.String()) {
			if time.Now().After(deadline) {
				t.Fatalf("no line matching %v in watch output:\n%s", re, out.String())
			}
			s, err := client.CreateSession(bg, &coordinatorv1.CreateSessionRequest{Owner: owner})
			if err != nil {
				t.Fatal(err)
			}
			client.CloseSession(bg, &coordinatorv1.CloseSessionRequest{SessionId: s.GetSessionId()})
			time.Sleep(100 * time.Millisecond)
		}
	}

	all, stopAll := watch()
	granted, stopGranted := watch("--type", "memory_granted", "-o", "json")
	waitFor(all, regexp.MustCompile(`(?m)^\S+ #\d+ SESSION_CREATED session=\S+ owner=watch-probe$`), "watch-probe")

	s, err := client.CreateSession(bg, &coordinatorv1.CreateSessionRequest{Owner: "watcher-test"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := client.AcquireMemory(bg, &coordinatorv1.AcquireMemoryRequest{SessionId: s.GetSessionId(), Component: "historical", Bytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	grantLine := regexp.MustCompile(`(?m)^\S+ #\d+ MEMORY_GRANTED session=` + regexp.QuoteMeta(s.GetPublicId()) +
		` owner=watcher-test component=historical lease=` + regexp.QuoteMeta(l.GetLeaseId()) + ` bytes=64.0MiB .*token=\d+`)
	deadline := time.Now().Add(10 * time.Second)
	for !grantLine.MatchString(all.String()) || !strings.Contains(granted.String(), l.GetLeaseId()) {
		if time.Now().After(deadline) {
			t.Fatalf("grant not seen:\nall:\n%s\njson:\n%s", all.String(), granted.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, stderr := stopAll(); code != 0 {
		t.Errorf("watch after Ctrl-C: exit %d %s", code, stderr)
	}
	if code, stderr := stopGranted(); code != 0 {
		t.Errorf("watch --type after Ctrl-C: exit %d %s", code, stderr)
	}
	// JSON mode: one object per line, only the type asked for.
	for _, line := range strings.Split(strings.TrimSpace(granted.String()), "\n") {
		ev := decode(t, line)["event"].(map[string]any)
		if ev["type"] != "EVENT_TYPE_MEMORY_GRANTED" {
			t.Errorf("--type memory_granted let through %v", ev)
		}
	}
}

func TestUsageAndConnectionErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"-o", "yaml", "status"},
		{"status", "extra"},
		{"status", "--no-such-flag"},
		{"activate"},
		{"deactivate", "a", "b"},
		{"watch", "--type", "bogus"},
		{"--timeout", "0s", "status"},
		{"up", "--memory-budget", "lots"},
		{"help", "nope"},
	} {
		if _, stderr, code := tradsys(t, "", args...); code != ExitUsage || stderr == "" {
			t.Errorf("tradsys %v: exit %d, stderr %q; want usage error 2", args, code, stderr)
		}
	}
	if out, _, code := tradsys(t, "", "help"); code != 0 || !strings.Contains(out, "components [NAME]") {
		t.Errorf("help: %d %q", code, out)
	}
	if _, _, code := tradsys(t, "", "status", "-h"); code != 0 {
		t.Errorf("status -h: exit %d", code)
	}

	// Nothing listens on a held port: UNAVAILABLE, exit 1, a hint.
	dead := proctest.ReservePort(t).Addr
	for _, cmd := range []string{"status", "components", "leases", "locks", "watch"} {
		_, stderr, code := tradsys(t, dead, cmd)
		if code != ExitError || !strings.Contains(stderr, "UNAVAILABLE") || !strings.Contains(stderr, "is a coordinator running at "+dead) {
			t.Errorf("%s against %s: exit %d, stderr %q", cmd, dead, code, stderr)
		}
	}
}

// Several replicas' addresses: a dead first address fails over to the next.
func TestSeveralCoordinatorAddresses(t *testing.T) {
	r, _ := coordtest.Start(t, coordtest.Config{})
	dead := proctest.ReservePort(t).Addr
	out := mustRun(t, dead+","+r.Addr(), "status")
	tableRow(t, out, "BUDGET")
}

func TestProbe(t *testing.T) {
	r, _ := coordtest.Start(t, coordtest.Config{})
	if out := mustRun(t, r.Addr(), "probe", r.Addr()); !strings.Contains(out, "SERVING") {
		t.Fatalf("probe: %q", out)
	}
	if _, _, code := tradsys(t, r.Addr(), "probe", "--service", "no.such.Service", r.Addr()); code != ExitError {
		t.Fatalf("probe of an unknown service: exit %d", code)
	}
}
