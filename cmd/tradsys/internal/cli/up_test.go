package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tradsys/mesh/cmd/tradsys/internal/mesh"
	"github.com/tradsys/mesh/pkg/proctest"
	connectorsv1 "github.com/tradsys/mesh/proto/tradsys/connectors/v1"
	historicalv1 "github.com/tradsys/mesh/proto/tradsys/historical/v1"
	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// freeOffset picks a port offset under which every port the mesh could use
// is free now, so tests never touch a developer's running mesh.
func freeOffset(t *testing.T) int {
	t.Helper()
	for range 50 {
		off := 20000 + rand.IntN(25000)
		ok := true
		ports := []int{mesh.Coordinator.Port, mesh.Coordinator.AdminPort, 2379, 2380}
		for _, s := range mesh.Services {
			ports = append(ports, s.Port, s.AdminPort)
		}
		for _, p := range ports {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+off)))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return off
		}
	}
	t.Fatal("no free port offset found")
	return 0
}

// goBuild builds pkg into dir/name with the go tool running this test.
func goBuild(t *testing.T, dir, name, pkg string) {
	t.Helper()
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	t.Logf("built %s in %s", name, time.Since(start).Round(time.Millisecond))
}

// lineWatcher collects a child's output and waits for lines.
type lineWatcher struct {
	buf  syncBuffer
	done chan struct{}
	peer *lineWatcher // the other stream, shown on failure
}

func (w *lineWatcher) other() string {
	if w.peer == nil {
		return ""
	}
	return "\n--- other stream ---\n" + w.peer.buf.String()
}

func watchLines(r io.Reader) *lineWatcher {
	w := &lineWatcher{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			fmt.Fprintln(&w.buf, sc.Text())
		}
	}()
	return w
}

