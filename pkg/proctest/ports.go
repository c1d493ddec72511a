package proctest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FreeAddr is a loopback address that was free a moment ago. Anything may
// take it before it is bound, so it is only for a process that binds it
// at once and is restarted with a fresh one when that fails
// (RetryAddrInUse); an address that must stay free or be known ahead is a
// ReservePort.
func FreeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Port is a loopback TCP port held for a test: a socket bound to it that
// does not listen and has no SO_REUSEADDR. While it is held no other socket
// can bind the port (Go's listeners set SO_REUSEADDR, and two sockets share
// a port only when both do), the kernel does not give it to an outgoing
// connection as its local port, and a connection to it is refused, as if
// nothing ran there. Listening on port 0 and closing, by contrast, leaves
// the port to whoever takes it first.
type Port struct {
	Addr string
	mu   sync.Mutex
	fd   int // -1 once released or listening
}

// ReservePort holds a free loopback port until Listener or Release, or the
// end of the test.
func ReservePort(t testing.TB) *Port {
	t.Helper()
	// Close-on-exec like every socket of the net package: a child started
	// meanwhile must not inherit the port.
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		t.Fatalf("reserve a port: socket: %v", err)
	}
	p := &Port{fd: fd}
	t.Cleanup(func() { p.Release() })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("reserve a port: bind: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("reserve a port: getsockname: %v", err)
	}
	p.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	return p
}

// Listener makes the held socket listen, for a server in the test process:
// the port goes from held to served with no moment it is free.
func (p *Port) Listener(t testing.TB) net.Listener {
	t.Helper()
	p.mu.Lock()
	fd := p.fd
	p.fd = -1
	p.mu.Unlock()
	if fd < 0 {
		t.Fatalf("port %s: already released or listening", p.Addr)
	}
	f := os.NewFile(uintptr(fd), p.Addr)
	defer f.Close() // the listener has its own copy of the descriptor
	// SO_REUSEADDR now, as net.Listen sets it: the connections this
	// listener accepts inherit it, and a server restarted on the address
	// after they closed (in TIME_WAIT) can bind it again.
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		t.Fatalf("port %s: SO_REUSEADDR: %v", p.Addr, err)
	}
	if err := syscall.Listen(fd, syscall.SOMAXCONN); err != nil {
		t.Fatalf("port %s: listen: %v", p.Addr, err)
	}
	l, err := net.FileListener(f)
	if err != nil {
		t.Fatalf("port %s: %v", p.Addr, err)
	}
	return l
}

// Release lets go of the port so a child process can bind it, and returns
// its address. From here until the child binds it the port is free; start
// the child with RetryAddrInUse.
func (p *Port) Release() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fd >= 0 {
		_ = syscall.Close(p.fd)
		p.fd = -1
	}
	return p.Addr
}

// IsAddrInUse reports whether err says an address was taken: a bind's
// EADDRINUSE, or a child process's output with Go's message for it.
func IsAddrInUse(err error) bool {
	return err != nil && (errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use"))
}

// addrInUseTimeout bounds RetryAddrInUse; a var for its own test.
var addrInUseTimeout = 20 * time.Second

// RetryAddrInUse calls start until it returns nil or an error other than
// IsAddrInUse, waiting 50ms, 100ms, ... at most 1s between calls, for at
// most 20s. start picks the addresses it binds: fresh ones when nobody
// knows them yet (a port taken since it was picked is then simply
// avoided), the same one for a restart on a known address (then the wait
// is for the port to be let go: the killed process's socket, or whoever
// took it meanwhile).
func RetryAddrInUse(start func() error) error {
	deadline := time.Now().Add(addrInUseTimeout)
	backoff := 50 * time.Millisecond
	for {
		err := start()
		if !IsAddrInUse(err) {
			return err
		}
		if time.Now().Add(backoff).After(deadline) {
			return fmt.Errorf("address still in use after %s: %w", addrInUseTimeout, err)
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, time.Second)
	}
}
