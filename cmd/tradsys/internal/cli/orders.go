package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tradsys/mesh/pkg/fixed"
	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	"google.golang.org/grpc"
)

// dialService connects to a domain service's address with the --tls-*
// credentials.
func (e *env) dialService(addr string) (*grpc.ClientConn, error) {
	if strings.TrimSpace(addr) == "" {
		return nil, usagef("empty service address")
	}
	creds, err := e.g.client.TLS.ClientCredentials()
	if err != nil {
		return nil, err
	}
	return grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
}

// callOrders runs one OrderService RPC (see callService).
func callOrders[Req, Resp any](ctx context.Context, e *env, rpc func(ordersv1.OrderServiceClient, context.Context, Req, ...grpc.CallOption) (Resp, error), req Req) (Resp, error) {
	return callService(ctx, e, e.g.orders, ordersv1.NewOrderServiceClient, rpc, req)
}

func enumName(s fmt.Stringer, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), prefix))
}

func runOrder(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return usagef("order: want submit, cancel or list (tradsys help order)")
	}
	switch args[0] {
	case "submit":
		return runOrderSubmit(ctx, e, args[1:])
	case "cancel":
		return runOrderCancel(ctx, e, args[1:])
	case "list":
		return runOrderList(ctx, e, args[1:])
	}
	return usagef("order %q: want submit, cancel or list", args[0])
}

func runOrderSubmit(ctx context.Context, e *env, args []string) error {
	fs := e.flags("order submit", "--account A SYMBOL buy|sell QUANTITY [PRICE]")
	account := fs.String("account", "", "account placing the order (required)")
	coid := fs.String("client-order-id", "", "idempotency key (default: generated; pass one to retry safely)")
	typ := fs.String("type", "limit", "limit, market, ioc, fok or post-only")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if *account == "" {
		return usagef("order submit: --account is required")
	}
	if len(pos) < 3 || len(pos) > 4 {
		return usagef("order submit: want SYMBOL buy|sell QUANTITY [PRICE], got %d arguments", len(pos))
	}
	side, ok := ordersv1.Side_value["SIDE_"+strings.ToUpper(pos[1])]
	if !ok {
		return usagef("order submit: side %q: want buy or sell", pos[1])
	}
	ot, ok := ordersv1.OrderType_value["ORDER_TYPE_"+strings.ToUpper(strings.ReplaceAll(*typ, "-", "_"))]
	if !ok {
		return usagef("order submit: --type %q: want limit, market, ioc, fok or post-only", *typ)
	}
	req := &ordersv1.SubmitOrderRequest{Account: *account, ClientOrderId: *coid, Symbol: pos[0], Side: ordersv1.Side(side),
		Type: ordersv1.OrderType(ot), Quantity: pos[2]}
	if len(pos) == 4 {
		req.Price = pos[3]
	}
	if req.ClientOrderId == "" {
		req.ClientOrderId = "cli-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	resp, err := callOrders(ctx, e, ordersv1.OrderServiceClient.SubmitOrder, req)
	if err != nil {
		return err
	}
	if e.json() {
		return printJSON(e.stdout, resp)
	}
	return printOrders(e, resp.GetOrder())
}

func runOrderCancel(ctx context.Context, e *env, args []string) error {
	fs := e.flags("order cancel", "--account A ORDER_ID")
	account := fs.String("account", "", "account owning the order (required)")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if *account == "" || len(pos) != 1 {
		return usagef("order cancel: want --account A ORDER_ID")
	}
	id, err := strconv.ParseUint(pos[0], 10, 64)
	if err != nil || id == 0 {
		return usagef("order cancel: ORDER_ID %q is not an order id", pos[0])
	}
	resp, err := callOrders(ctx, e, ordersv1.OrderServiceClient.CancelOrder, &ordersv1.CancelOrderRequest{Account: *account, OrderId: id})
	if err != nil {
		return err
	}
	if e.json() {
		return printJSON(e.stdout, resp)
	}
	return printOrders(e, resp.GetOrder())
}

func runOrderList(ctx context.Context, e *env, args []string) error {
	fs := e.flags("order list", "[--account A] [--symbol S] [--status S,...] [--limit N]")
	account := fs.String("account", "", "only this account's orders")
	symbol := fs.String("symbol", "", "only this symbol's orders")
	statuses := fs.String("status", "", "only these statuses, comma-separated (new, accepted, partially_filled, filled, rejected, canceled)")
	limit := fs.Int("limit", 50, "at most this many orders, newest first (1..1000)")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, pos); err != nil {
		return err
	}
	if *limit < 1 || *limit > ordersv1.MaxPageSize {
		return usagef("order list: --limit %d: want 1..%d", *limit, ordersv1.MaxPageSize)
	}
	req := &ordersv1.ListOrdersRequest{Account: *account, Symbol: *symbol, PageSize: int32(*limit)}
	for _, s := range strings.Split(*statuses, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		v, ok := ordersv1.OrderStatus_value["ORDER_STATUS_"+strings.ToUpper(s)]
		if !ok {
			return usagef("order list: --status %q: not an order status", s)
		}
		req.Statuses = append(req.Statuses, ordersv1.OrderStatus(v))
	}
	resp, err := callOrders(ctx, e, ordersv1.OrderServiceClient.ListOrders, req)
	if err != nil {
		return err
	}
	if e.json() {
		return printJSON(e.stdout, resp)
	}
	return printOrders(e, resp.GetOrders()...)
}

