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
	Addr string
	args []string
	bin  string
	mu   sync.Mutex
	cmd  *exec.Cmd
	log  *proctest.Buffer
}

// StartCoordinatorProc starts a replica on etcdEndpoints with extra flags
// (for instance --election-ttl, --memory-budget); it is killed at cleanup.
func StartCoordinatorProc(t testing.TB, etcdEndpoints []string, args ...string) *CoordinatorProc {
	t.Helper()
	p := &CoordinatorProc{Addr: proctest.FreeAddr(t), bin: binary(t, "github.com/tradsys/mesh/services/coordinator")}
	p.args = append([]string{"--listen", p.Addr, "--admin-listen", "127.0.0.1:0",
		"--etcd-endpoints", strings.Join(etcdEndpoints, ","), "--log-level", "info", "--log-format", "console"}, args...)
	p.start(t)
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("coordinator %s log (tail):\n%s", p.Addr, tail(p.log.String(), 6000))
		}
	})
	return p
}

func (p *CoordinatorProc) start(t testing.TB) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = &proctest.Buffer{}
	p.cmd = exec.Command(p.bin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
}

func (p *CoordinatorProc) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

// Pause stops the replica with SIGSTOP (returning once it is stopped);
// Resume continues it.
func (p *CoordinatorProc) Pause() {
	p.signal(syscall.SIGSTOP)
	p.mu.Lock()
	pid := p.cmd.Process.Pid
	p.mu.Unlock()
	waitStopped(pid)
}
func (p *CoordinatorProc) Resume() { p.signal(syscall.SIGCONT) }

// Kill ends the replica with SIGKILL, as a crash would, and waits for it.
func (p *CoordinatorProc) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
}

// Restart starts a killed replica again on the same address.
func (p *CoordinatorProc) Restart(t testing.TB) {
	p.Kill()
	p.start(t)
}

// Log is what the process wrote so far.
func (p *CoordinatorProc) Log() string { return p.log.String() }

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
