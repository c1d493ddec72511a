// Package proctest runs service binaries as real processes for tests: build
// once, start on free loopback ports against a real coordinator, wait for
// health, stop with SIGTERM.
package proctest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/config"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Build compiles pkg (a package path, or a directory relative to the
// caller's module) with -race into dir/name and returns the path. Call it
// once, from TestMain.
func Build(dir, name, pkg string) (string, error) {
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-race", "-o", out, pkg)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return out, cmd.Run()
}

// Proc is a running service process.
type Proc struct {
	*Child
	Addr  string
	Admin string
	Conn  *grpc.ClientConn
}

// Buffer is a strings.Builder safe for one goroutine writing (a process,
// a command under test) while another reads.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// freeAddr picks Start's fresh ports; a test makes it pick a taken one.
var freeAddr = FreeAddr

// Start runs bin against coordinator with args (later flags win) and waits
// until it reports SERVING; it is stopped at cleanup. A "--listen ADDR" in
// args (to restart a service on the address its clients know) becomes Addr;
// otherwise Addr, like Admin, is a free port. A start that fails because a
// port was taken is retried (RetryAddrInUse): with fresh ports, or on the
// same --listen address once it is let go.
func Start(t testing.TB, bin, coordinator string, args ...string) *Proc {
	t.Helper()
	listen := ""
	for i, a := range args {
		if a == "--listen" && i+1 < len(args) {
			listen = args[i+1]
		} else if v, ok := strings.CutPrefix(a, "--listen="); ok {
			listen = v
		}
	}
	var p *Proc
	err := RetryAddrInUse(func() error {
		p = &Proc{Addr: listen}
		if p.Addr == "" {
			p.Addr = freeAddr(t)
		}
		p.Admin = freeAddr(t)
		return p.start(t, bin, coordinator, args)
	})
	if err != nil {
		t.Fatalf("%s not healthy: %v", bin, err)
	}
	t.Cleanup(func() {
		p.Stop(t)
		if t.Failed() {
			t.Logf("%s log:\n%s", bin, p.Log())
		}
	})
	return p
}

// start runs one attempt: the process on p.Addr and p.Admin, until it
// reports SERVING; on failure it is gone again.
func (p *Proc) start(t testing.TB, bin, coordinator string, args []string) error {
	cmd := exec.Command(bin, append([]string{"--listen", p.Addr, "--admin-listen", p.Admin,
		"--coordinator", coordinator, "--session-ttl", "3s", "--log-format", "console", "--log-level", "debug"}, args...)...)
	// State a service keeps by default (its --data-dir: journals, stores,
	// connector definitions) goes to a directory of this test, never to the
	// package's source tree where runs would see each other's; an explicit
	// --data-dir in args still wins.
	cmd.Env = append(os.Environ(), "TRADSYS_DATA_DIR="+t.TempDir())
	child, err := StartChild(cmd)
	if err != nil {
		return err
	}
	p.Child = child
	conn, err := grpc.NewClient(p.Addr, grpc.WithTransportCredentials(credsFor(t, args)))
	if err != nil {
		child.Kill()
		return err
	}
	p.Conn = conn
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		// SERVING from the process itself, not from whoever took its port.
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING && child.Listens(p.Addr) {
			return nil
		}
		if child.Exited() {
			p.Conn.Close()
			return child.ExitError() // "address already in use" is retried
		}
		if time.Now().After(deadline) {
			p.Kill(t)
			return fmt.Errorf("no SERVING after 30s: %v\n%s", err, child.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *Proc) Kill(t testing.TB) {
	p.Child.Kill()
	p.Conn.Close()
}

// credsFor dials the process the way it serves: with mTLS (using its own
// certificate) when its args carry --tls-cert, --tls-key and --tls-ca.
func credsFor(t testing.TB, args []string) credentials.TransportCredentials {
	var f config.TLS
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--tls-cert":
			f.CertFile = args[i+1]
		case "--tls-key":
			f.KeyFile = args[i+1]
		case "--tls-ca":
			f.CAFile = args[i+1]
		}
	}
	if !f.Configured() {
		return insecure.NewCredentials()
	}
	creds, err := f.ClientCredentials()
	if err != nil {
		t.Fatal(err)
	}
	return creds
}

// Stop sends SIGTERM and waits (SIGKILL after 15s).
func (p *Proc) Stop(t testing.TB) {
	p.Child.Stop(15 * time.Second)
	p.Conn.Close()
}

// Eventually polls cond until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
