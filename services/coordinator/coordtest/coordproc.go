package coordtest

import (
	"context"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/proctest"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// CoordinatorProc is a coordinator replica as a real process (the
// coordinator binary of this module), for tests that kill -9 or SIGSTOP it.
type CoordinatorProc struct {
	Addr  string
	args  []string // all but --listen
	bin   string
	mu    sync.Mutex
	child *proctest.Child
}

// StartCoordinatorProc starts a replica on etcdEndpoints with extra flags
// (for instance --election-ttl, --memory-budget) and a free address; it is
// killed at cleanup.
func StartCoordinatorProc(t testing.TB, etcdEndpoints []string, args ...string) *CoordinatorProc {
	t.Helper()
	p := &CoordinatorProc{bin: binary(t, "github.com/tradsys/mesh/services/coordinator")}
	p.args = append([]string{"--admin-listen", "127.0.0.1:0",
		"--etcd-endpoints", strings.Join(etcdEndpoints, ","), "--log-level", "info", "--log-format", "console"}, args...)
	err := proctest.RetryAddrInUse(func() error {
		p.Addr = proctest.FreeAddr(t) // nobody knows it yet: a fresh one each try
		return p.start()
	})
	if err != nil {
		t.Fatalf("start coordinator: %v", err)
	}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("coordinator %s log (tail):\n%s", p.Addr, tail(p.Log(), 6000))
		}
	})
	return p
}

// start runs the replica on p.Addr and returns once it listens there, or
// with why it exited.
func (p *CoordinatorProc) start() error {
	child, err := proctest.StartChild(exec.Command(p.bin, append([]string{"--listen", p.Addr}, p.args...)...))
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.child = child
	p.mu.Unlock()
	if err := child.WaitListening(30*time.Second, p.Addr); err != nil {
		child.Kill()
		return err
	}
	return nil
}

func (p *CoordinatorProc) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.child != nil {
		p.child.Signal(sig)
	}
}

// Pause stops the replica with SIGSTOP (returning once it is stopped);
// Resume continues it.
func (p *CoordinatorProc) Pause() {
	p.signal(syscall.SIGSTOP)
	p.mu.Lock()
	pid := p.child.Cmd.Process.Pid
	p.mu.Unlock()
	waitStopped(pid)
}
func (p *CoordinatorProc) Resume() { p.signal(syscall.SIGCONT) }

// Kill ends the replica with SIGKILL, as a crash would, and waits for it.
func (p *CoordinatorProc) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.child != nil {
		p.child.Kill()
	}
}

// Restart starts a killed replica again on the same address, waiting while
// the port is not let go yet.
func (p *CoordinatorProc) Restart(t testing.TB) {
	t.Helper()
	p.Kill()
	if err := proctest.RetryAddrInUse(p.start); err != nil {
		t.Fatalf("restart coordinator on %s: %v", p.Addr, err)
	}
}

// Log is what the process wrote since it last started.
func (p *CoordinatorProc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.child == nil {
		return ""
	}
	return p.child.Log()
}

// Leader asks the replicas which address leads, or "" if none answers.
func Leader(addrs []string) string {
	for _, a := range addrs {
		conn, err := grpc.NewClient(a, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		st, err := coordinatorv1.NewCoordinatorServiceClient(conn).GetStatus(ctx, &coordinatorv1.GetStatusRequest{})
		cancel()
		conn.Close()
		if err == nil && st.GetLeader() != "" {
			return st.GetLeader()
		}
	}
	return ""
}
