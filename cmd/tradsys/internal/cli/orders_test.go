package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tradsys/mesh/services/orders/orderstest"
)

// The order commands against a real order path (coordinator, matching,
// risk, orders over TCP): instruments, submit, book, positions, list,
// cancel, in tables and JSON, and clear errors.
func TestOrderCommands(t *testing.T) {
	m := orderstest.Start(t, orderstest.Config{})
	run := func(args ...string) string {
		t.Helper()
		return mustRun(t, m.CoordAddr, append([]string{"--orders", m.Orders.Addr, "--matching", m.Matching.Addr}, args...)...)
	}
	out := run("instruments", "create", "BTC-USD", "--tick-size", "0.01", "--lot-size", "0.001")
	if row := tableRow(t, out, "BTC-USD"); row[1] != "0.01" || row[2] != "0.001" || row[len(row)-1] != "trading" {
		t.Fatalf("created instrument row %v", row)
	}
	out = run("order", "submit", "--account", "alice", "--client-order-id", "a1", "BTC-USD", "sell", "0.5", "86780.01")
	if row := tableRow(t, out, "1"); row[1] != "alice" || row[6] != "86780.01" || row[10] != "accepted" {
		t.Fatalf("submitted sell row %v", row)
	}
	run("order", "submit", "--account", "alice", "--client-order-id", "a2", "BTC-USD", "sell", "0.25", "86781")
	run("order", "submit", "--account", "bob", "--client-order-id", "b1", "BTC-USD", "buy", "0.1", "86779.5")

	out = run("book", "BTC-USD")
	if row := tableRow(t, out, "ask"); row[1] != "86781" || row[2] != "0.25" {
		t.Fatalf("best-last ask row %v in\n%s", row, out)
	}
	if row := tableRow(t, out, "bid"); row[1] != "86779.5" || row[2] != "0.1" {
		t.Fatalf("bid row %v", row)
	}
	var book struct {
		Units string `json:"units"`
		Asks  []struct{ Price, Quantity string }
	}
	if err := json.Unmarshal([]byte(run("book", "BTC-USD", "-o", "json")), &book); err != nil || book.Units != "decimal" ||
		len(book.Asks) != 2 || book.Asks[0].Price != "86780.01" || book.Asks[0].Quantity != "0.5" {
		t.Fatalf("book JSON %+v %v", book, err)
	}

	// A market buy takes 0.3 of the best ask.
	out = run("order", "submit", "--account", "bob", "--type", "market", "BTC-USD", "buy", "0.3")
	if row := tableRow(t, out, "4"); row[8] != "0.3" || row[9] != "86780.01" || row[10] != "filled" {
		t.Fatalf("market buy row %v", row)
	}
	out = run("positions", "--symbol", "BTC-USD")
	if row := tableRow(t, out, "bob"); row[2] != "0.3" {
		t.Fatalf("bob's position %v", row)
	}
	if row := tableRow(t, out, "alice"); row[2] != "-0.3" {
		t.Fatalf("alice's position %v", row)
	}
	out = run("order", "cancel", "--account", "alice", "1")
	if row := tableRow(t, out, "1"); row[8] != "0.3" || row[10] != "canceled" {
		t.Fatalf("cancelled row %v", row)
	}
	doc := decode(t, run("order", "list", "--account", "alice", "--status", "canceled", "-o", "json"))
	if orders, _ := doc["orders"].([]any); len(orders) != 1 {
		t.Fatalf("alice's cancelled orders: %v", doc)
	}
	if !strings.Contains(run("instruments"), "BTC-USD") {
		t.Fatal("instruments does not list BTC-USD")
	}

	// Errors: off the grid names the field and the grid; usage mistakes exit 2.
	_, errOut, code := tradsys(t, m.CoordAddr, "--orders", m.Orders.Addr, "order", "submit", "--account", "c", "BTC-USD", "buy", "1", "10.001")
	if code != ExitError || !strings.Contains(errOut, "INVALID_ARGUMENT") || !strings.Contains(errOut, "tick size 0.01") {
		t.Fatalf("off-grid submit: exit %d, %q", code, errOut)
	}
	for _, args := range [][]string{{"order"}, {"order", "submit", "BTC-USD", "buy", "1"}, {"order", "submit", "--account", "a", "BTC-USD", "up", "1"},
		{"book"}, {"instruments", "create", "X"}, {"order", "cancel", "--account", "a", "x"}} {
		if _, _, code := tradsys(t, m.CoordAddr, args...); code != ExitUsage {
			t.Errorf("tradsys %v: exit %d, want %d", args, code, ExitUsage)
		}
	}
}
