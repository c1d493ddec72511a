package sources

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/clientpool"
	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	"github.com/tradsys/mesh/services/historical/candles"
	"github.com/tradsys/mesh/services/historical/history"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestMatchingTradeScalesExactly(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 1, 5, time.UTC)
	tr := &matchingv1.Trade{Symbol: "X", Sequence: 9, Price: 123457, Quantity: 3, ExecutedAt: timestamppb.New(at)}
	got, err := MatchingTrade(tr, candles.MustFixed("0.01"), candles.MustFixed("0.001"))
	if err != nil || got.Price != candles.MustFixed("1234.57") || got.Qty != candles.MustFixed("0.003") ||
		!got.Time.Equal(at) || got.ID != 9 || got.Symbol != "X" {
		t.Fatalf("%+v %v", got, err)
	}
	if got, err := MatchingTrade(tr, DefaultTickSize, DefaultLotSize); err != nil || got.Qty != 3 || got.Price != 123457*1_000_000 {
		t.Fatalf("defaults: %+v %v", got, err)
	}
	// 2^48 ticks of 1.0 do not fit in a Fixed: an error, not a wrapped value.
	big := &matchingv1.Trade{Symbol: "X", Sequence: 1, Price: 1 << 48, Quantity: 1, ExecutedAt: timestamppb.New(at)}
	if _, err := MatchingTrade(big, candles.MustFixed("1"), DefaultLotSize); err == nil {
		t.Fatal("overflow accepted")
	}
	if _, err := MatchingTrade(&matchingv1.Trade{Symbol: "X", Sequence: 1, Price: 1, Quantity: 1}, DefaultTickSize, DefaultLotSize); err == nil {
		t.Fatal("trade without executed_at accepted")
	}
}

// fakeMatching serves StreamTrades from a script: the first call is
// OUT_OF_RANGE (oldest 3), the second sends 3..5 and breaks, the third
// sends 6..7 and stays open.
type fakeMatching struct {
	matchingv1.UnimplementedMatchingServiceServer
	at   time.Time
	mu   sync.Mutex
	from []uint64
}

func (f *fakeMatching) StreamTrades(r *matchingv1.StreamTradesRequest, s grpc.ServerStreamingServer[matchingv1.StreamTradesResponse]) error {
	f.mu.Lock()
	f.from = append(f.from, r.GetFromSequence())
	call := len(f.from)
	f.mu.Unlock()
	send := func(lo, hi uint64) error {
		for seq := lo; seq <= hi; seq++ {
			if err := s.Send(&matchingv1.StreamTradesResponse{Trade: &matchingv1.Trade{Symbol: r.GetSymbol(), Sequence: seq,
				Price: 100 + int64(seq), Quantity: 2, ExecutedAt: timestamppb.New(f.at.Add(time.Duration(seq) * time.Second))}}); err != nil {
				return err
			}
		}
		return nil
	}
	switch call {
	case 1:
		st, _ := status.New(codes.OutOfRange, "gone").WithDetails(&errdetails.ErrorInfo{Reason: "TRADES_NO_LONGER_AVAILABLE",
			Metadata: map[string]string{"oldest_sequence": strconv.Itoa(3)}})
		return st.Err()
	case 2:
		if err := send(r.GetFromSequence(), 5); err != nil {
			return err
		}
		return status.Error(codes.Unavailable, "engine unloading")
	default:
		if err := send(r.GetFromSequence(), 7); err != nil {
			return err
		}
		<-s.Context().Done()
		return nil
	}
}

func TestFollowMatchingStartsAtOldestAndResumes(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeMatching{at: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	srv := grpc.NewServer()
	matchingv1.RegisterMatchingServiceServer(srv, fake)
	go srv.Serve(l)
	defer srv.Stop()
	h, err := history.Open(history.Options{DataDir: t.TempDir(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	pool := clientpool.New(clientpool.Options{})
	defer pool.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srcs, err := FollowMatching(ctx, h, pool, MatchingConfig{Address: l.Addr().String(), Symbols: []string{"ABC"}})
	if err != nil || len(srcs) != 1 || srcs[0].Name != "matching://"+l.Addr().String()+"/ABC" {
		t.Fatalf("%v %v", srcs, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.AggregatorStats().Accepted < 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // nothing more should arrive
	st := h.AggregatorStats()
	fake.mu.Lock()
	from := append([]uint64(nil), fake.from...)
	fake.mu.Unlock()
	if st.Accepted != 5 || st.Duplicates != 0 || st.Invalid != 0 || len(from) != 3 || from[0] != 1 || from[1] != 3 || from[2] != 6 {
		t.Fatalf("stats %+v, from_sequences %v", st, from)
	}
	if s := h.Sources(); len(s) != 1 || s[0].Trades != 5 || !s[0].Connected {
		t.Fatalf("sources %+v", s)
	}
	if _, err := FollowMatching(ctx, h, pool, MatchingConfig{Address: "x:1"}); err == nil {
		t.Fatal("no symbols accepted")
	}
	if _, err := FollowMatching(ctx, h, pool, MatchingConfig{Address: "x:1", Symbols: []string{"A B"}}); err == nil {
		t.Fatal("bad symbol accepted")
	}
}
