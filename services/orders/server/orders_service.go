package server

import (
	"context"
	"time"

	"github.com/tradsys/mesh/pkg/fixed"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	"github.com/tradsys/mesh/services/orders/oms"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// ---- conversions between the API and the domain ----

var (
	sidesIn  = map[ordersv1.Side]oms.Side{ordersv1.Side_SIDE_BUY: oms.Buy, ordersv1.Side_SIDE_SELL: oms.Sell}
	sidesOut = map[oms.Side]ordersv1.Side{oms.Buy: ordersv1.Side_SIDE_BUY, oms.Sell: ordersv1.Side_SIDE_SELL}
	typesIn  = map[ordersv1.OrderType]oms.OrderType{
		ordersv1.OrderType_ORDER_TYPE_LIMIT: oms.Limit, ordersv1.OrderType_ORDER_TYPE_MARKET: oms.Market,
		ordersv1.OrderType_ORDER_TYPE_IOC: oms.IOC, ordersv1.OrderType_ORDER_TYPE_FOK: oms.FOK,
		ordersv1.OrderType_ORDER_TYPE_POST_ONLY: oms.PostOnly,
	}
	typesOut    = invert(typesIn)
	statusesOut = map[oms.Status]ordersv1.OrderStatus{
		oms.New: ordersv1.OrderStatus_ORDER_STATUS_NEW, oms.Accepted: ordersv1.OrderStatus_ORDER_STATUS_ACCEPTED,
		oms.PartiallyFilled: ordersv1.OrderStatus_ORDER_STATUS_PARTIALLY_FILLED, oms.Filled: ordersv1.OrderStatus_ORDER_STATUS_FILLED,
		oms.Rejected: ordersv1.OrderStatus_ORDER_STATUS_REJECTED, oms.Canceled: ordersv1.OrderStatus_ORDER_STATUS_CANCELED,
	}
	statusesIn          = invert(statusesOut)
	instrumentStatusOut = map[oms.InstrumentStatus]ordersv1.InstrumentStatus{
		oms.Trading: ordersv1.InstrumentStatus_INSTRUMENT_STATUS_TRADING, oms.Halted: ordersv1.InstrumentStatus_INSTRUMENT_STATUS_HALTED,
	}
	instrumentStatusIn = invert(instrumentStatusOut)
)

func invert[K, V comparable](m map[K]V) map[V]K {
	out := make(map[V]K, len(m))
	for k, v := range m {
		out[v] = k
	}
	return out
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// text is a decimal in its shortest form; "" for zero when omitZero.
func text(d fixed.Decimal, omitZero bool) string {
	if d == 0 && omitZero {
		return ""
	}
	return d.Text()
}

func eventPB(e *oms.Event) *ordersv1.OrderEvent {
	pb := &ordersv1.OrderEvent{Sequence: e.Seq, Status: statusesOut[e.Status], Time: ts(e.Time), Reason: e.Reason,
		Price: text(e.Price, true), Quantity: text(e.Quantity, true)}
	if f := e.Fill; f != nil {
		pb.Fill = &ordersv1.Fill{TradeSequence: f.TradeSeq, Price: f.Price.Text(), Quantity: f.Quantity.Text(), Maker: f.Maker,
			ExecutedAt: ts(f.ExecutedAt)}
	}
	return pb
}

func orderPB(o *oms.Order) *ordersv1.Order {
	pb := &ordersv1.Order{
		OrderId: o.ID, ClientOrderId: o.ClientOrderID, Account: o.Account, Symbol: o.Symbol,
		Side: sidesOut[o.Side], Type: typesOut[o.Type], Price: text(o.Price, true), Quantity: o.Quantity.Text(),
		FilledQuantity: o.Filled.Text(), OpenQuantity: o.Open().Text(), AverageFillPrice: text(o.AveragePrice(), true),
		Status: statusesOut[o.Status], RejectReasons: o.RejectReasons, CreatedAt: ts(o.CreatedAt), UpdatedAt: ts(o.UpdatedAt),
		Sequence: o.Seq,
	}
	for i := range o.History {
		pb.History = append(pb.History, eventPB(&o.History[i]))
	}
	return pb
}

func instrumentPB(in *oms.Instrument) *ordersv1.Instrument {
	return &ordersv1.Instrument{Symbol: in.Symbol, TickSize: in.TickSize.Text(), LotSize: in.LotSize.Text(),
		MinPrice: text(in.MinPrice, true), MaxPrice: text(in.MaxPrice, true),
		MinQuantity: text(in.MinQuantity, true), MaxQuantity: text(in.MaxQuantity, true),
		Status: instrumentStatusOut[in.Status], CreatedAt: ts(in.CreatedAt), UpdatedAt: ts(in.UpdatedAt)}
}

func positionPB(p *oms.Position) *ordersv1.Position {
	return &ordersv1.Position{Account: p.Account, Symbol: p.Symbol, NetQuantity: p.Net().Text(),
		BoughtQuantity: p.Bought.Text(), SoldQuantity: p.Sold.Text(), BoughtNotional: p.BoughtNotional.Text(),
		SoldNotional: p.SoldNotional.Text(), UpdatedAt: ts(p.UpdatedAt)}
}

// ---- handlers ----

func (s *Server) SubmitOrder(ctx context.Context, r *ordersv1.SubmitOrderRequest) (*ordersv1.SubmitOrderResponse, error) {
	m, err := s.domain()
	if err != nil {
		return nil, togRPCError(err)
	}
	o, dup, err := m.Submit(ctx, oms.SubmitRequest{Account: r.GetAccount(), ClientOrderID: r.GetClientOrderId(),
		Symbol: r.GetSymbol(), Side: sidesIn[r.GetSide()], Type: typesIn[r.GetType()], Price: r.GetPrice(), Quantity: r.GetQuantity()})
	if err != nil {
		return nil, togRPCError(err)
	}
	return &ordersv1.SubmitOrderResponse{Order: orderPB(&o), Duplicate: dup}, nil
}

func (s *Server) CancelOrder(ctx context.Context, r *ordersv1.CancelOrderRequest) (*ordersv1.CancelOrderResponse, error) {
	m, err := s.domain()
	if err != nil {
		return nil, togRPCError(err)
	}
	o, err := m.Cancel(ctx, r.GetAccount(), r.GetOrderId())
	if err != nil {
		return nil, togRPCError(err)
	}
	return &ordersv1.CancelOrderResponse{Order: orderPB(&o)}, nil
}

func (s *Server) ReplaceOrder(ctx context.Context, r *ordersv1.ReplaceOrderRequest) (*ordersv1.ReplaceOrderResponse, error) {
	m, err := s.domain()
	if err != nil {
		return nil, togRPCError(err)
	}
	o, err := m.Replace(ctx, r.GetAccount(), r.GetOrderId(), r.GetPrice(), r.GetQuantity())
	if err != nil {
		return nil, togRPCError(err)
	}
	return &ordersv1.ReplaceOrderResponse{Order: orderPB(&o)}, nil
}

func (s *Server) GetOrder(ctx context.Context, r *ordersv1.GetOrderRequest) (*ordersv1.GetOrderResponse, error) {
	m, err := s.domain()
	if err != nil {
		return nil, togRPCError(err)
	}
	o, err := m.Get(r.GetOrderId())
	if err != nil {
		return nil, togRPCError(err)
	}
	return &ordersv1.GetOrderResponse{Order: orderPB(&o)}, nil
}

func (s *Server) ListOrders(ctx context.Context, r *ordersv1.ListOrdersRequest) (*ordersv1.ListOrdersResponse, error) {
	m, err := s.domain()
	if err != nil {
		return nil, togRPCError(err)
	}
	f := oms.ListFilter{Account: r.GetAccount(), Symbol: r.GetSymbol(), PageSize: int(r.GetPageSize()), PageToken: r.GetPageToken()}
	if f.PageSize == 0 {
		f.PageSize = ordersv1.DefaultPageSize
	}
	for _, st := range r.GetStatuses() {
		f.Statuses = append(f.Statuses, statusesIn[st])
	}
	if r.GetCreatedAfter() != nil {
		f.After = r.GetCreatedAfter().AsTime()
	}
	if r.GetCreatedBefore() != nil {
		f.Before = r.GetCreatedBefore().AsTime()
	}
	orders, next, err := m.List(f)
	if err != nil {
		return nil, togRPCError(err)
	}
	resp := &ordersv1.ListOrdersResponse{NextPageToken: next}
	for i := range orders {
		resp.Orders = append(resp.Orders, orderPB(&orders[i]))
	}
	return resp, nil
}

func (s *Server) StreamOrderUpdates(r *ordersv1.StreamOrderUpdatesRequest, stream grpc.ServerStreamingServer[ordersv1.StreamOrderUpdatesResponse]) error {
	m, err := s.domain()
	if err != nil {
		return togRPCError(err)
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	err = m.Updates(ctx, r.GetFromSequence(), r.GetAccount(), r.GetSymbol(), func(u *oms.Update) error {
		return stream.Send(&ordersv1.StreamOrderUpdatesResponse{Sequence: u.Seq, Order: orderPB(&u.Order), Event: eventPB(&u.Event)})
	})
	if s.isDone() || err == oms.ErrClosed {
		return status.Error(codes.Unavailable, "orders service stopping; resume with from_sequence after the last update received")
	}
	return togRPCError(err)
}

func (s *Server) isDone() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *Server) GetPositions(ctx context.Context, r *ordersv1.GetPositionsRequest) (*ordersv1.GetPositionsResponse, error) {
	m, err := s.domain()
	if err != nil {
		return nil, togRPCError(err)
	}
	resp := &ordersv1.GetPositionsResponse{}
	for _, p := range m.Positions(r.GetAccount(), r.GetSymbol()) {
		resp.Positions = append(resp.Positions, positionPB(&p))
	}
	return resp, nil
}

func (s *Server) CreateInstrument(ctx context.Context, r *ordersv1.CreateInstrumentRequest) (*ordersv1.CreateInstrumentResponse, error) {
	m, err := s.domain()
	if err != nil {
		return nil, togRPCError(err)
	}
	pb := r.GetInstrument()
	in := oms.Instrument{Symbol: pb.GetSymbol(), Status: instrumentStatusIn[pb.GetStatus()]}
	for _, f := range []struct {
		name string
		v    string
		dst  *fixed.Decimal
	}{
		{"instrument.tick_size", pb.GetTickSize(), &in.TickSize}, {"instrument.lot_size", pb.GetLotSize(), &in.LotSize},
		{"instrument.min_price", pb.GetMinPrice(), &in.MinPrice}, {"instrument.max_price", pb.GetMaxPrice(), &in.MaxPrice},
		{"instrument.min_quantity", pb.GetMinQuantity(), &in.MinQuantity}, {"instrument.max_quantity", pb.GetMaxQuantity(), &in.MaxQuantity},
	} {
		if f.v == "" {
			continue
		}
		if *f.dst, err = oms.ParseDecimal(f.name, f.v); err != nil {
			return nil, togRPCError(err)
		}
	}
	out, err := m.CreateInstrument(in)
	if err != nil {
		return nil, togRPCError(err)
	}
	return &ordersv1.CreateInstrumentResponse{Instrument: instrumentPB(&out)}, nil
}

func (s *Server) GetInstrument(ctx context.Context, r *ordersv1.GetInstrumentRequest) (*ordersv1.GetInstrumentResponse, error) {
	m, err := s.domain()
	if err != nil {
		return nil, togRPCError(err)
	}
	in, err := m.Instrument(r.GetSymbol())
	if err != nil {
		return nil, togRPCError(err)
	}
	return &ordersv1.GetInstrumentResponse{Instrument: instrumentPB(&in)}, nil
}

func (s *Server) ListInstruments(ctx context.Context, r *ordersv1.ListInstrumentsRequest) (*ordersv1.ListInstrumentsResponse, error) {
	m, err := s.domain()
	if err != nil {
		return nil, togRPCError(err)
	}
	resp := &ordersv1.ListInstrumentsResponse{}
	for _, in := range m.Instruments() {
		resp.Instruments = append(resp.Instruments, instrumentPB(&in))
	}
	return resp, nil
}

func (s *Server) UpdateInstrumentStatus(ctx context.Context, r *ordersv1.UpdateInstrumentStatusRequest) (*ordersv1.UpdateInstrumentStatusResponse, error) {
	m, err := s.domain()
	if err != nil {
		return nil, togRPCError(err)
	}
	in, err := m.SetInstrumentStatus(r.GetSymbol(), instrumentStatusIn[r.GetStatus()])
	if err != nil {
		return nil, togRPCError(err)
	}
	return &ordersv1.UpdateInstrumentStatusResponse{Instrument: instrumentPB(&in)}, nil
}
