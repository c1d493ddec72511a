package server_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	gatewayv1 "github.com/tradsys/mesh/proto/tradsys/gateway/v1"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
)

// chromium finds Debian's chromium (apt-get install chromium) or another
// Chrome on PATH.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on PATH: the page test needs a real browser (Debian: apt-get install -y chromium)")
	return ""
}

// artifactDir is where the page test leaves its screenshot:
// $TRADSYS_TEST_ARTIFACTS, or the system's temp directory.
func artifactDir(t *testing.T) string {
	dir := os.Getenv("TRADSYS_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "tradsys-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestPageInARealBrowser loads the page in headless chromium against a
// running mesh, places an order from the page's form that trades against
// a resting order, and checks that the trade, the candle and the mesh view
// show up; it saves a screenshot.
func TestPageInARealBrowser(t *testing.T) {
	exe := chromium(t)
	m := startMesh(t, nil)
	// Bob rests a sell through the gateway's gRPC API; alice, on the page,
	// buys it.
	gw := gatewayv1.NewGatewayServiceClient(dialGRPC(t, m.gwAddr))
	if _, err := gw.SubmitOrder(withKey(keyB), &gatewayv1.SubmitOrderRequest{Symbol: symbol, Side: ordersv1.Side_SIDE_SELL,
		Type: ordersv1.OrderType_ORDER_TYPE_LIMIT, Price: "101.5", Quantity: "3"}); err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.WindowSize(1400, 1000), chromedp.UserDataDir(t.TempDir()))
	actx, acancel := chromedp.NewExecAllocator(bg, opts...)
	defer acancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, tcancel := context.WithTimeout(ctx, 90*time.Second)
	defer tcancel()
	screenshot := func() {
		shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
		if err != nil || len(shot) == 0 {
			t.Logf("no screenshot: %v", err)
			return
		}
		path := filepath.Join(artifactDir(t), "gateway-page.png")
		if err := os.WriteFile(path, shot, 0o644); err != nil {
			t.Error(err)
		}
		t.Logf("screenshot: %s", path)
	}

	url := "http://" + m.httpAddr + "/?api_key=" + keyA + "&symbol=" + symbol
	err := chromedp.Do(ctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS(`#status.up`)),
		// The mesh at a glance: an active component, and the leases in the
		// memory bar.
		chromedp.WaitVisible(chromedp.CSS(`#components tbody tr td.state-ACTIVE`)),
		chromedp.WaitVisible(chromedp.CSS(`#budget rect.lease`)),
		// The book shows bob's ask.
		chromedp.WaitVisible(chromedp.CSS(`#book tbody tr.ask`)),
		// Alice buys 2 at 101.5 from the form.
		chromedp.SetValue(chromedp.CSS(`#side`), "buy"),
		chromedp.SetValue(chromedp.CSS(`#price`), "101.5"),
		chromedp.SetValue(chromedp.CSS(`#qty`), "2"),
		chromedp.Click(chromedp.CSS(`#submit`)),
		chromedp.WaitVisible(chromedp.CSS(`#trades tbody tr.trade`)),
		chromedp.WaitVisible(chromedp.CSS(`#candles rect.candle`)),
		chromedp.WaitVisible(chromedp.CSS(`#orders tbody tr.order`)),
	)
	screenshot()
	if err != nil {
		t.Fatalf("page: %v", err)
	}
	text := func(sel string) string {
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return s
	}
	trades, orders, components := text(`#trades tbody`), text(`#orders tbody`), text(`#components tbody`)
	candles, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#candles rect.candle").length`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(trades, "101.5") || !strings.Contains(trades, "buy") {
		t.Fatalf("trades table %q, want the 2 @ 101.5 bought", trades)
	}
	if !strings.Contains(orders, "filled") {
		t.Fatalf("orders table %q, want alice's order filled", orders)
	}
	if !strings.Contains(components, "gateway") || !strings.Contains(components, "matching") {
		t.Fatalf("components table %q", components)
	}
	if candles < 1 {
		t.Fatalf("%d candles drawn", candles)
	}
}
