package coordtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/proctest"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// EtcdCluster is an etcd cluster of real processes (the etcd server built
// from this module's cmd/etcd), for tests that kill, pause or restart
// members: what an embedded etcd in the test process cannot do.
type EtcdCluster struct {
	Members []*EtcdMember
}

// EtcdMember is one member process.
type EtcdMember struct {
	Name, Client, Peer, Dir string
	bin, initial            string
	ports                   []*proctest.Port // Client and Peer, held until the first start
	mu                      sync.Mutex
	child                   *proctest.Child
}

var (
	builtMu  sync.Mutex
	built    = map[string]string{} // package -> binary
	builtDir string
)

// binary builds a main package of this module once per test process
// (without -race: these are the processes under fault, not the code the
// race detector is meant for here).
func binary(t testing.TB, pkg string) string {
	t.Helper()
	builtMu.Lock()
	defer builtMu.Unlock()
	if bin := built[pkg]; bin != "" {
		return bin
	}
	if builtDir == "" {
		dir, err := os.MkdirTemp("", "tradsys-coordtest-bin-")
		if err != nil {
			t.Fatal(err)
		}
		builtDir = dir
	}
	bin := filepath.Join(builtDir, filepath.Base(pkg))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, out)
	}
	built[pkg] = bin
	return bin
}

func etcdBinary(t testing.TB) string {
	return binary(t, "github.com/tradsys/mesh/services/coordinator/cmd/etcd")
}

// RemoveBuilt deletes the binaries built for this test process (etcd, the
// coordinator); call it from TestMain after the tests ran.
func RemoveBuilt() {
	builtMu.Lock()
	defer builtMu.Unlock()
	if builtDir != "" {
		_ = os.RemoveAll(builtDir)
	}
}

// StartEtcdCluster starts n members on free loopback ports and waits until
// the cluster answers. Members run with short raft timeouts (heartbeat
// 50 ms, election 500 ms) so a killed raft leader is replaced quickly, and
// without fsync (throwaway data). They are killed at cleanup.
func StartEtcdCluster(t testing.TB, n int) *EtcdCluster {
	t.Helper()
	bin := etcdBinary(t)
	var c *EtcdCluster
	// Every member is told every peer address before any starts: the
	// ports are held (proctest.ReservePort) until their member starts. One
	// taken in the moment between its release and its member's bind starts
	// the cluster over on fresh ports.
	err := proctest.RetryAddrInUse(func() error {
		c = &EtcdCluster{}
		var initial []string
		for i := range n {
			client, peer := proctest.ReservePort(t), proctest.ReservePort(t)
			m := &EtcdMember{Name: fmt.Sprintf("m%d", i), Client: client.Addr, Peer: peer.Addr, Dir: t.TempDir(), bin: bin,
				ports: []*proctest.Port{client, peer}}
			c.Members = append(c.Members, m)
			initial = append(initial, m.Name+"=http://"+m.Peer)
		}
		for _, m := range c.Members {
			m.initial = strings.Join(initial, ",")
			if err := m.start(); err != nil {
				for _, m := range c.Members {
					m.Kill()
				}
				return fmt.Errorf("etcd member %s: %w", m.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range c.Members {
		t.Cleanup(func() {
			m.Kill()
			if t.Failed() {
				t.Logf("etcd %s log (tail):\n%s", m.Name, tail(m.Log(), 4000))
			}
		})
	}
	cli := c.Client(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Get(ctx, "health")
		cancel()
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd cluster not serving after 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// start runs the member on its addresses and returns once it listens on
// them, or with why it exited.
func (m *EtcdMember) start() error {
	state := "new"
	if _, err := os.Stat(filepath.Join(m.Dir, "member")); err == nil {
		state = "existing"
	}
	for _, p := range m.ports {
		p.Release()
	}
	child, err := proctest.StartChild(exec.Command(m.bin, "--name", m.Name, "--data-dir", m.Dir,
		"--listen-client-urls", "http://"+m.Client, "--advertise-client-urls", "http://"+m.Client,
		"--listen-peer-urls", "http://"+m.Peer, "--initial-advertise-peer-urls", "http://"+m.Peer,
		"--initial-cluster", m.initial, "--initial-cluster-state", state, "--initial-cluster-token", "coordtest",
		"--heartbeat-interval", "50", "--election-timeout", "500", "--unsafe-no-fsync", "--log-level", "error"))
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.child = child
	m.mu.Unlock()
	if err := child.WaitListening(30*time.Second, m.Client, m.Peer); err != nil {
		child.Kill()
		return err
	}
	return nil
}

// Log is what the member printed since it last started.
func (m *EtcdMember) Log() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.child == nil {
		return ""
	}
	return m.child.Log()
}

// Endpoints are the members' client addresses.
func (c *EtcdCluster) Endpoints() []string {
	var out []string
	for _, m := range c.Members {
		out = append(out, m.Client)
	}
	return out
}

// Client is an etcd client on every member, closed at cleanup.
func (c *EtcdCluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Leader is the member that is raft leader now, or nil if none answers.
func (c *EtcdCluster) Leader(cli *clientv3.Client) *EtcdMember {
	for _, m := range c.Members {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		st, err := cli.Status(ctx, m.Client)
		cancel()
		if err == nil && st.Header.MemberId == st.Leader {
			return m
		}
	}
	return nil
}

func (m *EtcdMember) signal(sig syscall.Signal) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.child != nil {
		m.child.Signal(sig)
	}
}

// Pause stops the member with SIGSTOP, and returns once every thread of
// it is stopped; Resume continues it.
func (m *EtcdMember) Pause() {
	m.signal(syscall.SIGSTOP)
	m.mu.Lock()
	pid := m.child.Cmd.Process.Pid
	m.mu.Unlock()
	waitStopped(pid)
}

// waitStopped waits (up to 5s) until every thread of pid is stopped.
func waitStopped(pid int) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
		stopped := len(tasks) > 0
		for _, f := range tasks {
			b, err := os.ReadFile(f)
			// The state follows the ")" closing the command name.
			if i := strings.LastIndexByte(string(b), ')'); err != nil || i < 0 || i+2 >= len(b) || b[i+2] != 'T' && b[i+2] != 't' {
				stopped = false
				break
			}
		}
		if stopped {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
func (m *EtcdMember) Resume() { m.signal(syscall.SIGCONT) }

// Kill ends the member with SIGKILL, as a crash would, and waits for it.
func (m *EtcdMember) Kill() {
	m.signal(syscall.SIGCONT) // a paused process dies only once continued
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.child != nil {
		m.child.Kill()
	}
}

// Restart starts a killed member again on its data directory and
// addresses, waiting while a port is not let go yet.
func (m *EtcdMember) Restart(t testing.TB) {
	t.Helper()
	m.Kill()
	if err := proctest.RetryAddrInUse(m.start); err != nil {
		t.Fatalf("restart etcd member %s: %v", m.Name, err)
	}
}
