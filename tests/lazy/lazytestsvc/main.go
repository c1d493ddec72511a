// Command lazytestsvc is a real service process for the lazy runtime's
// tests: one component whose Init takes --init-delay (or fails), gating
// grpc.testing.TestService/UnaryCall. EmptyCall is ungated (a cheap read).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tradsys/mesh/pkg/config"
	"github.com/tradsys/mesh/pkg/lazy"
	"github.com/tradsys/mesh/pkg/service"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

func main() {
	var (
		name      string
		settings  = lazy.Settings{MemoryBytes: 10 << 20, Priority: 50, InitTimeout: 5 * time.Second, IdleTimeout: time.Minute}
		initDelay time.Duration
		failInit  bool
		deps      config.StringList
		plugins   config.StringList
		pinned    bool
		initAlloc = config.ByteSize(0)
	)
	service.Main(service.Config{Name: envOr("LAZYTEST_NAME", "lazytest"), Listen: "127.0.0.1:0"}, func(fs *flag.FlagSet) {
		fs.StringVar(&name, "component", "lazytest", "component name")
		fs.DurationVar(&initDelay, "init-delay", 100*time.Millisecond, "how long Init takes")
		service.ComponentFlags(fs, "", "the component", &settings)
		fs.BoolVar(&failInit, "fail-init", false, "make Init fail")
		fs.Var(&deps, "deps", "dependencies")
		fs.Var(&plugins, "plugin", "more components this process registers (as connectors registers connectors/exchange/<name>); repeatable")
		fs.BoolVar(&pinned, "pinned", false, "not preemptible")
		fs.Var(&initAlloc, "init-alloc", "bytes Init allocates and touches (the heavy internals)")
	}, func(ctx context.Context, s *service.Service) error {
		srv := &testServer{}
		spec := settings.Spec(name)
		spec.Dependencies, spec.Pinned = deps, pinned
		spec.Init = func(ctx context.Context) error {
			srv.inits.Add(1)
			time.Sleep(initDelay) // ignores ctx on purpose: the runtime must cope
			if failInit {
				return errors.New("simulated init failure")
			}
			srv.heavy = make([]byte, int(initAlloc))
			for i := 0; i < len(srv.heavy); i += 4096 {
				srv.heavy[i] = 1 // touch every page so it is resident
			}
			srv.activeSince.Store(time.Now().UnixNano())
			return nil
		}
		spec.Shutdown = func(context.Context) error {
			srv.heavy = nil
			debug.FreeOSMemory() // give the heavy part back to the OS
			srv.shutdowns.Add(1)
			return nil
		}
		comp, err := s.Runtime.Add(spec)
		if err != nil {
			return err
		}
		for _, name := range plugins {
			p := settings.Spec(name)
			p.Init = func(context.Context) error { return nil }
			p.Shutdown = func(context.Context) error { return nil }
			if _, err := s.Runtime.Add(p); err != nil {
				return err
			}
		}
		testpb.RegisterTestServiceServer(s.Server.GRPC(), srv)
		s.Gate.Require(testpb.TestService_UnaryCall_FullMethodName, comp)
		return nil
	})
}

func envOr(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}

type testServer struct {
	testpb.UnimplementedTestServiceServer
	inits, shutdowns atomic.Int64
	activeSince      atomic.Int64
	heavy            []byte
}

// UnaryCall works for ResponseSize milliseconds and reports, in OauthScope,
// "inits=N shutdowns=M active_since=unixnano".
func (t *testServer) UnaryCall(ctx context.Context, r *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	time.Sleep(time.Duration(r.GetResponseSize()) * time.Millisecond)
	return &testpb.SimpleResponse{OauthScope: strings.TrimSpace(fmt.Sprintf("inits=%d shutdowns=%d active_since=%d",
		t.inits.Load(), t.shutdowns.Load(), t.activeSince.Load()))}, nil
}

func (t *testServer) EmptyCall(context.Context, *testpb.Empty) (*testpb.Empty, error) {
	return &testpb.Empty{}, nil
}
