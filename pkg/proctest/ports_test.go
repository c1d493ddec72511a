package proctest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// childEnv makes the test binary, started by Start, act as a service: it
// binds --listen and --admin-listen (failing as Go does when one is taken)
// and answers health SERVING until SIGTERM.
const childEnv = "PROCTEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		serveAsChild()
		return
	}
	os.Exit(m.Run())
}

func serveAsChild() {
	fs := flag.NewFlagSet("child", flag.ExitOnError)
	listen, admin := fs.String("listen", "", ""), fs.String("admin-listen", "", "")
	for _, f := range []string{"coordinator", "session-ttl", "log-format", "log-level"} {
		fs.String(f, "", "")
	}
	_ = fs.Parse(os.Args[1:])
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FATAL --listen %s: %v\n", *listen, err)
		os.Exit(1)
	}
	adminLis, err := net.Listen("tcp", *admin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FATAL --admin-listen %s: %v\n", *admin, err)
		os.Exit(1)
	}
	defer adminLis.Close()
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer()) // SERVING
	go srv.Serve(lis)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	srv.Stop()
}

func childBin(t *testing.T) string {
	t.Setenv(childEnv, "serve")
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestReservedPortIsNeitherTakenNorServed(t *testing.T) {
	p := ReservePort(t)
	if l, err := net.Listen("tcp", p.Addr); !IsAddrInUse(err) {
		if l != nil {
			l.Close()
		}
		t.Fatalf("listen on a held port: %v, want address in use", err)
	}
	if c, err := net.DialTimeout("tcp", p.Addr, time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("dial a held port: %v, want connection refused", err)
	}
}

// A server in the test process gets the held socket itself; once it is
// gone, after connections it closed (TIME_WAIT on its side), its address
// can be bound again, as a restarted server does.
func TestReservedPortListenerServesAndItsAddressCanBeBoundAgain(t *testing.T) {
	p := ReservePort(t)
	l := p.Listener(t)
	if l.Addr().String() != p.Addr {
		t.Fatalf("listener on %s, port %s", l.Addr(), p.Addr)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c, err := net.DialTimeout("tcp", p.Addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	(<-accepted).Close() // the server closes first: its side waits in TIME_WAIT
	l.Close()
	l2, err := net.Listen("tcp", p.Addr)
	if err != nil {
		t.Fatalf("bind %s again after its server closed: %v", p.Addr, err)
	}
	l2.Close()
}

// The port Start picks is taken before the process binds it: the process
// fails with "address already in use" and Start starts it again on a
// fresh port.
func TestStartOnATakenPickedPortRetriesWithAFreshOne(t *testing.T) {
	bin := childBin(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	picks := 0
	freeAddr = func(t testing.TB) string {
		if picks++; picks == 1 {
			return taken.Addr().String()
		}
		return FreeAddr(t)
	}
	t.Cleanup(func() { freeAddr = FreeAddr })
	p := Start(t, bin, "unused")
	if p.Addr == taken.Addr().String() || picks != 4 { // --listen and --admin-listen, twice
		t.Fatalf("started on %s after %d picks; the taken port was %s", p.Addr, picks, taken.Addr())
	}
	serving(t, p)
}

// A restart on a known address waits until whoever holds it lets go.
func TestStartOnATakenListenAddressWaitsForIt(t *testing.T) {
	bin := childBin(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := taken.Addr().String()
	time.AfterFunc(500*time.Millisecond, func() { taken.Close() })
	start := time.Now()
	p := Start(t, bin, "unused", "--listen", addr)
	if p.Addr != addr || time.Since(start) < 500*time.Millisecond {
		t.Fatalf("started on %s after %s; want %s once it was let go (500ms)", p.Addr, time.Since(start), addr)
	}
	serving(t, p)
}

// A port counts as the process's only when it holds the listening socket:
// a listener of another process on the port it was given does not count.
func TestChildListensOnlyOnItsOwnSocket(t *testing.T) {
	bin := childBin(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	own := FreeAddr(t)
	c, err := StartChild(exec.Command(bin, "--listen", own, "--admin-listen", "127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Kill()
	if err := c.WaitListening(10*time.Second, own); err != nil {
		t.Fatal(err)
	}
	if _, known := listeningInode(own); !known {
		t.Skip("no /proc/net/tcp: any listener counts")
	}
	if c.Listens(taken.Addr().String()) {
		t.Fatalf("the child listens on %s, which this test holds", taken.Addr())
	}
}

func serving(t *testing.T, p *Proc) {
	t.Helper()
	resp, err := healthpb.NewHealthClient(p.Conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health of the started process: %v, %v", resp, err)
	}
}

func TestRetryAddrInUseGivesUpAndPassesOtherErrors(t *testing.T) {
	addrInUseTimeout = 300 * time.Millisecond
	t.Cleanup(func() { addrInUseTimeout = 20 * time.Second })
	calls := 0
	err := RetryAddrInUse(func() error { calls++; return fmt.Errorf("bind: %w", syscall.EADDRINUSE) })
	if err == nil || !strings.Contains(err.Error(), "still in use") || calls < 2 {
		t.Fatalf("always in use: %v after %d calls", err, calls)
	}
	calls = 0
	other := errors.New("no such file")
	if err := RetryAddrInUse(func() error { calls++; return other }); err != other || calls != 1 {
		t.Fatalf("another error: %v after %d calls, want it at once", err, calls)
	}
}
