package server_test

import (
	"fmt"
	"github.com/tradsys/mesh/services/orders/orderstest"
	"github.com/tradsys/mesh/services/orders/server"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/proctest"
	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	riskv1 "github.com/tradsys/mesh/proto/tradsys/risk/v1"
	"google.golang.org/grpc/codes"
)

func statuses(o *ordersv1.Order) []ordersv1.OrderStatus {
	var out []ordersv1.OrderStatus
	for _, e := range o.GetHistory() {
		if len(out) == 0 || out[len(out)-1] != e.GetStatus() {
			out = append(out, e.GetStatus())
		}
	}
	return out
}

// The happy path with decimal prices: a resting sell, a crossing buy, both
// filled at the maker's price, positions from the fills, the history of
// every state, and the update stream resumable from a sequence.
func TestSubmitMatchFillDecimal(t *testing.T) {
	m := startMesh(t, meshConfig{})
	m.instrument(t, "BTC-USD", "0.01", "0.001")
	ctx := ctxT(t)
	stream, err := m.oc.StreamOrderUpdates(ctx, &ordersv1.StreamOrderUpdatesRequest{FromSequence: 1})
	if err != nil {
		t.Fatal(err)
	}
	ask := m.submit(t, "alice", "a1", "BTC-USD", sell, "86780.01", "0.015")
	if ask.GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_ACCEPTED || ask.GetOpenQuantity() != "0.015" || ask.GetPrice() != "86780.01" {
		t.Fatalf("resting sell: %v", ask)
	}
	bid := m.submit(t, "bob", "b1", "BTC-USD", buy, "86790", "0.02")
	if bid.GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_PARTIALLY_FILLED || bid.GetFilledQuantity() != "0.015" ||
		bid.GetOpenQuantity() != "0.005" || bid.GetAverageFillPrice() != "86780.01" {
		t.Fatalf("crossing buy: %v", bid)
	}
	got, err := m.oc.GetOrder(ctx, &ordersv1.GetOrderRequest{OrderId: ask.GetOrderId()})
	if err != nil {
		t.Fatal(err)
	}
	want := []ordersv1.OrderStatus{ordersv1.OrderStatus_ORDER_STATUS_NEW, ordersv1.OrderStatus_ORDER_STATUS_ACCEPTED, ordersv1.OrderStatus_ORDER_STATUS_FILLED}
	if o := got.GetOrder(); o.GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_FILLED || !slices.Equal(statuses(o), want) {
		t.Fatalf("filled maker: %v, history %v", o, statuses(o))
	}
	if f := got.GetOrder().GetHistory()[2].GetFill(); f.GetPrice() != "86780.01" || f.GetQuantity() != "0.015" || !f.GetMaker() || f.GetTradeSequence() != 1 {
		t.Fatalf("fill: %v", f)
	}
	pos, err := m.oc.GetPositions(ctx, &ordersv1.GetPositionsRequest{Symbol: "BTC-USD"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pos.GetPositions()) != 2 || pos.GetPositions()[0].GetNetQuantity() != "-0.015" || pos.GetPositions()[1].GetNetQuantity() != "0.015" ||
		pos.GetPositions()[1].GetBoughtNotional() != "1301.70015" {
		t.Fatalf("positions: %v", pos.GetPositions())
	}
	// The stream from 1 has every change in order: ask NEW, ACCEPTED; bid
	// NEW, ACCEPTED, then the trade's fills and the maker FILLED.
	var seqs []uint64
	for len(seqs) < 6 {
		u, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, u.GetSequence())
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("update sequences %v, want 1..6", seqs)
		}
	}
	// Resume from 5: the same updates again.
	rs, err := m.oc.StreamOrderUpdates(ctx, &ordersv1.StreamOrderUpdatesRequest{FromSequence: 5, Account: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := rs.Recv()
	if err != nil || u.GetOrder().GetAccount() != "alice" || u.GetSequence() < 5 {
		t.Fatalf("resumed update: %v %v", u, err)
	}

	// Cancel the rest of the bid; list by status.
	c, err := m.oc.CancelOrder(ctx, &ordersv1.CancelOrderRequest{Account: "bob", OrderId: bid.GetOrderId()})
	if err != nil || c.GetOrder().GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_CANCELED || c.GetOrder().GetFilledQuantity() != "0.015" {
		t.Fatalf("cancel: %v %v", c, err)
	}
	_, err = m.oc.CancelOrder(ctx, &ordersv1.CancelOrderRequest{Account: "bob", OrderId: bid.GetOrderId()})
	wantCode(t, err, codes.FailedPrecondition, "CANCELED")
	_, err = m.oc.CancelOrder(ctx, &ordersv1.CancelOrderRequest{Account: "mallory", OrderId: ask.GetOrderId()})
	wantCode(t, err, codes.NotFound)
	l, err := m.oc.ListOrders(ctx, &ordersv1.ListOrdersRequest{Statuses: []ordersv1.OrderStatus{ordersv1.OrderStatus_ORDER_STATUS_FILLED}})
	if err != nil || len(l.GetOrders()) != 1 || l.GetOrders()[0].GetOrderId() != ask.GetOrderId() {
		t.Fatalf("list filled: %v %v", l, err)
	}
}

// Off-grid prices and quantities are INVALID_ARGUMENT naming the field and
// the grid; nothing is recorded.
func TestOffGridIsInvalidArgument(t *testing.T) {
	m := startMesh(t, meshConfig{})
	m.instrument(t, "ETH-USD", "0.05", "0.01")
	ctx := ctxT(t)
	for _, c := range []struct{ price, qty, field, grid string }{
		{"100.01", "1", "price", "0.05"},
		{"100.05", "1.005", "quantity", "0.01"},
	} {
		_, err := m.oc.SubmitOrder(ctx, &ordersv1.SubmitOrderRequest{Account: "a", ClientOrderId: "x", Symbol: "ETH-USD",
			Side: buy, Type: ordersv1.OrderType_ORDER_TYPE_LIMIT, Price: c.price, Quantity: c.qty})
		wantCode(t, err, codes.InvalidArgument, c.field, c.grid)
	}
	_, err := m.oc.SubmitOrder(ctx, &ordersv1.SubmitOrderRequest{Account: "a", ClientOrderId: "x", Symbol: "NOPE",
		Side: buy, Type: ordersv1.OrderType_ORDER_TYPE_LIMIT, Price: "1", Quantity: "1"})
	wantCode(t, err, codes.NotFound, "NOPE")
	l, err := m.oc.ListOrders(ctx, &ordersv1.ListOrdersRequest{})
	if err != nil || len(l.GetOrders()) != 0 {
		t.Fatalf("orders after refusals: %v %v", l, err)
	}
}

// A retried submit (same account, same client order id) answers the same
// order, never a second one, also when the retries race.
func TestIdempotentRetry(t *testing.T) {
	m := startMesh(t, meshConfig{})
	m.instrument(t, "SOL-USD", "0.01", "1")
	first := m.submit(t, "carol", "c-1", "SOL-USD", buy, "150.25", "3")
	ids := make(chan uint64, 8)
	for range 8 {
		go func() {
			resp, err := m.oc.SubmitOrder(ctxT(t), &ordersv1.SubmitOrderRequest{Account: "carol", ClientOrderId: "c-1", Symbol: "SOL-USD",
				Side: buy, Type: ordersv1.OrderType_ORDER_TYPE_LIMIT, Price: "150.25", Quantity: "3"})
			if err != nil || !resp.GetDuplicate() {
				t.Errorf("retry: %v %v", resp, err)
				ids <- 0
				return
			}
			ids <- resp.GetOrder().GetOrderId()
		}()
	}
	for range 8 {
		if id := <-ids; id != first.GetOrderId() {
			t.Fatalf("retry answered order %d, want %d", id, first.GetOrderId())
		}
	}
	// Another account may use the same client order id.
	if other := m.submit(t, "dave", "c-1", "SOL-USD", buy, "150.25", "3"); other.GetOrderId() == first.GetOrderId() {
		t.Fatal("two accounts share an order")
	}
	book, err := m.mc.GetOrderBook(ctxT(t), &matchingv1.GetOrderBookRequest{Symbol: "SOL-USD"})
	if err != nil || len(book.GetBids()) != 1 || book.GetBids()[0].GetOrderCount() != 2 {
		t.Fatalf("book: %v %v (want one level with 2 orders)", book, err)
	}
}

// A client order id reused with other terms is not a retry: ALREADY_EXISTS
// naming client_order_id, the earlier order and the fields that differ,
// and nothing new is recorded. A retry that repeats the submit (decimals
// written differently, or after the order was replaced) is still answered
// with the order.
func TestClientOrderIDReusedWithOtherTerms(t *testing.T) {
	m := startMesh(t, meshConfig{})
	m.instrument(t, "SOL-USD", "0.01", "0.1")
	m.instrument(t, "ETH-USD", "0.01", "0.1")
	ctx := ctxT(t)
	first := m.submit(t, "carol", "c-1", "SOL-USD", buy, "150.25", "3")
	for _, c := range []struct {
		symbol, price, qty string
		side               ordersv1.Side
		differs            string
	}{
		{"SOL-USD", "150.25", "3", sell, "side"},
		{"SOL-USD", "151", "5", buy, "price,quantity"},
		{"ETH-USD", "150.25", "3", buy, "symbol"},
	} {
		_, err := m.oc.SubmitOrder(ctx, &ordersv1.SubmitOrderRequest{Account: "carol", ClientOrderId: "c-1", Symbol: c.symbol,
			Side: c.side, Type: ordersv1.OrderType_ORDER_TYPE_LIMIT, Price: c.price, Quantity: c.qty})
		wantCode(t, err, codes.AlreadyExists, "client_order_id", "c-1", fmt.Sprint("order ", first.GetOrderId()), strings.ReplaceAll(c.differs, ",", ", "))
		st, _ := status.FromError(err)
		var info *errdetails.ErrorInfo
		for _, d := range st.Details() {
			if i, ok := d.(*errdetails.ErrorInfo); ok {
				info = i
			}
		}
		if info.GetReason() != "CLIENT_ORDER_ID_REUSED" || info.GetMetadata()["field"] != "client_order_id" || info.GetMetadata()["differs"] != c.differs ||
			info.GetMetadata()["order_id"] != strconv.FormatUint(first.GetOrderId(), 10) {
			t.Fatalf("error info %v for a reuse differing in %s", info, c.differs)
		}
	}
	l, err := m.oc.ListOrders(ctx, &ordersv1.ListOrdersRequest{Account: "carol"})
	if err != nil || len(l.GetOrders()) != 1 {
		t.Fatalf("carol's orders after the refused reuses: %v %v, want only the first", l, err)
	}
	if _, err := m.oc.ReplaceOrder(ctx, &ordersv1.ReplaceOrderRequest{Account: "carol", OrderId: first.GetOrderId(), Price: "150", Quantity: "4"}); err != nil {
		t.Fatal(err)
	}
	resp, err := m.oc.SubmitOrder(ctx, &ordersv1.SubmitOrderRequest{Account: "carol", ClientOrderId: "c-1", Symbol: "SOL-USD",
		Side: buy, Type: ordersv1.OrderType_ORDER_TYPE_LIMIT, Price: "150.250", Quantity: "3.0"})
	if err != nil || !resp.GetDuplicate() || resp.GetOrder().GetOrderId() != first.GetOrderId() {
		t.Fatalf("retry of the original submit after a replace: %v %v", resp, err)
	}
}

// ReplaceOrder moves an open order (checked by risk), ListOrders pages
// newest first, and a halted instrument refuses new orders but not cancels.
func TestReplaceListHalt(t *testing.T) {
	m := startMesh(t, meshConfig{})
	m.instrument(t, "ADA-USD", "0.0001", "1")
	ctx := ctxT(t)
	var ids []uint64
	for i := range 5 {
		ids = append(ids, m.submit(t, "hana", fmt.Sprint("h", i), "ADA-USD", buy, "0.45", "100").GetOrderId())
	}
	r, err := m.oc.ReplaceOrder(ctx, &ordersv1.ReplaceOrderRequest{Account: "hana", OrderId: ids[0], Price: "0.4512", Quantity: "150"})
	if err != nil || r.GetOrder().GetPrice() != "0.4512" || r.GetOrder().GetQuantity() != "150" || r.GetOrder().GetOpenQuantity() != "150" {
		t.Fatalf("replace: %v %v", r, err)
	}
	_, err = m.oc.ReplaceOrder(ctx, &ordersv1.ReplaceOrderRequest{Account: "hana", OrderId: ids[0], Price: "0.45125", Quantity: "150"})
	wantCode(t, err, codes.InvalidArgument, "price", "0.0001")
	book, err := m.mc.GetOrderBook(ctx, &matchingv1.GetOrderBookRequest{Symbol: "ADA-USD"})
	if err != nil || book.GetBids()[0].GetPrice() != 4512 || book.GetBids()[0].GetQuantity() != 150 {
		t.Fatalf("matching's book after the replace: %v %v", book, err)
	}
	var seen []uint64
	token := ""
	for {
		page, err := m.oc.ListOrders(ctx, &ordersv1.ListOrdersRequest{Account: "hana", PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.GetOrders() {
			seen = append(seen, o.GetOrderId())
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(seen) != 5 || seen[0] != ids[4] || seen[4] != ids[0] {
		t.Fatalf("pages gave %v, want %v newest first", seen, ids)
	}
	_, err = m.oc.ListOrders(ctx, &ordersv1.ListOrdersRequest{PageToken: "not a token!"})
	wantCode(t, err, codes.InvalidArgument, "page_token")
	// Statuses repeated past the six there are: refused, not a scan of
	// every order against each under the store's lock.
	many := slices.Repeat([]ordersv1.OrderStatus{ordersv1.OrderStatus_ORDER_STATUS_NEW}, 100_000)
	_, err = m.oc.ListOrders(ctx, &ordersv1.ListOrdersRequest{Statuses: many})
	wantCode(t, err, codes.InvalidArgument, "statuses", "100000 listed", "6 order statuses")

	if _, err := m.oc.UpdateInstrumentStatus(ctx, &ordersv1.UpdateInstrumentStatusRequest{Symbol: "ADA-USD",
		Status: ordersv1.InstrumentStatus_INSTRUMENT_STATUS_HALTED}); err != nil {
		t.Fatal(err)
	}
	_, err = m.oc.SubmitOrder(ctx, &ordersv1.SubmitOrderRequest{Account: "hana", ClientOrderId: "late", Symbol: "ADA-USD", Side: buy,
		Type: ordersv1.OrderType_ORDER_TYPE_LIMIT, Price: "0.45", Quantity: "1"})
	wantCode(t, err, codes.FailedPrecondition, "halted")
	if c, err := m.oc.CancelOrder(ctx, &ordersv1.CancelOrderRequest{Account: "hana", OrderId: ids[1]}); err != nil ||
		c.GetOrder().GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_CANCELED {
		t.Fatalf("cancel while halted: %v %v", c, err)
	}
}

// Submits reach risk and matching as unary calls (--stream-risk=false
// --stream-submits=false) or on the shared ValidateOrders and SubmitOrders
// streams (the default): the same outcomes, fills and refusals alike.
func TestSubmitsUnaryAndStreamed(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprint("stream=", stream), func(t *testing.T) {
			om := orderstest.Start(t, orderstest.Config{Orders: func(o *server.Options) { o.StreamSubmits, o.StreamRisk = stream, stream }})
			m := &mesh{Mesh: om, oc: om.OrderService, rc: om.RiskService, mc: om.MatchingService}
			m.instrument(t, "BTC-USD", "0.01", "0.001")
			m.submit(t, "alice", "a1", "BTC-USD", sell, "100", "1")
			if o := m.submit(t, "bob", "b1", "BTC-USD", buy, "100.5", "1"); o.GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_FILLED || o.GetAverageFillPrice() != "100" {
				t.Fatalf("crossing buy: %v", o)
			}
			o, err := m.oc.SubmitOrder(ctxT(t), &ordersv1.SubmitOrderRequest{Account: "bob", ClientOrderId: "b2", Symbol: "BTC-USD", Side: buy,
				Type: ordersv1.OrderType_ORDER_TYPE_FOK, Price: "100", Quantity: "5"})
			if err != nil || o.GetOrder().GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_REJECTED || len(o.GetOrder().GetRejectReasons()) == 0 {
				t.Fatalf("unfillable FOK: %v %v", o, err)
			}
		})
	}
}

// The shared streams close when idle and the next call opens new ones:
// submits that race with the closing (many, concurrently, around a very
// short idle time) are neither lost nor rejected.
func TestSharedStreamsIdleAndReopen(t *testing.T) {
	om := orderstest.Start(t, orderstest.Config{Orders: func(o *server.Options) { o.StreamIdle = 20 * time.Millisecond }})
	m := &mesh{Mesh: om, oc: om.OrderService, rc: om.RiskService, mc: om.MatchingService}
	m.instrument(t, "BTC-USD", "0.01", "0.001")
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 15 {
				resp, err := m.oc.SubmitOrder(ctxT(t), &ordersv1.SubmitOrderRequest{Account: fmt.Sprint("idle", g), ClientOrderId: fmt.Sprint("i", i),
					Symbol: "BTC-USD", Side: buy, Type: ordersv1.OrderType_ORDER_TYPE_LIMIT, Price: "100", Quantity: "0.001"})
				if err != nil || resp.GetOrder().GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_ACCEPTED {
					t.Errorf("submit %d/%d: %v %v", g, i, resp, err)
					return
				}
				time.Sleep(time.Duration(i%4) * 15 * time.Millisecond) // around the idle time
			}
		}()
	}
	wg.Wait()
}

// Updates older than the service keeps are OUT_OF_RANGE, naming the oldest
// sequence still available; resuming from it works.
func TestUpdatesOutOfRange(t *testing.T) {
	om := orderstest.Start(t, orderstest.Config{Orders: func(o *server.Options) { o.KeepUpdates = 4 }})
	m := &mesh{Mesh: om, oc: om.OrderService, rc: om.RiskService, mc: om.MatchingService}
	m.instrument(t, "BTC-USD", "0.01", "0.001")
	for i := range 6 {
		m.submit(t, "kim", fmt.Sprint("k", i), "BTC-USD", buy, "100", "1") // NEW + ACCEPTED each: 12 updates
	}
	ctx := ctxT(t)
	// A submit answers before its outcome's update is written (and
	// streamed): wait for the last one.
	last, err := m.oc.StreamOrderUpdates(ctx, &ordersv1.StreamOrderUpdatesRequest{FromSequence: 12})
	if err != nil {
		t.Fatal(err)
	}
	if u, err := last.Recv(); err != nil || u.GetSequence() != 12 {
		t.Fatalf("the 12th update: %v %v", u, err)
	}
	s, err := m.oc.StreamOrderUpdates(ctx, &ordersv1.StreamOrderUpdatesRequest{FromSequence: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Recv()
	wantCode(t, err, codes.OutOfRange, "no longer kept", "oldest")
	st, _ := status.FromError(err)
	var oldest string
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			oldest = info.GetMetadata()["oldest_sequence"]
		}
	}
	from, perr := strconv.ParseUint(oldest, 10, 64)
	if perr != nil || from < 2 || from > 12 {
		t.Fatalf("oldest_sequence %q", oldest)
	}
	s, err = m.oc.StreamOrderUpdates(ctx, &ordersv1.StreamOrderUpdatesRequest{FromSequence: from})
	if err != nil {
		t.Fatal(err)
	}
	if u, err := s.Recv(); err != nil || u.GetSequence() != from {
		t.Fatalf("resumed at the oldest: %v %v", u, err)
	}
}

// A resumption from a sequence the service has not given yet (a client's
// bookmark from another store, say) is OUT_OF_RANGE naming the next
// sequence, not a stream that waits silently while every update up to it
// goes by; resuming from the next one works.
func TestUpdatesFromTheFutureAreOutOfRange(t *testing.T) {
	m := startMesh(t, meshConfig{})
	m.instrument(t, "BTC-USD", "0.01", "0.001")
	m.submit(t, "kim", "k1", "BTC-USD", buy, "100", "1") // updates 1 and 2
	ctx := ctxT(t)
	for _, from := range []uint64{1_000_000, 1<<64 - 1} {
		s, err := m.oc.StreamOrderUpdates(ctx, &ordersv1.StreamOrderUpdatesRequest{FromSequence: from})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Recv()
		wantCode(t, err, codes.OutOfRange, fmt.Sprint(from), "the next is 3")
	}
	s, err := m.oc.StreamOrderUpdates(ctx, &ordersv1.StreamOrderUpdatesRequest{FromSequence: 3})
	if err != nil {
		t.Fatal(err)
	}
	m.submit(t, "kim", "k2", "BTC-USD", buy, "100", "1")
	if u, err := s.Recv(); err != nil || u.GetSequence() != 3 {
		t.Fatalf("resumed at the next sequence: %v %v", u, err)
	}
}

// ReplaceOrder changes the price and/or the quantity: an empty one stays
// as it is; both empty is INVALID_ARGUMENT saying a replace needs one.
func TestReplacePriceOrQuantityAlone(t *testing.T) {
	m := startMesh(t, meshConfig{})
	m.instrument(t, "ADA-USD", "0.0001", "1")
	ctx := ctxT(t)
	o := m.submit(t, "hana", "h1", "ADA-USD", buy, "0.45", "100")
	replace := func(price, qty string) (*ordersv1.Order, error) {
		r, err := m.oc.ReplaceOrder(ctx, &ordersv1.ReplaceOrderRequest{Account: "hana", OrderId: o.GetOrderId(), Price: price, Quantity: qty})
		return r.GetOrder(), err
	}
	if r, err := replace("0.4512", ""); err != nil || r.GetPrice() != "0.4512" || r.GetQuantity() != "100" {
		t.Fatalf("price alone: %v %v", r, err)
	}
	if r, err := replace("", "150"); err != nil || r.GetPrice() != "0.4512" || r.GetQuantity() != "150" || r.GetOpenQuantity() != "150" {
		t.Fatalf("quantity alone: %v %v", r, err)
	}
	_, err := replace("", "")
	wantCode(t, err, codes.InvalidArgument, "price", "new price, a new quantity or both")
	book, err := m.mc.GetOrderBook(ctx, &matchingv1.GetOrderBookRequest{Symbol: "ADA-USD"})
	if err != nil || book.GetBids()[0].GetPrice() != 4512 || book.GetBids()[0].GetQuantity() != 150 {
		t.Fatalf("matching's book after the replaces: %v %v", book, err)
	}
}

// Matching also takes orders from tools with ids of their own choosing: a
// tool's trade on an id orders gave one of its own orders (here one risk
// rejected, which never reached matching) fills neither that order nor its
// account's position.
func TestAToolsTradeOnAnOrdersIDIsNotApplied(t *testing.T) {
	m := startMesh(t, meshConfig{})
	m.instrument(t, "BTC-USD", "1", "1")
	ctx := ctxT(t)
	if _, err := m.rc.SetLimits(ctx, &riskv1.SetLimitsRequest{Limits: &riskv1.Limits{Account: "rej", MaxOrderQuantity: "1"}}); err != nil {
		t.Fatal(err)
	}
	rejected := m.submit(t, "rej", "r1", "BTC-USD", buy, "100", "5")
	resting := m.submit(t, "rest", "s1", "BTC-USD", sell, "101", "1")
	tool := func(id, account uint64, side matchingv1.Side, price int64) {
		t.Helper()
		if _, err := m.mc.SubmitOrder(ctx, &matchingv1.SubmitOrderRequest{Symbol: "BTC-USD", OrderId: id, Account: account, Side: side,
			Type: matchingv1.OrderType_ORDER_TYPE_LIMIT, Price: price, Quantity: 1}); err != nil {
			t.Fatalf("tool order %d: %v", id, err)
		}
	}
	tool(rejected.GetOrderId(), 900, matchingv1.Side_SIDE_SELL, 100) // the tool's sell with the rejected buy's id
	tool(1_000_001, 901, matchingv1.Side_SIDE_BUY, 100)              // trades with it
	tool(1_000_002, 902, matchingv1.Side_SIDE_BUY, 101)              // then with orders' resting sell
	// The resting sell's fill comes on the trade stream after the tool's
	// trade: once it is applied, the tool's trade has been read too.
	proctest.Eventually(t, 10*time.Second, "the resting sell filled from the trade stream", func() bool {
		o, err := m.oc.GetOrder(ctx, &ordersv1.GetOrderRequest{OrderId: resting.GetOrderId()})
		return err == nil && o.GetOrder().GetStatus() == ordersv1.OrderStatus_ORDER_STATUS_FILLED
	})
	o, err := m.oc.GetOrder(ctx, &ordersv1.GetOrderRequest{OrderId: rejected.GetOrderId()})
	if err != nil || o.GetOrder().GetFilledQuantity() != "0" || len(o.GetOrder().GetHistory()) != 2 {
		t.Fatalf("the rejected order after a tool traded on its id: %v %v", o, err)
	}
	pos, err := m.oc.GetPositions(ctx, &ordersv1.GetPositionsRequest{Account: "rej"})
	if err != nil || len(pos.GetPositions()) != 0 {
		t.Fatalf("positions of an account that never traded: %v %v", pos, err)
	}
}