func (w *lineWatcher) waitFor(t *testing.T, re *regexp.Regexp, d time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if m := re.FindStringSubmatch(w.buf.String()); m != nil {
			return m
		}
		select {
		case <-w.done:
			if m := re.FindStringSubmatch(w.buf.String()); m != nil {
				return m
			}
			t.Fatalf("output ended without %v:\n%s", re, w.buf.String()+w.other())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %v after %s:\n%s", re, d, w.buf.String()+w.other())
		}
	}
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// TestUp runs `tradsys up` as a real process with a real coordinator
// binary, talks to it with the CLI, stops it with SIGINT; then runs it again
// and kills the coordinator under it.
func TestUp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries and runs the mesh; skipped with -short")
	}
	bin := t.TempDir()
	goBuild(t, bin, "tradsys-coordinator", "github.com/tradsys/mesh/services/coordinator")
	goBuild(t, bin, "tradsys", "github.com/tradsys/mesh/cmd/tradsys")

	// startUp runs `tradsys up` in cwd; dataDir "" leaves --data-dir to
	// its default.
	startUp := func(t *testing.T, cwd, dataDir string) (cmd *exec.Cmd, stdout, stderr *lineWatcher, coordAddr string, coordPID int) {
		t.Helper()
		off := freeOffset(t)
		args := []string{"up", "--bin-dir", bin, "--port-offset", strconv.Itoa(off), "--memory-budget", "512MiB", "--stop-timeout", "5s"}
		if dataDir != "" {
			args = append(args, "--data-dir", dataDir)
		}
		cmd = exec.Command(filepath.Join(bin, "tradsys"), args...)
		cmd.Dir = cwd
		for _, kv := range os.Environ() { // no TRADSYS_* from the developer's shell
			if !strings.HasPrefix(kv, "TRADSYS_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		outPipe, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		errPipe, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { // a failed test must not leave a mesh behind
			if cmd.ProcessState == nil {
				cmd.Process.Signal(syscall.SIGTERM)
			}
		})
		stdout, stderr = watchLines(outPipe), watchLines(errPipe)
		stdout.peer, stderr.peer = stderr, stdout
		coordAddr = "127.0.0.1:" + strconv.Itoa(7000+off)
		admin := "127.0.0.1:" + strconv.Itoa(9000+off)
		stdout.waitFor(t, regexp.MustCompile(`mesh up; Ctrl-C stops it`), 90*time.Second)
		out := stdout.buf.String()
		for _, want := range []string{"starting coordinator", "ready    coordinator SERVING after", "skipping historical, orders, matching", "NAME         ENDPOINT"} {
			if !strings.Contains(out, want) {
				t.Errorf("up output lacks %q:\n%s", want, out)
			}
		}
		m := regexp.MustCompile(`(?m)^coordinator\s+` + regexp.QuoteMeta(coordAddr) + `\s+` + regexp.QuoteMeta(admin) + `\s+SERVING\s+(\d+)\s*$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no coordinator row with %s %s SERVING PID in:\n%s", coordAddr, admin, out)
		}
		coordPID, _ = strconv.Atoi(m[1])
		return cmd, stdout, stderr, coordAddr, coordPID
	}

	t.Run("sigint", func(t *testing.T) {
		data := t.TempDir()
		cmd, stdout, stderr, addr, coordPID := startUp(t, t.TempDir(), data)
		out := mustRun(t, addr, "status")
		if got := tableRow(t, out, "BUDGET"); got[1] != "512.0MiB" {
			t.Errorf("BUDGET %v, want the --memory-budget 512MiB", got)
		}
		if fi, err := os.Stat(filepath.Join(data, "logs", "coordinator.log")); err != nil || fi.Size() == 0 {
			t.Errorf("coordinator log: %v", err)
		}
		if _, err := os.Stat(filepath.Join(data, "etcd")); err != nil {
			t.Errorf("etcd data dir: %v", err)
		}
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		stdout.waitFor(t, regexp.MustCompile(`stopped  coordinator pid \d+: exit status 0`), 30*time.Second)
		<-stdout.done
		<-stderr.done
		if err := cmd.Wait(); err != nil {
			t.Errorf("tradsys up after SIGINT: %v\nstderr: %s", err, stderr.buf.String())
		}
		if alive(coordPID) {
			t.Errorf("coordinator pid %d still alive", coordPID)
		}
		if _, _, code := tradsys(t, addr, "status", "--timeout", "2s"); code != ExitError {
			t.Errorf("status after shutdown: exit %d", code)
		}
	})

	// A second mesh on other ports: by default it gets its own state
	// directory; pointed at the first one's, it refuses, naming it, and
	// leaves the first mesh's logs alone.
	t.Run("state directory per mesh", func(t *testing.T) {
		cwd := t.TempDir()
		cmd, stdout, _, addr, _ := startUp(t, cwd, "")
		off, _ := strconv.Atoi(strings.TrimPrefix(addr, "127.0.0.1:"))
		off -= 7000
		first := filepath.Join(cwd, DefaultStateDir(off))
		if first == filepath.Join(cwd, ".tradsys") {
			t.Fatalf("offset %d mesh uses .tradsys", off)
		}
		logPath := filepath.Join(first, "logs", "coordinator.log")
		before, err := os.ReadFile(logPath)
		if err != nil || len(before) == 0 {
			t.Fatalf("first mesh's log %s: %v (%d bytes)", logPath, err, len(before))
		}
		second := exec.Command(filepath.Join(bin, "tradsys"), "up", "--bin-dir", bin, "--data-dir", first,
			"--port-offset", strconv.Itoa(freeOffset(t)))
		second.Dir = cwd
		out, err := second.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != ExitError {
			t.Errorf("second mesh on %s: %v, want exit 1\n%s", first, err, out)
		}
		for _, want := range []string{"state directory " + first + " is in use by another mesh", "coordinator " + addr, "--data-dir"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("refusal lacks %q:\n%s", want, out)
			}
		}
		after, err := os.ReadFile(logPath)
		if err != nil || !strings.HasPrefix(string(after), string(before)) {
			t.Errorf("the first mesh's coordinator.log was truncated or rewritten (%d bytes before, %d after, %v)", len(before), len(after), err)
		}
		if _, errOut, code := tradsys(t, addr, "status"); code != ExitOK {
			t.Errorf("first mesh no longer answers: exit %d %s", code, errOut)
		}
		cmd.Process.Signal(os.Interrupt)
		stdout.waitFor(t, regexp.MustCompile(`stopped  coordinator pid \d+`), 30*time.Second)
		cmd.Wait()
	})

	t.Run("child dies", func(t *testing.T) {
		cmd, _, stderr, _, coordPID := startUp(t, t.TempDir(), t.TempDir())
		if err := syscall.Kill(coordPID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		stderr.waitFor(t, regexp.MustCompile(`coordinator \(pid \d+\) exited unexpectedly: signal: killed\n--- last lines of \S+coordinator.log ---`), 30*time.Second)
		<-stderr.done
		err := cmd.Wait()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != ExitError {
			t.Errorf("tradsys up after its coordinator died: %v, want exit 1", err)
		}
	})
}

// A coordinator that cannot start: up names it, shows its log tail, exit 1.
// The binary is a real failing executable, run through the real code path.
func TestUpReportsStartFailure(t *testing.T) {
	bin := t.TempDir()
	script := "#!/bin/sh\necho \"bad flag for the test: $*\"\necho boom >&2\nexit 3\n"
	if err := os.WriteFile(filepath.Join(bin, "tradsys-coordinator"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	off := freeOffset(t)
	data := t.TempDir()
	stdout, stderr, code := tradsys(t, "", "up", "--bin-dir", bin, "--data-dir", data, "--port-offset", strconv.Itoa(off))
	if code != ExitError {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{
		"mesh did not come up: coordinator: exited while starting: exit status 3",
		"--- last lines of " + filepath.Join(data, "logs", "coordinator.log"),
		"boom",
		"--listen 127.0.0.1:" + strconv.Itoa(7000+off),
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if !strings.Contains(stdout, "starting coordinator") {
		t.Errorf("no progress line:\n%s", stdout)
	}

	// A port in use is reported before anything starts.
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(7000+off))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, stderr, code = tradsys(t, "", "up", "--bin-dir", bin, "--data-dir", data, "--port-offset", strconv.Itoa(off))
	if code != ExitError || !strings.Contains(stderr, "coordinator needs 127.0.0.1:"+strconv.Itoa(7000+off)) || !strings.Contains(stderr, "in use") {
		t.Errorf("port in use: exit %d, stderr %q", code, stderr)
	}

	// No coordinator binary at all.
	_, stderr, code = tradsys(t, "", "up", "--bin-dir", t.TempDir(), "--data-dir", data)
	if code != ExitError || !strings.Contains(stderr, "tradsys-coordinator not found") {
		t.Errorf("missing binary: exit %d, stderr %q", code, stderr)
	}
}

// `tradsys up` wires the data flow by default: a trade made on matching
// becomes a candle historical serves, and so does a connector's market
// data. Real binaries under a real `tradsys up`.
func TestUpWiresTradesAndMarketDataIntoCandles(t *testing.T) {
	if testing.Short() {
		t.Skip("builds five binaries and runs the mesh; skipped with -short")
	}
	bin := t.TempDir()
	for _, s := range []string{"coordinator", "matching", "historical", "connectors"} {
		goBuild(t, bin, "tradsys-"+s, "github.com/tradsys/mesh/services/"+s)
	}
	goBuild(t, bin, "tradsys", "github.com/tradsys/mesh/cmd/tradsys")
	off := freeOffset(t)
	cmd := exec.Command(filepath.Join(bin, "tradsys"), "up", "--bin-dir", bin, "--data-dir", t.TempDir(),
		"--port-offset", strconv.Itoa(off), "--stop-timeout", "5s")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TRADSYS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stdout := watchLines(outPipe)
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	stdout.waitFor(t, regexp.MustCompile(`mesh up; Ctrl-C stops it`), 120*time.Second)
	dial := func(port int) *grpc.ClientConn {
		conn, err := grpc.NewClient("127.0.0.1:"+strconv.Itoa(port+off), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	ctx := context.Background()
	mc := matchingv1.NewMatchingServiceClient(dial(7103))
	hc := historicalv1.NewHistoricalDataServiceClient(dial(7101))
	cc := connectorsv1.NewConnectorServiceClient(dial(7105))

	// A trade on matching, as the README's grpcurl example makes it.
	sym := strings.Split(mesh.Symbols, ",")[0]
	for i, side := range []matchingv1.Side{matchingv1.Side_SIDE_SELL, matchingv1.Side_SIDE_BUY} {
		if _, err := mc.SubmitOrder(ctx, &matchingv1.SubmitOrderRequest{Symbol: sym, OrderId: uint64(i + 1), Account: uint64(i + 1),
			Side: side, Type: matchingv1.OrderType_ORDER_TYPE_LIMIT, Price: 100, Quantity: 3}); err != nil {
			t.Fatalf("submit: %v", err)
		}
	}
	latest := func(symbol string) *historicalv1.Candle {
		resp, err := hc.GetLatest(ctx, &historicalv1.GetLatestRequest{Symbol: symbol, Interval: historicalv1.Interval_INTERVAL_1M, IncludePartial: true})
		if err != nil {
			return nil
		}
		return resp.GetCandle()
	}
	var candle *historicalv1.Candle
	proctest.Eventually(t, 30*time.Second, "the trade's candle on historical", func() bool {
		candle = latest(sym)
		return candle != nil
	})
	if candle.GetTrades() != 1 {
		t.Errorf("candle of one trade: %v", candle)
	}

	// A connector's market data, followed without being asked.
	if _, err := cc.Connect(ctx, &connectorsv1.ConnectRequest{Name: "sim", Kind: connectorsv1.ConnectorKind_CONNECTOR_KIND_SIMULATOR,
		Config: &connectorsv1.ConnectRequest_Simulator{Simulator: &connectorsv1.SimulatorConfig{Symbols: []string{"SIMUSDT"}, Rate: 50}}}); err != nil {
		t.Fatal(err)
	}
	proctest.Eventually(t, 30*time.Second, "the simulator's candle on historical", func() bool {
		c := latest("SIMUSDT")
		return c != nil && c.GetTrades() > 0
	})
}
