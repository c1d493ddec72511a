// Package benchkit is what the lazy runtime's bench commands (lazybench,
// lazymanybench) share: a real coordinator to run against, percentiles,
// and failing loudly.
package benchkit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/tradsys/mesh/pkg/grpcserver"
	"github.com/tradsys/mesh/services/coordinator/coord"
	"github.com/tradsys/mesh/services/coordinator/server"
)

// StartCoordinator runs a real coordinator on an embedded etcd (fsync on)
// under dir, with a budget no benchmark fills, and returns once it leads.
func StartCoordinator(ctx context.Context, dir string) (*server.Running, error) {
	r, err := server.Start(ctx, server.Options{
		Flags:   &grpcserver.Flags{Listen: "127.0.0.1:0", ShutdownTimeout: time.Second},
		DataDir: filepath.Join(dir, "etcd"), EtcdClient: "127.0.0.1:0", EtcdPeer: "127.0.0.1:0",
		Coord: coord.Config{Budget: 1 << 40},
	})
	if err != nil {
		return nil, err
	}
	for !r.Coord.IsLeader() {
		time.Sleep(10 * time.Millisecond)
	}
	return r, nil
}

// Pct is the p-th percentile (0..100) of d; d is not modified.
func Pct(d []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)-1)*p/100]
}

// PctString is Pct rounded to the microsecond, for a table.
func PctString(d []time.Duration, p int) string { return Pct(d, p).Round(time.Microsecond).String() }

// Check ends the command with err, naming it.
func Check(command string, err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", command, err)
		os.Exit(1)
	}
}
