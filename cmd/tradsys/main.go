// Command tradsys is the operator's tool for a TradSys mesh: it inspects and
// drives the coordinator (status, components, leases, locks, activate,
// deactivate, watch) and runs the whole mesh locally (up).
//
// main only wires the process (signals, stdio, exit code); the commands live
// in internal/cli so tests can run them in-process.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/tradsys/mesh/cmd/tradsys/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
