package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/proctest"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
)

// TestLeaseTraceSVG is the benchmark behind docs/leases-over-time.svg:
// matching under steady growth of its books (resting orders at a steady
// rate), sampling every 250 ms the engine's lease, the usage it reports and
// the process's RSS. It runs only when TRADSYS_LEASE_TRACE names the SVG to
// write:
//
//	TRADSYS_LEASE_TRACE=$PWD/docs/leases-over-time.svg go test -run TestLeaseTraceSVG ./services/matching/
func TestLeaseTraceSVG(t *testing.T) {
	out := os.Getenv("TRADSYS_LEASE_TRACE")
	if out == "" {
		t.Skip("set TRADSYS_LEASE_TRACE=file.svg to run")
	}
	// The binary users run: the tests' binary is built with -race, whose
	// shadow memory multiplies RSS several times over.
	plain := filepath.Join(t.TempDir(), "tradsys-matching")
	if outb, err := exec.Command("go", "build", "-o", plain, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, outb)
	}
	r, cc := coordtest.Start(t, coordtest.Config{Budget: 1 << 30})
	p := proctest.Start(t, plain, r.Addr(), "--data-dir", t.TempDir(), "--memory", "1MiB", "--algorithm-memory", "1MiB", "--no-fsync")
	mc := matchingv1.NewMatchingServiceClient(p.Conn)
	stream, err := mc.SubmitOrders(bg)
	if err != nil {
		t.Fatal(err)
	}
	type sample struct {
		at                float64
		leased, used, rss float64
		heap, limit       float64
	}
	var samples []sample
	start := time.Now()
	next := uint64(0)
	for time.Since(start) < 20*time.Second {
		for i := 0; i < 2500; i++ { // ~10,000 resting orders a second
			next++
			if err := stream.Send(&matchingv1.SubmitOrdersRequest{Order: &matchingv1.SubmitOrderRequest{Symbol: "BTC-USD",
				OrderId: next, Account: 1 + next%50, Side: matchingv1.Side_SIDE_BUY, Type: matchingv1.OrderType_ORDER_TYPE_LIMIT,
				Price: int64(1 + next%100000), Quantity: 1}}); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 2500; i++ {
			if _, err := stream.Recv(); err != nil {
				t.Fatal(err)
			}
		}
		ls, err := cc.ListLeases(bg, &coordinatorv1.ListLeasesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		s := sample{at: time.Since(start).Seconds(), rss: metric(t, p.Admin, "process_resident_memory_bytes"),
			heap: metric(t, p.Admin, "go_memstats_heap_alloc_bytes"), limit: metric(t, p.Admin, "tradsys_lazy_go_memory_limit_bytes")}
		for _, l := range ls.GetLeases() {
			if l.GetComponent() == "matching" {
				s.leased, s.used = float64(l.GetBytes()), float64(l.GetUsedBytes())
			}
		}
		samples = append(samples, s)
		time.Sleep(time.Until(start.Add(time.Duration(len(samples)) * 250 * time.Millisecond)))
	}
	// The plot: three lines over time, MiB on the y axis.
	const w, h, pad = 720.0, 360.0, 50.0
	maxY, maxX := 1.0, samples[len(samples)-1].at
	for _, s := range samples {
		maxY = max(maxY, s.leased, s.used, s.rss, s.limit)
	}
	x := func(v float64) float64 { return pad + v/maxX*(w-2*pad) }
	y := func(v float64) float64 { return h - pad - v/maxY*(h-2*pad) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%.0f" y="20">matching under steady book growth: lease vs reported use vs RSS (%d resting orders in %.0f s)</text>`+"\n", pad, next, maxX)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/><line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n",
		pad, h-pad, w-pad, h-pad, pad, pad, pad, h-pad)
	for i := 0; i <= 4; i++ {
		v := maxY * float64(i) / 4
		fmt.Fprintf(&b, `<text x="4" y="%.0f">%.0f MiB</text>`+"\n", y(v)+4, v/(1<<20))
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%.0f s</text>`+"\n", w-pad-20, h-pad+18, maxX)
	for i, line := range []struct {
		name, color string
		get         func(sample) float64
	}{{"leased", "#d62728", func(s sample) float64 { return s.leased }}, {"used (reported)", "#1f77b4", func(s sample) float64 { return s.used }},
		{"RSS", "#2ca02c", func(s sample) float64 { return s.rss }}, {"Go heap", "#9467bd", func(s sample) float64 { return s.heap }},
		{"Go memory limit", "#7f7f7f", func(s sample) float64 { return s.limit }}} {
		var pts []string
		for _, s := range samples {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(s.at), y(line.get(s))))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", line.color, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="%s">%s</text>`+"\n", pad+float64(i)*125, h-12, line.color, line.name)
	}
	b.WriteString("</svg>\n")
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	last := samples[len(samples)-1]
	t.Logf("%d samples; at the end: leased %.1f MiB, used %.1f MiB, RSS %.1f MiB", len(samples), last.leased/(1<<20), last.used/(1<<20), last.rss/(1<<20))
	for _, s := range samples {
		fmt.Printf("%.2f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\n", s.at, s.leased/(1<<20), s.used/(1<<20), s.rss/(1<<20), s.heap/(1<<20), s.limit/(1<<20))
	}
}
