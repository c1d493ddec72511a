// Package servicetest runs a whole service in the test process: the real
// service.Service (gRPC on a loopback port, coordinator session, lazy
// runtime) with the caller's setup, stopped when the test ends. Other
// modules' tests use it to put real servers of several services together
// against a real coordinator (coordtest).
package servicetest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/grpcserver"
	"github.com/tradsys/mesh/pkg/service"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Running is a service started by Start.
type Running struct {
	*service.Service
	stop    func()
	stopped bool
}

// Stop ends the service and waits for it (also done at cleanup).
func (r *Running) Stop() {
	if !r.stopped {
		r.stopped = true
		r.stop()
	}
}

// Start serves a service named name against the coordinator at coordAddr
// until the test ends. setup registers its gRPC services and components
// (ctx is the service's lifetime). sessionTTL 0 means 5 s.
func Start(t testing.TB, name, coordAddr string, sessionTTL time.Duration, setup func(ctx context.Context, s *service.Service) error) *Running {
	t.Helper()
	if sessionTTL <= 0 {
		sessionTTL = 5 * time.Second
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := service.New(service.Config{Name: name},
		service.Options{Coordinator: coordAddr, Flags: grpcserver.Flags{ShutdownTimeout: 5 * time.Second}, Listener: lis,
			SessionTTL: sessionTTL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := setup(ctx, s); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	r := &Running{Service: s}
	r.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s run: %v", name, err)
		}
	}
	t.Cleanup(r.Stop)
	return r
}

// Dial is a plaintext client connection to addr, closed at cleanup.
func Dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
