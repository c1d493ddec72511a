package server_test

import (
	"strings"
	"testing"
	"time"

	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	riskv1 "github.com/tradsys/mesh/proto/tradsys/risk/v1"
	"github.com/tradsys/mesh/services/gateway/hub"
)

func (c *client) subscribeOrders() {
	c.t.Helper()
	c.send(map[string]any{"id": "o", "type": "subscribe", "channel": "orders"})
	c.until(10*time.Second, "orders subscription ack", func(f frame) bool { return f.Type == "ack" && f.ID == "o" })
}

func (c *client) submit(id, side, price, qty string) hub.OrderUpdate {
	c.t.Helper()
	c.send(map[string]any{"id": id, "type": "submit", "order": map[string]string{"symbol": symbol, "side": side, "price": price, "quantity": qty}})
	f := c.until(15*time.Second, "answer to "+id, func(f frame) bool { return f.ID == id })
	if f.Type != "ack" {
		c.t.Fatalf("submit %s: %+v", id, f)
	}
	return decode[hub.OrderUpdate](c.t, f.Data)
}

func TestSubmitOrderAndReceiveItsUpdates(t *testing.T) {
	m := startMesh(t, nil)
	alice, bob := m.mustDial(t, keyA), m.mustDial(t, keyB)
	alice.subscribeOrders()
	alice.send(map[string]any{"id": "t", "type": "subscribe", "channel": "trades", "symbol": symbol})

	sell := alice.submit("s1", "sell", "100.5", "3")
	if sell.Status != "accepted" || sell.Account != "1" || sell.Open != "3" || sell.OrderID == "" || sell.ClientOrderID == "" {
		t.Fatalf("alice's sell: %+v", sell)
	}
	buy := bob.submit("b1", "buy", "100.5", "2")
	if buy.Status != "filled" || buy.Account != "2" || buy.Filled != "2" {
		t.Fatalf("bob's buy: %+v", buy)
	}
	// Alice sees her order's fill and the trade, as they happen.
	var u *hub.OrderUpdate
	var tr *hub.Trade
	alice.seenOrUntil(10*time.Second, "alice's fill and the trade", func(f frame) bool {
		switch f.Type {
		case "order":
			if o := decode[hub.OrderUpdate](t, f.Data); o.Status == "partially_filled" {
				u = &o
			}
		case "trade":
			tr = new(decode[hub.Trade](t, f.Data))
		}
		return u != nil && tr != nil
	})
	if u.OrderID != sell.OrderID || u.Filled != "2" || u.Open != "1" || u.Event != "fill" || u.FillPrice != "100.5" || u.FillQuantity != "2" {
		t.Fatalf("fill update %+v", u)
	}
	if tr.Price != "100.5" || tr.Quantity != "2" || tr.TakerSide != "buy" {
		t.Fatalf("trade %+v", tr)
	}
	// Replace and cancel through the gateway; each is an update too.
	alice.send(map[string]any{"id": "r", "type": "replace", "order_id": sell.OrderID, "price": "101", "quantity": "4"})
	r := alice.until(10*time.Second, "replace answer", func(f frame) bool { return f.ID == "r" })
	if ru := decode[hub.OrderUpdate](t, r.Data); r.Type != "ack" || ru.Price != "101" || ru.Open != "2" {
		t.Fatalf("replace: %+v %s", r, r.Data)
	}
	alice.send(map[string]any{"id": "c", "type": "cancel", "order_id": sell.OrderID})
	c := alice.until(10*time.Second, "cancel answer", func(f frame) bool { return f.ID == "c" })
	if cu := decode[hub.OrderUpdate](t, c.Data); c.Type != "ack" || cu.Status != "canceled" || cu.Filled != "2" {
		t.Fatalf("cancel: %+v %s", c, c.Data)
	}
	alice.seenOrUntil(10*time.Second, "the cancel update", func(f frame) bool {
		return f.Type == "order" && decode[hub.OrderUpdate](t, f.Data).Status == "canceled"
	})
	// Orders has the same story.
	got, err := m.orders.GetOrder(bg, &ordersv1.GetOrderRequest{OrderId: mustID(t, sell.OrderID)})
	if err != nil || got.GetOrder().GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_CANCELED || got.GetOrder().GetFilledQuantity() != "2" {
		t.Fatalf("orders' record: %v %v", got, err)
	}
}

func TestAKeyCannotTouchAnotherAccountsOrders(t *testing.T) {
	m := startMesh(t, nil)
	alice, bob := m.mustDial(t, keyA), m.mustDial(t, keyB)
	bob.subscribeOrders()
	sell := alice.submit("s", "sell", "100", "1")
	for _, msg := range []map[string]any{
		{"id": "c1", "type": "cancel", "order_id": sell.OrderID},
		{"id": "r1", "type": "replace", "order_id": sell.OrderID, "price": "99", "quantity": "1"},
		{"id": "c2", "type": "cancel", "order_id": sell.OrderID, "account": "1"},
		{"id": "s2", "type": "submit", "order": map[string]string{"symbol": symbol, "side": "buy", "price": "99", "quantity": "1", "account": "1"}},
	} {
		bob.send(msg)
		f := bob.until(10*time.Second, "answer", func(f frame) bool { return f.ID == msg["id"] })
		if f.Type != "error" || (f.Code != hub.CodeForbidden && f.Code != hub.CodeNotFound) {
			t.Fatalf("bob's %v: %+v, want forbidden or not_found", msg, f)
		}
	}
	// Alice's order is untouched, and bob's stream never showed it.
	got, err := m.orders.GetOrder(bg, &ordersv1.GetOrderRequest{OrderId: mustID(t, sell.OrderID)})
	if err != nil || got.GetOrder().GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_ACCEPTED || got.GetOrder().GetPrice() != "100" {
		t.Fatalf("alice's order after bob's attempts: %v %v", got, err)
	}
	alice.submit("s3", "sell", "100", "1")
	bob.send(map[string]string{"id": "p", "type": "ping"})
	bob.until(5*time.Second, "pong", func(f frame) bool {
		if f.Type == "order" {
			t.Fatalf("bob received alice's order update: %s", f.Data)
		}
		return f.Type == "pong"
	})
}

func TestRiskAppliesToGatewayOrders(t *testing.T) {
	m := startMesh(t, nil)
	if _, err := m.risk.SetLimits(bg, &riskv1.SetLimitsRequest{Limits: &riskv1.Limits{Account: "1", MaxOrderQuantity: "5"}}); err != nil {
		t.Fatal(err)
	}
	alice := m.mustDial(t, keyA)
	// Above the account's limit: orders keeps it as rejected with risk's
	// reasons; nothing rests in the book.
	u := alice.submit("big", "sell", "100", "6")
	if u.Status != "rejected" || len(u.Reasons) == 0 || !strings.Contains(strings.Join(u.Reasons, ";"), "5") {
		t.Fatalf("order above the limit: %+v, want rejected by risk", u)
	}
	t.Logf("risk said: %s", strings.Join(u.Reasons, "; "))
	if ok := alice.submit("ok", "sell", "100", "5"); ok.Status != "accepted" {
		t.Fatalf("order within the limit: %+v", ok)
	}
	book, err := m.matching.GetOrderBook(bg, &matchingv1.GetOrderBookRequest{Symbol: symbol})
	if err != nil || len(book.GetAsks()) != 1 || book.GetAsks()[0].GetQuantity() != 5 {
		t.Fatalf("book %v %v, want only the 5-lot ask", book, err)
	}
}