func printOrders(e *env, orders ...*ordersv1.Order) error {
	tw := newTable(e.stdout)
	row(tw, "ID", "ACCOUNT", "CLIENT_ID", "SYMBOL", "SIDE", "TYPE", "PRICE", "QUANTITY", "FILLED", "AVG_PRICE", "STATUS", "REASON")
	for _, o := range orders {
		row(tw, strconv.FormatUint(o.GetOrderId(), 10), o.GetAccount(), o.GetClientOrderId(), o.GetSymbol(),
			enumName(o.GetSide(), "SIDE_"), enumName(o.GetType(), "ORDER_TYPE_"), dash(o.GetPrice()), o.GetQuantity(),
			o.GetFilledQuantity(), dash(o.GetAverageFillPrice()), enumName(o.GetStatus(), "ORDER_STATUS_"),
			strings.Join(o.GetRejectReasons(), "; "))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func runPositions(ctx context.Context, e *env, args []string) error {
	fs := e.flags("positions", "[--account A] [--symbol S]")
	account := fs.String("account", "", "only this account")
	symbol := fs.String("symbol", "", "only this symbol")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, pos); err != nil {
		return err
	}
	resp, err := callOrders(ctx, e, ordersv1.OrderServiceClient.GetPositions, &ordersv1.GetPositionsRequest{Account: *account, Symbol: *symbol})
	if err != nil {
		return err
	}
	if e.json() {
		return printJSON(e.stdout, resp)
	}
	tw := newTable(e.stdout)
	row(tw, "ACCOUNT", "SYMBOL", "NET", "BOUGHT", "SOLD", "BOUGHT_NOTIONAL", "SOLD_NOTIONAL")
	for _, p := range resp.GetPositions() {
		row(tw, p.GetAccount(), p.GetSymbol(), p.GetNetQuantity(), p.GetBoughtQuantity(), p.GetSoldQuantity(),
			p.GetBoughtNotional(), p.GetSoldNotional())
	}
	return tw.Flush()
}

func runInstruments(ctx context.Context, e *env, args []string) error {
	fs := e.flags("instruments", "[create SYMBOL --tick-size T --lot-size L | halt SYMBOL | resume SYMBOL]")
	tick := fs.String("tick-size", "", "create: price grid, e.g. 0.01")
	lot := fs.String("lot-size", "", "create: quantity grid, e.g. 0.001")
	minPrice := fs.String("min-price", "", "create: lowest price")
	maxPrice := fs.String("max-price", "", "create: highest price")
	maxQty := fs.String("max-quantity", "", "create: largest quantity")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	verb := "list"
	switch {
	case len(pos) == 0:
	case len(pos) == 2 && (pos[0] == "create" || pos[0] == "halt" || pos[0] == "resume"):
		verb = pos[0]
	default:
		return usagef("instruments: want no arguments, create SYMBOL, halt SYMBOL or resume SYMBOL")
	}
	if verb == "create" && (*tick == "" || *lot == "") {
		return usagef("instruments create: --tick-size and --lot-size are required")
	}
	var instruments []*ordersv1.Instrument
	switch verb {
	case "list":
		var resp *ordersv1.ListInstrumentsResponse
		resp, err = callOrders(ctx, e, ordersv1.OrderServiceClient.ListInstruments, &ordersv1.ListInstrumentsRequest{})
		instruments = resp.GetInstruments()
	case "create":
		var resp *ordersv1.CreateInstrumentResponse
		resp, err = callOrders(ctx, e, ordersv1.OrderServiceClient.CreateInstrument, &ordersv1.CreateInstrumentRequest{Instrument: &ordersv1.Instrument{
			Symbol: pos[1], TickSize: *tick, LotSize: *lot, MinPrice: *minPrice, MaxPrice: *maxPrice, MaxQuantity: *maxQty}})
		instruments = []*ordersv1.Instrument{resp.GetInstrument()}
	default: // halt, resume
		st := ordersv1.InstrumentStatus_INSTRUMENT_STATUS_TRADING
		if verb == "halt" {
			st = ordersv1.InstrumentStatus_INSTRUMENT_STATUS_HALTED
		}
		var resp *ordersv1.UpdateInstrumentStatusResponse
		resp, err = callOrders(ctx, e, ordersv1.OrderServiceClient.UpdateInstrumentStatus, &ordersv1.UpdateInstrumentStatusRequest{Symbol: pos[1], Status: st})
		instruments = []*ordersv1.Instrument{resp.GetInstrument()}
	}
	if err != nil {
		return err
	}
	if e.json() {
		return printJSON(e.stdout, &ordersv1.ListInstrumentsResponse{Instruments: instruments})
	}
	tw := newTable(e.stdout)
	row(tw, "SYMBOL", "TICK", "LOT", "MIN_PRICE", "MAX_PRICE", "MIN_QTY", "MAX_QTY", "STATUS")
	for _, in := range instruments {
		row(tw, in.GetSymbol(), in.GetTickSize(), in.GetLotSize(), dash(in.GetMinPrice()), dash(in.GetMaxPrice()),
			dash(in.GetMinQuantity()), dash(in.GetMaxQuantity()), enumName(in.GetStatus(), "INSTRUMENT_STATUS_"))
	}
	return tw.Flush()
}

// bookLevel and bookView are book's JSON form (decimals as strings).
type bookLevel struct {
	Price    string `json:"price"`
	Quantity string `json:"quantity"`
	Orders   int32  `json:"orders"`
}

type bookView struct {
	Symbol            string      `json:"symbol"`
	Units             string      `json:"units"`
	LastTradeSequence uint64      `json:"last_trade_sequence"`
	Algorithm         string      `json:"algorithm"`
	RestingOrders     int64       `json:"resting_orders"`
	Bids              []bookLevel `json:"bids"`
	Asks              []bookLevel `json:"asks"`
}

// scaler turns integer ticks or lots into decimal strings on a grid.
func scaler(unit string) func(int64) string {
	d, err := fixed.Parse(unit)
	if err != nil || d <= 0 {
		return nil
	}
	return func(n int64) string {
		if n < 0 || n > int64(fixed.Max)/int64(d) {
			return strconv.FormatInt(n, 10) + "?"
		}
		return fixed.Decimal(n * int64(d)).Text()
	}
}

func runBook(ctx context.Context, e *env, args []string) error {
	fs := e.flags("book", "SYMBOL [--depth N]")
	depth := fs.Int("depth", 10, "price levels per side (1..1000)")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("book: want one SYMBOL")
	}
	if *depth < 1 || *depth > matchingv1.MaxDepth {
		return usagef("book: --depth %d: want 1..%d", *depth, matchingv1.MaxDepth)
	}
	book, err := callService(ctx, e, e.g.matching, matchingv1.NewMatchingServiceClient, matchingv1.MatchingServiceClient.GetOrderBook,
		&matchingv1.GetOrderBookRequest{Symbol: pos[0], Depth: int32(*depth)})
	if err != nil {
		return err
	}
	// The grid from orders turns ticks and lots into decimals; without it
	// (orders down, no instrument) the book is shown in ticks and lots.
	instrument, _ := callOrders(ctx, e, ordersv1.OrderServiceClient.GetInstrument, &ordersv1.GetInstrumentRequest{Symbol: pos[0]})
	grid := instrument.GetInstrument()
	itoa := func(n int64) string { return strconv.FormatInt(n, 10) }
	price, qty, units := itoa, itoa, "ticks and lots"
	if grid != nil {
		if p, q := scaler(grid.GetTickSize()), scaler(grid.GetLotSize()); p != nil && q != nil {
			price, qty, units = p, q, "decimal"
		}
	}
	view := bookView{Symbol: book.GetSymbol(), Units: units, LastTradeSequence: book.GetLastTradeSequence(),
		Algorithm: book.GetAlgorithm(), RestingOrders: book.GetRestingOrders(), Bids: []bookLevel{}, Asks: []bookLevel{}}
	for _, l := range book.GetBids() {
		view.Bids = append(view.Bids, bookLevel{price(l.GetPrice()), qty(l.GetQuantity()), l.GetOrderCount()})
	}
	for _, l := range book.GetAsks() {
		view.Asks = append(view.Asks, bookLevel{price(l.GetPrice()), qty(l.GetQuantity()), l.GetOrderCount()})
	}
	if e.json() {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(view)
	}
	fmt.Fprintf(e.stdout, "%s  last trade #%d  algorithm %s  resting %d  (%s)\n", view.Symbol, view.LastTradeSequence,
		view.Algorithm, view.RestingOrders, units)
	tw := newTable(e.stdout)
	row(tw, "SIDE", "PRICE", "QUANTITY", "ORDERS")
	for i := len(view.Asks) - 1; i >= 0; i-- {
		l := view.Asks[i]
		row(tw, "ask", l.Price, l.Quantity, fmt.Sprint(l.Orders))
	}
	for _, l := range view.Bids {
		row(tw, "bid", l.Price, l.Quantity, fmt.Sprint(l.Orders))
	}
	return tw.Flush()
}
