package server_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/procstat"
	"github.com/tradsys/mesh/pkg/proctest"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// BenchmarkE2ESubmitOrderProcesses is BenchmarkE2ESubmitOrder in the
// layout the mesh is deployed in (`tradsys up`, compose): matching, risk
// and orders each their own process, built without -race and run with
// their defaults (fsync on, streamed hops), so each has its own Go runtime
// and scheduler instead of all sharing the benchmark's two Ps. The
// coordinator (embedded etcd) and the clients run in the benchmark's
// process; CPU per order counts all four processes.
//
//	cd services/orders && go test -run '^$' -bench E2ESubmitOrderProcesses -benchtime 3000x ./server/
func BenchmarkE2ESubmitOrderProcesses(b *testing.B) {
	dir := b.TempDir()
	bins := map[string]string{}
	for _, svc := range []string{"matching", "risk", "orders"} {
		bins[svc] = filepath.Join(dir, "tradsys-"+svc)
		if out, err := exec.Command("go", "build", "-o", bins[svc], "github.com/tradsys/mesh/services/"+svc).CombinedOutput(); err != nil {
			b.Fatalf("build %s: %v\n%s", svc, err, out)
		}
	}
	coord, _ := coordtest.Start(b, coordtest.Config{})
	matching := proctest.Start(b, bins["matching"], coord.Addr(), "--data-dir", b.TempDir())
	risk := proctest.Start(b, bins["risk"], coord.Addr(), "--data-dir", b.TempDir(), "--matching", matching.Addr,
		"--orders-per-second", "1000000", "--order-burst", "1000000")
	orders := proctest.Start(b, bins["orders"], coord.Addr(), "--data-dir", b.TempDir(), "--risk", risk.Addr,
		"--matching", matching.Addr)
	oc := ordersv1.NewOrderServiceClient(orders.Conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := oc.CreateInstrument(ctx, &ordersv1.CreateInstrumentRequest{Instrument: &ordersv1.Instrument{
		Symbol: "BENCH", TickSize: "0.01", LotSize: "0.001"}}); err != nil {
		b.Fatal(err)
	}
	cpu := func() time.Duration {
		total := cpuTime()
		for _, p := range []*proctest.Proc{matching, risk, orders} {
			if c, err := procstat.CPU(p.Cmd.Process.Pid); err == nil {
				total += c
			}
		}
		return total
	}
	benchEntries(b, oc, healthpb.NewHealthClient(orders.Conn), cpu, func(entry string, conc int) string {
		return fmt.Sprintf("entry=%s/clients=%d", entry, conc)
	})
}
